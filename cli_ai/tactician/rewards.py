"""Rewards: pure functions that turn a measurement into a reward and its parts.

Every env scores a step through a `Reward` object made by `make_reward(config)`:
`reset(baseline)` at the start of a run, then `score(measurement)` per step,
which returns a `RewardResult` whose `components` go into the env's `info` and
the run's trajectory.csv.

Modes (the spec's `reward.mode`):
- `weighted` (default, seed 004): performance relative to the baseline,
  direction-aware, plus stability from I/O wait and memory pressure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol


@dataclass(frozen=True)
class Measurement:
    """What one benchmark evaluation observed.

    `metric` is the spec's reward_metric in its native unit. `throughput` and
    `latency_ms` are filled when the benchmark reports them (for rewards that
    use both). `iowait` and `memory_pressure` are fractions in [0, 1]."""

    metric: float
    throughput: float | None = None
    latency_ms: float | None = None
    iowait: float = 0.0
    memory_pressure: float = 0.0
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RewardResult:
    reward: float
    components: dict[str, float]


class Reward(Protocol):
    def reset(self, baseline: Measurement) -> None: ...

    def score(self, m: Measurement) -> RewardResult: ...


# --------------------------------------------------------------------------- weighted (seed 004)


def relative_performance(metric: float, baseline: float, direction: str = "maximize", cap: float = 2.0) -> float:
    """Improvement over the baseline as a fraction (+0.25 = 25 % better),
    direction-aware, clipped to [-cap, cap] so one outlier cannot dominate."""
    if not (math.isfinite(metric) and math.isfinite(baseline)):
        return -cap
    scale = abs(baseline) if baseline != 0 else 1.0
    delta = (metric - baseline) / scale
    if direction == "minimize":
        delta = -delta
    return max(-cap, min(cap, delta))


def stability_score(iowait: float, memory_pressure: float) -> float:
    """1 for an idle-looking system, falling towards 0 as I/O wait and memory
    pressure (both fractions of time) grow."""
    io = min(max(iowait, 0.0), 1.0)
    mem = min(max(memory_pressure, 0.0), 1.0)
    return 1.0 - 0.5 * io - 0.5 * mem


def weighted_reward(
    metric: float,
    baseline: float,
    *,
    direction: str = "maximize",
    iowait: float = 0.0,
    memory_pressure: float = 0.0,
    performance_weight: float = 0.5,
    stability_weight: float = 0.5,
) -> RewardResult:
    """Seed 004's multi-objective reward: w_p * performance + w_s * stability."""
    perf = relative_performance(metric, baseline, direction)
    stab = stability_score(iowait, memory_pressure)
    total = performance_weight * perf + stability_weight * stab
    return RewardResult(
        reward=float(total),
        components={
            "performance": float(perf),
            "stability": float(stab),
            "performance_weight": float(performance_weight),
            "stability_weight": float(stability_weight),
        },
    )


class WeightedReward:
    """`weighted` mode bound to a baseline measured at reset."""

    def __init__(self, direction: str = "maximize", performance_weight: float = 0.5, stability_weight: float = 0.5):
        self.direction = direction
        self.performance_weight = performance_weight
        self.stability_weight = stability_weight
        self.baseline: Measurement | None = None

    def reset(self, baseline: Measurement) -> None:
        self.baseline = baseline

    def score(self, m: Measurement) -> RewardResult:
        base = self.baseline.metric if self.baseline else m.metric
        return weighted_reward(
            m.metric,
            base,
            direction=self.direction,
            iowait=m.iowait,
            memory_pressure=m.memory_pressure,
            performance_weight=self.performance_weight,
            stability_weight=self.stability_weight,
        )


def make_reward(config: Any, direction: str = "maximize") -> Reward:
    """The reward object for a spec's `reward` block (a RewardConfig)."""
    mode = getattr(config, "mode", "weighted")
    if mode == "weighted":
        return WeightedReward(direction, config.performance_weight, config.stability_weight)
    raise ValueError(f"reward mode {mode!r} is not available yet")
