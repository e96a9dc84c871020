"""Episodes: run a policy through the env and summarise what happened.

A policy is anything with ``reset()`` and ``act(obs, greedy=...) -> int`` (the SARSA and
DQN agents, the reactive baselines). Summaries are plain dicts with the seed's episode
metrics: total and mean reward, mean and final QoS, mean and max workers, processed
tasks, QoS violations, unfinished tasks, scaling and no-op counts.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np

SUMMARY_KEYS = (
    "total_reward",
    "mean_reward",
    "mean_qos",
    "final_qos",
    "mean_workers",
    "max_workers",
    "qos_per_worker",
    "processed_tasks",
    "qos_violations",
    "unfinished_tasks",
    "scaling_actions",
    "noop_actions",
    "steps",
)

STEP_FIELDS = (
    "episode",
    "seed",
    "step",
    "time",
    "phase",
    "action",
    "delta",
    "workers",
    "workers_avg",
    "queued",
    "running",
    "arrival_rate",
    "qos",
    "qos_rate",
    "final_qos",
    "avg_processing_time",
    "reward",
)


class EpisodeTracker:
    """Accumulates one episode's steps into the seed's episode metrics."""

    def __init__(self, noop_action: int):
        self.noop_action = noop_action
        self.rewards: list[float] = []
        self.qos: list[float] = []
        self.workers: list[float] = []
        self.workers_avg: list[float] = []
        self.scaling = 0
        self.noop = 0
        self.last: dict[str, Any] = {}
        self.components: dict[str, float] = {}
        self.started = time.perf_counter()

    def record(self, action: int, reward: float, info: dict[str, Any]) -> None:
        self.rewards.append(float(reward))
        self.qos.append(float(info["qos"]))
        self.workers.append(float(info["workers"]))
        self.workers_avg.append(float(info["workers_avg"]))
        if info.get("scaled"):
            self.scaling += 1
        if int(action) == self.noop_action:
            self.noop += 1
        for k, v in info.get("reward_components", {}).items():
            self.components[k] = self.components.get(k, 0.0) + float(v)
        self.last = info

    def summary(self) -> dict[str, Any]:
        n = len(self.rewards)
        last = self.last
        mean_qos = float(np.mean(self.qos)) if n else 1.0
        mean_workers = float(np.mean(self.workers_avg)) if n else 0.0
        return {
            "total_reward": float(sum(self.rewards)),
            "mean_reward": float(sum(self.rewards) / n) if n else 0.0,
            "steps": n,
            "mean_qos": mean_qos,
            "final_qos": float(last.get("final_qos", 1.0)),
            "mean_workers": mean_workers,
            "max_workers": int(max(self.workers)) if n else 0,
            "qos_per_worker": mean_qos / mean_workers if mean_workers > 0 else 0.0,
            "arrived_tasks": int(last.get("arrived", 0)),
            "processed_tasks": int(last.get("processed", 0)),
            "qos_violations": int(last.get("missed", 0)),
            "unfinished_tasks": int(last.get("queued", 0)) + int(last.get("running", 0)),
            "scaling_actions": self.scaling,
            "noop_actions": self.noop,
            "reward_components": dict(self.components),
            "wall_time": time.perf_counter() - self.started,
        }


def step_row(episode: int, seed: int | None, info: dict[str, Any]) -> dict[str, Any]:
    row = {"episode": episode, "seed": seed}
    for key in STEP_FIELDS[2:]:
        value = info.get(key)
        row[key] = round(value, 6) if isinstance(value, float) else value
    return row


def run_episode(
    env,
    policy,
    *,
    seed: int | None = None,
    greedy: bool = True,
    episode: int = 0,
    step_rows: list | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """One roll-out; returns its summary (with the seed), appending per-step rows if asked."""
    unwrapped = env.unwrapped
    obs, _ = env.reset(seed=seed)
    policy.reset()
    tracker = EpisodeTracker(unwrapped.noop_action)
    while True:
        action = policy.act(obs, greedy=greedy)
        obs, reward, terminated, truncated, info = env.step(action)
        tracker.record(action, reward, info)
        if step_rows is not None:
            step_rows.append(step_row(episode, seed, info))
        if on_step is not None:
            on_step(info)
        if terminated or truncated:
            break
    out = tracker.summary()
    out["episode"] = episode
    out["seed"] = seed
    return out


def evaluate(env, policy, seeds: Sequence[int], *, step_rows: list | None = None,
             on_episode: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Greedy roll-outs on the given seeds; per-episode summaries and their aggregate."""
    episodes = []
    for i, seed in enumerate(seeds):
        summary = run_episode(env, policy, seed=int(seed), greedy=True, episode=i, step_rows=step_rows)
        episodes.append(summary)
        if on_episode is not None:
            on_episode(summary)
    return {"episodes": len(episodes), "seeds": [int(s) for s in seeds], **aggregate(episodes), "per_episode": episodes}


def aggregate(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Mean and (population) standard deviation of each episode metric."""
    summaries = list(summaries)
    out: dict[str, Any] = {}
    for key in SUMMARY_KEYS:
        values = [float(s[key]) for s in summaries if key in s and s[key] is not None]
        if not values:
            continue
        out[f"{key}_mean"] = float(np.mean(values))
        out[f"{key}_std"] = float(np.std(values))
    if "total_reward_mean" in out:
        out["reward_mean"] = out["total_reward_mean"]
        out["reward_std"] = out["total_reward_std"]
    return out


def evaluation_seeds(base: int | None, n: int, *, offset: int = 10_000) -> list[int]:
    """Seeds of evaluation episodes: fixed, distinct from training seeds."""
    start = (base or 0) + offset
    return [start + i for i in range(n)]


