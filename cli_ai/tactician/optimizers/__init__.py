"""Configuration optimisers behind the ask-and-tell interface of `base.py`.

`make_optimizer` builds the one a run asked for: `auto` (model-based, Optuna)
or `random`. The reinforcement-learning agents are built by
`cli_ai.tactician.agents.factory` and drive the gymnasium env instead.
"""

from __future__ import annotations

from typing import Mapping

from cli_ai.core.backend import Value
from cli_ai.tactician.knobs import KnobSpace
from cli_ai.tactician.optimizers.base import Choice, Optimizer, Outcome, Proposal

OPTIMIZERS = ("auto", "random")


def make_optimizer(name: str, space: KnobSpace, *, direction: str = "maximize", seed: int | None = None,
                   budget: int = 20, start: Mapping[str, Value] | None = None, start_runs: int = 1) -> Optimizer:
    """The optimiser called `name` over `space` for `budget` proposals."""
    if name == "random":
        from cli_ai.tactician.optimizers.random_search import RandomOptimizer

        return RandomOptimizer(space, direction=direction, seed=seed, budget=budget, start=start)
    if name == "auto":
        from cli_ai.tactician.optimizers.optuna_search import make_auto

        return make_auto(space, direction=direction, seed=seed, budget=budget, start=start, start_runs=start_runs)
    raise ValueError(f"unknown optimiser {name!r}; choose one of {', '.join(OPTIMIZERS)}")


__all__ = ["OPTIMIZERS", "Choice", "Optimizer", "Outcome", "Proposal", "make_optimizer"]
