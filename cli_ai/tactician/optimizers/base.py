"""The small interface between the tuning loop and a configuration optimiser.

Ask-and-tell, as Optuna has it: the loop asks for a batch of configurations,
evaluates each one (apply, benchmark, restore on failure) and tells the
optimiser what came of it, a metric or a failure with its reason. The
optimiser never touches the machine, the Guard, the journal or the budget;
the loop owns those, exactly as it does for the reinforcement-learning agents.
Because proposals come in batches, evaluating several at once (on several
hosts) changes the loop, not the optimisers.

The optimiser knows the knob space (`KnobSpace`: types, log scales, the
safety-narrowed ranges, fixed vector elements) and where the run starts (the
current values, which were measured as the baseline before the first ask).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from cli_ai.core.backend import Value
from cli_ai.tactician.knobs import KnobSpace


@dataclass
class Proposal:
    """One configuration to evaluate. `token` is the optimiser's own handle
    (an Optuna trial, say); the loop passes it back untouched."""

    values: dict[str, Value]
    token: Any = None


@dataclass(frozen=True)
class Outcome:
    """What one evaluation gave: a metric, or a failure and why."""

    metric: float | None
    failed: bool = False
    error: str | None = None

    @property
    def usable(self) -> bool:
        return not self.failed and self.metric is not None and math.isfinite(self.metric)


@dataclass
class Choice:
    """Which optimiser a run uses and why (shown in the header and the notes)."""

    name: str
    reason: str
    settings: dict[str, Any] = field(default_factory=dict)


class Optimizer(ABC):
    """Proposes configurations inside a knob space; learns from their outcomes.

    Subclasses implement `ask` and `tell`. `observe` tells the optimiser about
    evaluations it did not propose (the baseline runs of the current values),
    so that its model starts from what is known.
    """

    #: A short name for output (`auto (gp)`, `random`).
    name: str = "optimizer"

    def __init__(self, space: KnobSpace, *, direction: str = "maximize", seed: int | None = None,
                 budget: int = 20, start: Mapping[str, Value] | None = None):
        """
        :param space: the knobs and their safe ranges (already narrowed by the safety checks)
        :param direction: "maximize" or "minimize" the metric
        :param seed: seed for a reproducible sequence of proposals
        :param budget: how many proposals the run will ask for in all
        :param start: the configuration the run starts from (the current values)
        """
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be maximize or minimize, not {direction!r}")
        self.space = space
        self.direction = direction
        self.seed = seed
        self.budget = max(1, int(budget))
        self.start = dict(start or {})
        self.choice = Choice(self.name, "")

    @abstractmethod
    def ask(self, n: int = 1) -> list[Proposal]:
        """Up to `n` configurations to evaluate next (all may run at once)."""

    @abstractmethod
    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        """The outcome of one proposal returned by `ask`."""

    def observe(self, values: Mapping[str, Value], outcome: Outcome) -> None:
        """An evaluation the optimiser did not propose (default: ignored)."""

    def close(self) -> None:
        """Release what the optimiser holds."""


def worst_value(metrics: Sequence[float], direction: str) -> float:
    """A value worse than every metric seen: what a failed evaluation is worth
    to an optimiser that needs a number (never better than a valid result)."""
    finite = [m for m in metrics if math.isfinite(m)]
    if not finite:
        return -1.0 if direction == "maximize" else 1.0
    lo, hi = min(finite), max(finite)
    margin = max(hi - lo, abs(hi) * 0.1, 1e-9)
    return lo - margin if direction == "maximize" else hi + margin


__all__ = ["Choice", "Optimizer", "Outcome", "Proposal", "worst_value"]
