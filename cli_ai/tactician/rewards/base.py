"""What every reward shares: the measurement it scores, its result, the
`Reward` protocol, and small helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Protocol


@dataclass(frozen=True)
class Measurement:
    """What one benchmark evaluation observed.

    `metric` is the spec's reward_metric in its native unit. `throughput` and
    `latency_ms` are filled when the benchmark reports them (for rewards that
    use both). `iowait` and `memory_pressure` are fractions in [0, 1]. `extra`
    carries other signals; the seed-003 modes read `extra["balance"]` (or
    `extra["queue_variance"]`) as the load-imbalance signal."""

    metric: float
    throughput: float | None = None
    latency_ms: float | None = None
    iowait: float = 0.0
    memory_pressure: float = 0.0
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RewardResult:
    """A reward and its breakdown. `terminate` asks the env to end the episode
    (the cdbtuner guardrail after too many invalid measurements); it is also
    in `components` as 1.0/0.0 where a reward sets it."""

    reward: float
    components: dict[str, float]
    terminate: bool = False


class Reward(Protocol):
    #: The lowest reward a valid measurement can score (rewards with an
    #: unbounded term clip at it), so that a failure can score below it.
    floor: float

    def reset(self, baseline: Measurement) -> None: ...

    def score(self, m: Measurement) -> RewardResult: ...


#: How far below a reward's floor a failed or invalid step scores.
FAILURE_MARGIN = 1.0


def failure_reward(reward: "Reward", penalty: float) -> float:
    """What a failed step (or an invalid measurement) scores: the spec's
    penalty, but never more than the worst valid outcome minus a margin, so an
    agent is never rewarded for provoking a failure rather than measuring a
    very bad configuration."""
    floor = getattr(reward, "floor", None)  # a Reward of the Python API's may not say
    return float(penalty if floor is None else min(penalty, floor - FAILURE_MARGIN))




def finite_positive(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def throughput_and_latency(m: Measurement, direction: str = "maximize") -> tuple[float | None, float | None]:
    """(throughput, latency_ms) of a measurement; `metric` stands in for the
    missing one by direction (maximize: a throughput, minimize: a latency in ms)."""
    tp, lat = m.throughput, m.latency_ms
    if tp is None and direction != "minimize":
        tp = m.metric
    if lat is None and direction == "minimize":
        lat = m.metric
    return (None if tp is None else float(tp)), (None if lat is None else float(lat))


def sigmoid(x: float) -> float:
    """The logistic function, without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
