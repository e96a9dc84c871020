"""Reactive routing policies for SchedulerEnv, with SB3's `predict` interface.

`predict(obs, state=None, episode_start=None, deterministic=True)` returns
`(action, state)` like a stable-baselines3 model, for one observation (an int
action) or a batch (an array of actions), so evaluation code treats baselines
and trained models alike. They read the observation layout of
`cli_ai.tactician.envs.scheduler` (see `obs_index`).

- `round_robin`: replicas in turn, whatever their speed or load.
- `least_outstanding`: the replica with the fewest outstanding requests
  (queued + in flight); ties go to the faster replica, then the lower index.
- `least_work`: the replica whose remaining work divided by its speed is the
  smallest (a stronger heuristic that knows the request sizes and speeds).
- `random`: uniformly at random (seeded).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from typing import Any

import numpy as np

from cli_ai.tactician.envs.scheduler import REPLICA_FEATURES, obs_index


class _Baseline(ABC):
    name = "baseline"

    def __init__(self, n_replicas: int, seed: int | None = None):
        if n_replicas < 1:
            raise ValueError("a routing policy needs at least one replica")
        self.n = n_replicas
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget per-episode state (called at every episode start)."""

    def _col(self, obs: np.ndarray, feature: str) -> np.ndarray:
        start = obs_index(self.n, feature, 0)
        return obs[..., start : start + self.n * len(REPLICA_FEATURES) : len(REPLICA_FEATURES)]

    @abstractmethod
    def _choose(self, obs: np.ndarray) -> int:
        """The replica for the request described by one observation."""

    def predict(self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        obs = np.asarray(obs, dtype=np.float32)
        if episode_start is not None and np.any(episode_start):
            self.reset()
        if obs.ndim == 1:
            return int(self._choose(obs)), state
        return np.array([self._choose(o) for o in obs], dtype=np.int64), state


class RoundRobinPolicy(_Baseline):
    name = "round_robin"

    def reset(self) -> None:
        self._next = 0

    def _choose(self, obs: np.ndarray) -> int:
        a = self._next
        self._next = (self._next + 1) % self.n
        return a


class LeastOutstandingPolicy(_Baseline):
    name = "least_outstanding"

    def _choose(self, obs: np.ndarray) -> int:
        outstanding = self._col(obs, "queued") + self._col(obs, "in_flight")
        speed = self._col(obs, "speed")
        # lexsort: last key first; fewest outstanding, then fastest, then lowest index
        return int(np.lexsort((np.arange(self.n), -speed, np.round(outstanding, 6)))[0])


class LeastWorkPolicy(_Baseline):
    name = "least_work"

    def _choose(self, obs: np.ndarray) -> int:
        backlog = self._col(obs, "backlog")
        speed = self._col(obs, "speed")
        return int(np.lexsort((np.arange(self.n), -speed, np.round(backlog, 6)))[0])


class RandomPolicy(_Baseline):
    name = "random"

    def reset(self) -> None:
        if not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(self.seed)

    def _choose(self, obs: np.ndarray) -> int:
        return int(self._rng.integers(self.n))


BASELINES: dict[str, type[_Baseline]] = {
    cls.name: cls for cls in (RoundRobinPolicy, LeastOutstandingPolicy, LeastWorkPolicy, RandomPolicy)
}


def make_baseline(name: str, n_replicas: int, *, seed: int | None = None) -> _Baseline:
    """A baseline by name: round_robin, least_outstanding, least_work, random."""
    try:
        cls = BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown scheduler baseline {name!r}; choose one of {', '.join(BASELINES)}") from None
    return cls(n_replicas, seed=seed)
