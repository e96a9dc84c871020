"""Reactive baselines of the autoscaling toolkit: `reactiveaverage` and `reactivemaximum`.

Both size the pool from what they have just seen, with no learning:

    λ̂        = mean (reactiveaverage) or maximum (reactivemaximum) of the arrival rates
               observed in the last ``horizon`` steps (the current one included)
    backlog  = queued tasks / step_duration            (drain the queue within a step)
    target   = ceil((λ̂ + backlog) / μ × (1 + headroom)), clamped to [min, max] workers

where μ is the per-worker capacity in tasks per second, ``concurrency / mean task size``
of the workload (`AutoscalingEnv.per_worker_capacity`). The action taken is the allowed
scaling step that brings the worker count closest to the target (the smaller step when
two are equally close), so with the default steps of ±1 they move one worker per step
towards the target, and stay put once there.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Sequence

import numpy as np

ARRIVAL_RATE, QUEUED, WORKERS = 7, 0, 4


class ReactivePolicy:
    name = "reactive"
    statistic = "mean"

    def __init__(
        self,
        action_deltas: Sequence[int],
        capacity_per_worker: float,
        step_duration: float,
        *,
        min_workers: int = 1,
        max_workers: int = 32,
        horizon: int = 2,
        headroom: float = 0.25,
    ):
        if capacity_per_worker <= 0:
            raise ValueError("capacity_per_worker must be above 0")
        if horizon < 1:
            raise ValueError("horizon must be at least 1")
        self.action_deltas = tuple(int(d) for d in action_deltas)
        self.capacity_per_worker = float(capacity_per_worker)
        self.step_duration = float(step_duration)
        self.min_workers = int(min_workers)
        self.max_workers = int(max_workers)
        self.horizon = int(horizon)
        self.headroom = float(headroom)
        self._rates: deque[float] = deque(maxlen=self.horizon)

    @classmethod
    def from_env(cls, env, **kwargs) -> "ReactivePolicy":
        e = env.unwrapped
        return cls(
            e.action_deltas,
            e.per_worker_capacity,
            e.config.step_duration,
            min_workers=e.min_workers,
            max_workers=e.max_workers,
            **kwargs,
        )

    def reset(self) -> None:
        self._rates.clear()

    def estimate(self) -> float:
        rates = self._rates
        if not rates:
            return 0.0
        return float(max(rates)) if self.statistic == "max" else float(sum(rates) / len(rates))

    def target_workers(self, obs: Sequence[float]) -> int:
        rate = self.estimate()
        backlog = float(obs[QUEUED]) / self.step_duration
        need = (rate + backlog) / self.capacity_per_worker * (1.0 + self.headroom)
        return int(min(max(math.ceil(need - 1e-9), self.min_workers), self.max_workers))

    def act(self, obs: Sequence[float], *, greedy: bool = True) -> int:
        obs = np.asarray(obs, dtype=float)
        self._rates.append(float(obs[ARRIVAL_RATE]))
        workers = int(round(obs[WORKERS]))
        target = self.target_workers(obs)
        best, best_key = 0, None
        for i, d in enumerate(self.action_deltas):
            key = (abs(workers + d - target), abs(d))
            if best_key is None or key < best_key:
                best, best_key = i, key
        return best


class ReactiveAverage(ReactivePolicy):
    name = "reactiveaverage"
    statistic = "mean"


class ReactiveMaximum(ReactivePolicy):
    name = "reactivemaximum"
    statistic = "max"


BASELINES = {"reactiveaverage": ReactiveAverage, "reactivemaximum": ReactiveMaximum}


def make_baseline(name: str, env, **kwargs) -> ReactivePolicy:
    try:
        cls = BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}") from None
    return cls.from_env(env, **kwargs)
