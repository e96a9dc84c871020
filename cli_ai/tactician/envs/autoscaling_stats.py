"""The autoscaling env's episode metrics (seed 002): total and mean reward,
mean and final QoS, mean and max workers, processed tasks, QoS violations,
unfinished tasks, scaling and no-op counts, reward components, wall time."""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np


class AutoscalingStats:
    """One autoscaling episode's steps as the seed's episode metrics (an
    `EpisodeStats` for `cli_ai.tactician.episodes.EpisodeTracker`)."""

    def __init__(self, noop_action: int):
        self.noop_action = noop_action
        self.rewards: list[float] = []
        self.qos: list[float] = []
        self.workers: list[float] = []
        self.workers_avg: list[float] = []
        self.scaling = 0
        self.noop = 0
        self.last: Mapping[str, Any] = {}
        self.components: dict[str, float] = {}
        self.started = time.perf_counter()

    def record(self, action: Any, reward: float, info: Mapping[str, Any]) -> None:
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
