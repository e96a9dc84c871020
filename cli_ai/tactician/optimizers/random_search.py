"""Random search: every configuration drawn independently and uniformly over
the knob space (log-uniformly on log-scaled knobs, equally over enum values).

It learns nothing, which is what makes it the yardstick: an optimiser or an
agent that cannot beat it at the same budget is not worth its cost.
"""

from __future__ import annotations

import numpy as np

from cli_ai.tactician.optimizers.base import Choice, Optimizer, Outcome, Proposal


class RandomOptimizer(Optimizer):
    name = "random"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rng = np.random.default_rng(self.seed)
        self.choice = Choice("random", "uniform random search over the safe ranges (--algo random)")

    def ask(self, n: int = 1) -> list[Proposal]:
        return [Proposal(self.space.to_native(self.rng.uniform(-1.0, 1.0, self.space.dims))) for _ in range(n)]

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        return None
