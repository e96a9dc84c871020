"""One tracker for policy runs: steps, episodes and budget.

`cli-ai tune` on a sequential target and the autoscaling toolkit's train, test
and compare commands all count steps and close episodes through
`EpisodeTracker`. What an episode's summary holds beyond its reward and metric
is the env's business: a target passes `stats`, a factory of per-episode
accumulators (the autoscaling env's QoS, workers and scaling counts), whose
summary lands in `EpisodeSummary.details`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from cli_ai.events import Event, EventSink, null_sink


class EpisodeStats(Protocol):
    """An env's own per-episode accumulator."""

    def record(self, action: Any, reward: float, info: Mapping[str, Any]) -> None: ...

    def summary(self) -> dict[str, Any]: ...


@dataclass
class EpisodeSummary:
    index: int
    steps: int
    reward: float
    mean_metric: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class EpisodeTracker:
    """Counts steps against `budget` (None: no limit), closes an episode when
    the env says it ended, and tells `sink` about each closed episode. With
    `rows` (a run directory), every step is written as a trajectory row."""

    budget: int | None = None
    sink: EventSink = null_sink
    rows: Any = None
    stats: Callable[[], EpisodeStats] | None = None
    steps: int = 0
    episodes: list[EpisodeSummary] = field(default_factory=list)
    _reward: float = 0.0
    _metrics: list[float] = field(default_factory=list)
    _ep_steps: int = 0
    _stats: EpisodeStats | None = None

    @property
    def exhausted(self) -> bool:
        return self.budget is not None and self.steps >= self.budget

    def record(self, action: Any, reward: float, terminated: bool, truncated: bool,
               info: Mapping[str, Any]) -> EpisodeSummary | None:
        """One step; returns the episode's summary when this step ended it."""
        if self._ep_steps == 0 and self.stats is not None:
            self._stats = self.stats()
        self.steps += 1
        self._ep_steps += 1
        self._reward += float(reward)
        metric = info.get("metric")
        if metric is not None and math.isfinite(float(metric)):
            self._metrics.append(float(metric))
        if self._stats is not None:
            self._stats.record(action, reward, info)
        if self.rows is not None:
            row = {"step": self.steps, "episode": len(self.episodes), "reward": float(reward), "metric": metric}
            for key, value in (info.get("reward_components") or {}).items():
                if isinstance(value, (int, float, bool)):
                    row[key] = float(value)
            self.rows.add_row(row)
        if terminated or truncated:
            return self._close(info.get("episode_metric"))
        return None

    def _close(self, episode_metric: float | None = None) -> EpisodeSummary | None:
        if not self._ep_steps:
            return None
        # An env whose metric accumulates over the episode (the scheduler's
        # latency percentiles) says so with `episode_metric` on the last step;
        # otherwise the episode's value is the mean of its steps.
        if episode_metric is not None:
            value = float(episode_metric)
        else:
            value = float(np.mean(self._metrics)) if self._metrics else float("nan")
        details = self._stats.summary() if self._stats is not None else {}
        ep = EpisodeSummary(len(self.episodes), self._ep_steps, self._reward, value, details)
        self.episodes.append(ep)
        self.sink(Event("episode", {"episode": ep, "steps": self.steps, "budget": self.budget}))
        self._reward, self._metrics, self._ep_steps, self._stats = 0.0, [], 0, None
        return ep
