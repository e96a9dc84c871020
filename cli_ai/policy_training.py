"""`cli-ai tune` for simulated targets (scheduler, autoscaling): train a policy.

These targets change nothing on the machine: the env is a simulation, one
step is one decision (route a request, scale workers), and the budget counts
steps, not benchmark runs. The run directory is the same as a knob run's:
spec.json, trajectory.csv (every step with its reward breakdown), the model,
result.json and a progress plot. The result compares the policy's first
training episode (untrained) with deterministic evaluation episodes of the
trained policy on fresh seeded traffic.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from cli_ai.errors import BadInputError, CliAiError, Interrupted
from cli_ai.events import Event, EventSink, null_sink
from cli_ai.results import RunDirectory, TuningResult
from cli_ai.spec import TuningSpec
from cli_ai.tactician.episodes import EpisodeSummary, EpisodeTracker
from cli_ai.tactician.loop import improvement_pct

CONTINUOUS_ONLY = ("ddpg", "td3", "sac", "per-ddpg")  # sarsa and dqn check the action space themselves
EVAL_EPISODES = 5


class _Recording(gym.Wrapper):
    def __init__(self, env: gym.Env, tracker: EpisodeTracker):
        super().__init__(env)
        self.tracker = tracker

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.tracker.record(action, reward, terminated, truncated, info)
        return obs, reward, terminated, truncated, info


def evaluate_policy_metric(model, spec: TuningSpec, *, seed: int, episodes: int) -> dict[str, Any]:
    """Deterministic roll-outs of `model` on fresh envs: each episode's metric
    (its `episode_metric`, else the mean of its steps), averaged."""
    from cli_ai.targets import get_target

    means, rewards = [], []
    for i in range(episodes):
        env = get_target(spec.target).policy_env(spec, seed=seed + i)
        obs, _ = env.reset(seed=seed + i)
        done, total, metrics, info = False, 0.0, [], {}
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            if info.get("metric") is not None:
                metrics.append(float(info["metric"]))
            done = terminated or truncated
        env.close()
        if info.get("episode_metric") is not None:
            means.append(float(info["episode_metric"]))
        else:
            means.append(float(np.mean(metrics)) if metrics else float("nan"))
        rewards.append(total)
    return {"episodes": episodes, "seed": seed, "mean_metric": float(np.mean(means)), "std_metric": float(np.std(means)),
            "mean_reward": float(np.mean(rewards)), "per_episode_metric": means}


def train_policy(spec: TuningSpec, options, *, sink: EventSink = null_sink) -> TuningResult:
    from cli_ai.tactician.agents.factory import build_agent, plan_agent
    from cli_ai.targets import get_target
    from cli_ai.tactician.loop import sb3_callbacks
    from cli_ai.tuning import tensorboard_dir

    spec = spec.with_overrides(budget=options.budget, algorithm=options.algorithm, seed=options.seed)
    tc = spec.training_config
    algorithm = tc.algorithm
    auto_note = []
    if algorithm == "auto":
        algorithm = "ppo"
        auto_note = [f"algorithm auto -> ppo: the {spec.target} target is sequential (one step is one decision), "
                     "where a reinforcement-learning policy is the natural search"]
    if algorithm in CONTINUOUS_ONLY:
        raise BadInputError(
            f"training_config.algorithm: {algorithm} needs a continuous action space; the {spec.target} target "
            "decides discretely: use ppo, dqn, sarsa or random"
        )
    budget = tc.budget if tc.budget is not None else tc.total_timesteps
    seed = tc.seed if tc.seed is not None else 0
    started = time.monotonic()
    rundir = RunDirectory(options.output_dir)
    rundir.flush_every = 500
    rundir.write_json("spec.json", spec.to_dict())
    for name, payload in options.attachments.items():
        rundir.write_json(name, payload)
    tracker = EpisodeTracker(budget=budget, sink=sink, rows=rundir)
    plan = plan_agent(algorithm, tc, budget)
    plan.notes[:0] = auto_note
    env = _Recording(get_target(spec.target).policy_env(spec, seed=seed), tracker)
    sink(Event("policy_started", {"spec": spec, "budget": budget, "agent": plan, "run_dir": str(rundir.path),
                                  "notes": plan.notes}))
    stopped, error, model_path, evaluation = "budget spent", None, None, None
    try:
        agent = build_agent(plan, env, seed=seed, verbose=options.verbose, tensorboard_log=tensorboard_dir(options))
        if hasattr(agent, "policy"):  # SB3
            agent.learn(total_timesteps=budget, callback=sb3_callbacks(tracker, breakdown=options.tensorboard is not None),
                        progress_bar=False)
            model_path = str(rundir.path / "model.zip")
            agent.save(model_path)
        else:  # random search, SARSA(lambda), the lightweight DQN
            agent.learn(budget, callback=lambda info: not tracker.exhausted)
            saved = agent.save(rundir.path / "model")
            model_path = str(saved) if saved else None
        if hasattr(agent, "predict"):
            evaluation = evaluate_policy_metric(agent, spec, seed=seed + 10_000, episodes=EVAL_EPISODES)
    except (Interrupted, KeyboardInterrupt) as exc:
        stopped, error = "interrupted", exc
    except CliAiError as exc:
        stopped, error = f"error: {exc}", exc
    rundir.close()
    first = tracker.episodes[0].mean_metric if tracker.episodes else None
    best = evaluation["mean_metric"] if evaluation else None
    improvement = improvement_pct(best, first, spec.metric_direction) if first is not None and best is not None else None
    result = TuningResult(
        workload=spec.workload_name, target=spec.target, applicable=get_target(spec.target).applicable, metric=spec.reward_metric, direction=spec.metric_direction,
        algorithm=algorithm, budget=budget, simulated=True, baseline_config={}, best_config={},
        baseline=first, best=best, improvement=improvement, evaluations=tracker.steps, failed_steps=0,
        stopped_reason=stopped, success=error is None, duration_s=time.monotonic() - started,
        run_dir=str(rundir.path), model_path=model_path, seed=seed, notes=list(plan.notes),
        extra={"kind": "policy", "episodes": len(tracker.episodes), "evaluation": evaluation,
               "baseline_is": "mean metric of the first training episode (untrained policy)",
               "best_is": f"mean metric of {EVAL_EPISODES} deterministic evaluation episodes of the trained policy"},
    )
    rundir.write_json("result.json", result.to_json())
    _plot_episodes(tracker.episodes, rundir.path / "plots" / "progress.png", spec, evaluation)
    sink(Event("policy_finished", {"result": result}))
    if error is not None:
        raise error
    return result


def _plot_episodes(episodes: list[EpisodeSummary], path: Path, spec: TuningSpec, evaluation) -> None:
    if not episodes:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    xs = [e.index for e in episodes]
    ax1.plot(xs, [e.reward for e in episodes], color="#4c72b0", label="episode reward")
    ax1.set_xlabel("training episode")
    ax1.set_ylabel("total reward")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(xs, [e.mean_metric for e in episodes], color="#dd8452", label=f"mean {spec.reward_metric} (training)")
    if evaluation:
        ax2.axhline(evaluation["mean_metric"], color="#55a868", linestyle="--", label="trained policy (evaluation)")
    ax2.set_xlabel("training episode")
    ax2.set_ylabel(f"{spec.reward_metric} ({'lower' if spec.metric_direction == 'minimize' else 'higher'} is better)")
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.suptitle(f"{spec.workload_name}: policy training (simulated {spec.target})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
