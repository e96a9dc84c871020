"""SARSA(λ) and the lightweight DQN behind the same `learn` / `predict` /
`save` surface as the SB3 agents, so `training_config.algorithm: sarsa | dqn`
works for any discrete-action target through `cli-ai tune`.

The agents themselves (cli_ai.tactician.agents.sarsa, .dqn) keep their own
step-by-step update rules; these adapters only drive them through an env.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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


class _EpisodicLearner(ABC):
    """Shared driving loop: one env step at a time, `callback(info)` after each
    (returning False stops), a reset at every episode end."""

    suffix = ".bin"

    def __init__(self, env: gym.Env, agent: Any, seed: int | None):
        self.env = env
        self.agent = agent
        self.seed = seed

    def learn(self, total_timesteps: int, callback: Callable[[dict], bool] | None = None) -> "_EpisodicLearner":
        obs, _ = self.env.reset(seed=self.seed)
        self.begin_episode(obs)
        for _ in range(total_timesteps):
            obs, stop, done = self.step(obs, callback)
            if stop:
                break
            if done:
                self.end_episode()
                obs, _ = self.env.reset()
                self.begin_episode(obs)
        return self

    def begin_episode(self, obs) -> None:
        self.agent.reset()

    def end_episode(self) -> None:
        """Per-episode bookkeeping (epsilon decay)."""

    @abstractmethod
    def step(self, obs, callback) -> tuple[Any, bool, bool]:
        """One env step and the agent's update: (next obs, stop requested, episode over)."""

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

    def end_episode(self) -> None:
        self.agent.decay_epsilon()

    def step(self, obs, callback):
        next_obs, reward, terminated, truncated, info = self.env.step(self._action)
        next_state = self.agent.discretize(next_obs)
        if terminated:
            self.agent.update(self._state, self._action, reward, next_state, None, True)
        else:
            next_action = self.agent.select(next_state)
            self.agent.update(self._state, self._action, reward, next_state, next_action, False)
            self._state, self._action = next_state, next_action
        stop = callback is not None and callback(info) is False
        return next_obs, stop, terminated or truncated

    def predict(self, obs, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        return int(self.agent.select(self.agent.discretize(obs), greedy=deterministic)), state


class DQNLearner(_EpisodicLearner):
    """The lightweight DQN: replay, Double DQN targets, Polyak updates."""

    suffix = ".pt"

    def end_episode(self) -> None:
        self.agent.end_episode()

    def step(self, obs, callback):
        action = self.agent.act(obs, greedy=False)
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        self.agent.remember(obs, action, reward, next_obs, terminated)
        stop = callback is not None and callback(info) is False
        return next_obs, stop, terminated or truncated


def build_episodic(algorithm: str, env: gym.Env, tc, *, seed: int | None = None):
    """A SARSA(λ) or DQN learner on `env` with the autoscaling toolkit's
    defaults; `learning_rate` and `gamma` from the spec when it sets them."""
    _require_discrete(algorithm, env)
    from dataclasses import replace

    from cli_ai.tactician.agents.episodic_params import DQNParams, SarsaParams, make_dqn, make_sarsa

    if algorithm == "sarsa":
        p = SarsaParams()
        dims = env.observation_space.shape[0]
        p = replace(p, bins=list(p.bins) if len(p.bins) == dims else [6] * dims,
                    gamma=tc.gamma if tc.given("gamma") else p.gamma)
        return SarsaLearner(env, make_sarsa(env, p, seed=seed), seed)
    if algorithm == "dqn":
        p = DQNParams()
        p = replace(p, learning_rate=tc.learning_rate if tc.given("learning_rate") else p.learning_rate,
                    gamma=tc.gamma if tc.given("gamma") else p.gamma)
        return DQNLearner(env, make_dqn(env, p, seed=seed), seed)
    raise ValueError(f"{algorithm!r} is not an episodic algorithm ({', '.join(EPISODIC_ALGORITHMS)})")
