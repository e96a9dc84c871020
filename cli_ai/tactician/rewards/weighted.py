"""Seed 004's weighted reward: performance relative to the baseline, plus stability."""

from __future__ import annotations

import math

from cli_ai.tactician.rewards.base import Measurement, RewardResult


PERFORMANCE_CAP = 5.0


def relative_performance(metric: float, baseline: float, direction: str = "maximize", cap: float = PERFORMANCE_CAP) -> float:
    """How much better than the baseline, direction-aware, clipped to [-cap, cap].

    For positive metrics it is the log ratio ln(metric / baseline): about the
    relative change for small changes (+0.095 for 10 % better), symmetric for
    doubling and halving (+-0.69), and it keeps telling a 5x gain from a 7x
    one where a clipped linear ratio would call both "the cap". Metrics that
    can be zero or negative (a program's own score) use the linear relative
    change (metric - baseline) / |baseline| instead."""
    if not (math.isfinite(metric) and math.isfinite(baseline)):
        return -cap
    if metric > 0 and baseline > 0:
        delta = math.log(metric / baseline)
    else:
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
        # performance is clipped to [-cap, cap], stability is in [0, 1]
        self.floor = -abs(performance_weight) * PERFORMANCE_CAP - max(0.0, -stability_weight)

    def reset(self, baseline: Measurement) -> None:
        self.baseline = baseline

    def score(self, m: Measurement) -> RewardResult:
        if not math.isfinite(m.metric):  # no measurement: below every valid one
            from cli_ai.tactician.rewards.base import failure_reward

            penalty = failure_reward(self, -1.0)
            return RewardResult(penalty, {"performance": 0.0, "stability": 0.0, "invalid": 1.0,
                                          "performance_weight": float(self.performance_weight),
                                          "stability_weight": float(self.stability_weight)})
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
