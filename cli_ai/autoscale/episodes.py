"""Episodes: run a policy through the env and summarise what happened.

A policy is anything with ``reset()`` and ``act(obs, greedy=...) -> int`` (the SARSA and
DQN agents, the reactive baselines). Summaries are plain dicts with the seed's episode
metrics: total and mean reward, mean and final QoS, mean and max workers, processed
tasks, QoS violations, unfinished tasks, scaling and no-op counts.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

from cli_ai.tactician.envs.autoscaling_stats import AutoscalingStats
from cli_ai.tactician.compare import run_episodes as core_run_episodes

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


def step_row(episode: int, seed: int | None, info: dict[str, Any]) -> dict[str, Any]:
    row = {"episode": episode, "seed": seed}
    for key in STEP_FIELDS[2:]:
        value = info.get(key)
        row[key] = round(value, 6) if isinstance(value, float) else value
    return row


def run_episodes(env, policy, seeds: Sequence[int], *, first_index: int = 0, step_rows: list | None = None,
                 on_episode: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Greedy roll-outs on the seeded episodes (the engine's compare core):
    one summary each (with its index and seed), per-step rows if asked."""
    noop = env.unwrapped.noop_action

    def on_step(i: int, seed: int, info) -> None:
        if step_rows is not None:
            step_rows.append(step_row(first_index + i, seed, info))

    def summarize(_env, episode, i: int, seed: int) -> dict[str, Any]:
        return {**episode.details, "episode": first_index + i, "seed": seed}

    return core_run_episodes(env, policy, seeds, summarize=summarize, stats=lambda: AutoscalingStats(noop),
                             on_step=on_step, on_episode=on_episode)


def run_episode(env, policy, *, seed: int | None = None, episode: int = 0,
                step_rows: list | None = None) -> dict[str, Any]:
    """One greedy roll-out; its summary (with the seed), appending per-step rows if asked."""
    return run_episodes(env, policy, [seed], first_index=episode, step_rows=step_rows)[0]


def evaluate(env, policy, seeds: Sequence[int], *, step_rows: list | None = None,
             on_episode: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Greedy roll-outs on the given seeds; per-episode summaries and their aggregate."""
    episodes = run_episodes(env, policy, [int(s) for s in seeds], step_rows=step_rows, on_episode=on_episode)
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


