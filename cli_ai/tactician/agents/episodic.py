"""SARSA(λ) and the lightweight DQN behind the same `learn` / `predict` /
`save` surface as the SB3 agents, so `training_config.algorithm: sarsa | dqn`
works for any discrete-action target through `cli-ai tune`.

The agents themselves (cli_ai.tactician.agents.sarsa, .dqn) keep their own
step-by-step update rules; these adapters only drive them through an env.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from cli_ai.errors import BadInputError

EPISODIC_ALGORITHMS = ("sarsa", "dqn")


def _require_discrete(algorithm: str, env: gym.Env) -> None:
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise BadInputError(
            f"training_config.algorithm: {algorithm} needs a discrete action space; this target's actions are "
            "continuous: use ppo, ddpg, td3, sac, per-ddpg or random"
        )


@dataclass
class EpisodeRun:
    """What one `run_episode` did: its steps, whether the episode ended (or
    was cut short by the step limit or the callback), and the learner's own
    figures for it (epsilon, mean |TD error| or loss), read before the
    end-of-episode decay."""

    steps: int
    ended: bool
    stopped: bool
    report: dict[str, Any] = field(default_factory=dict)


StepCallback = Callable[[Any, float, bool, bool, dict], Any]


class _EpisodicLearner(ABC):
    """The one driving loop of SARSA(λ) and the DQN, for `cli-ai tune` and the
    autoscaling toolkit alike: one env step at a time, the agent's update after
    each, its per-episode bookkeeping (epsilon decay) when an episode ends."""

    suffix = ".bin"

    def __init__(self, env: gym.Env, agent: Any, seed: int | None):
        self.env = env
        self.agent = agent
        self.seed = seed
        # (start, end, steps): ε falls linearly per step (`cli-ai tune`); None
        # leaves it to the agent's per-episode decay (the toolkit, the seed's way).
        self.epsilon_schedule: tuple[float, float, int] | None = None
        self.total_steps = 0

    def learn(self, total_timesteps: int, callback: Callable[[dict], bool] | None = None) -> "_EpisodicLearner":
        """Train for `total_timesteps` steps; `callback(info)` after each step, False stops."""
        on_step = None if callback is None else (lambda action, reward, terminated, truncated, info: callback(info))
        steps, seed = 0, self.seed
        while steps < total_timesteps:
            run = self.run_episode(seed=seed, max_steps=total_timesteps - steps, on_step=on_step)
            steps, seed = steps + run.steps, None
            if run.stopped:
                break
        return self

    def run_episode(self, *, seed: int | None = None, max_steps: int | None = None,
                    on_step: StepCallback | None = None) -> EpisodeRun:
        """One training episode from a reset; `on_step(action, reward,
        terminated, truncated, info)` after each step, False stops."""
        obs, _ = self.env.reset(seed=seed)
        self.begin_episode(obs)
        steps = 0
        while max_steps is None or steps < max_steps:
            self._schedule_epsilon()
            action, obs, reward, terminated, truncated, info = self.step(obs)
            steps += 1
            self.total_steps += 1
            if on_step is not None and on_step(action, reward, terminated, truncated, info) is False:
                return EpisodeRun(steps, terminated or truncated, True)
            if terminated or truncated:
                report = self.episode_report(steps)
                self.end_episode()
                return EpisodeRun(steps, True, False, report)
        return EpisodeRun(steps, False, False)

    def _schedule_epsilon(self) -> None:
        if self.epsilon_schedule is None:
            return
        start, end, span = self.epsilon_schedule
        self.agent.epsilon = max(end, start - (start - end) * min(1.0, self.total_steps / max(1, span)))

    def begin_episode(self, obs) -> None:
        self.agent.reset()

    def end_episode(self) -> None:
        """Per-episode bookkeeping (epsilon decay)."""

    def episode_report(self, steps: int) -> dict[str, Any]:
        return {"epsilon": self.agent.epsilon}

    @abstractmethod
    def step(self, obs) -> tuple[Any, Any, float, bool, bool, dict]:
        """One env step and the agent's update: (action, next obs, reward, terminated, truncated, info)."""

    def predict(self, obs, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        return int(self.agent.act(np.asarray(obs, dtype=np.float32), greedy=deterministic)), state

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        return self.agent.save(path.with_suffix(self.suffix))


class SarsaLearner(_EpisodicLearner):
    """Tabular SARSA(λ): on-policy, so the next action is chosen before the update."""

    suffix = ".pkl"

    def begin_episode(self, obs) -> None:
        self.agent.reset()
        self._state = self.agent.discretize(obs)
        self._action = self.agent.select(self._state)
        self._td_abs = 0.0

    def end_episode(self) -> None:
        self.agent.decay_epsilon()

    def episode_report(self, steps: int) -> dict[str, Any]:
        return {"epsilon": self.agent.epsilon, "table_size": self.agent.table_size,
                "mean_abs_td": self._td_abs / max(1, steps)}

    def step(self, obs):
        action = self._action
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        next_state = self.agent.discretize(next_obs)
        if terminated:
            td = self.agent.update(self._state, action, reward, next_state, None, True)
        else:
            next_action = self.agent.select(next_state)
            td = self.agent.update(self._state, action, reward, next_state, next_action, False)
            self._state, self._action = next_state, next_action
        self._td_abs += abs(td)
        return action, next_obs, reward, terminated, truncated, info

    def predict(self, obs, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        return int(self.agent.select(self.agent.discretize(obs), greedy=deterministic)), state


class DQNLearner(_EpisodicLearner):
    """The lightweight DQN: replay, Double DQN targets, Polyak updates."""

    suffix = ".pt"

    def begin_episode(self, obs) -> None:
        self._losses: list[float] = []

    def end_episode(self) -> None:
        self.agent.end_episode()

    def episode_report(self, steps: int) -> dict[str, Any]:
        return {"epsilon": self.agent.epsilon,
                "mean_loss": (sum(self._losses) / len(self._losses)) if self._losses else None,
                "buffer_size": len(self.agent.buffer), "target_syncs": self.agent.target_syncs}

    def step(self, obs):
        action = self.agent.act(obs, greedy=False)
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        loss = self.agent.remember(obs, action, reward, next_obs, terminated)
        if loss is not None:
            self._losses.append(loss)
        return action, next_obs, reward, terminated, truncated, info


def env_metadata(env: gym.Env) -> dict[str, Any] | None:
    """What a saved model records about the env it learned on (its settings
    and observation names), so `cli-ai autoscale test` and `compare` rebuild
    the same env from the model alone; None for an env that cannot say."""
    inner = env.unwrapped
    if not hasattr(inner, "env_config"):
        return None
    out: dict[str, Any] = {"env_config": inner.env_config()}
    if hasattr(inner, "observation_names"):
        out["observation_names"] = list(inner.observation_names)
    return out


def build_episodic(plan, env: gym.Env, *, seed: int | None = None):
    """A SARSA(λ) or DQN learner on `env` with the settings `plan_agent`
    fitted to the budget (`plan.episodic`), ε following its per-step schedule."""
    _require_discrete(plan.algorithm, env)
    from cli_ai.tactician.agents.episodic_params import fit_episodic, make_dqn, make_sarsa

    from cli_ai.spec import TrainingConfig

    fitted = plan.episodic or fit_episodic(plan.algorithm, plan.training or TrainingConfig(), 1000,
                                           env.observation_space.shape[0])
    metadata = env_metadata(env)
    if plan.algorithm == "sarsa":
        learner = SarsaLearner(env, make_sarsa(env, fitted.params, seed=seed, metadata=metadata), seed)
    elif plan.algorithm == "dqn":
        learner = DQNLearner(env, make_dqn(env, fitted.params, seed=seed, metadata=metadata), seed)
    else:
        raise ValueError(f"{plan.algorithm!r} is not an episodic algorithm ({', '.join(EPISODIC_ALGORITHMS)})")
    learner.epsilon_schedule = fitted.epsilon_schedule
    return learner
