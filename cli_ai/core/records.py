"""`StepRecord`: one evaluation of a run, as the loop records it and the run
directory writes it (kept in core so results and the console read it without
reaching up into the search layer)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cli_ai.core.backend import Value, to_json_value


@dataclass
class StepRecord:
    """One benchmark evaluation. Index 0 is the baseline."""

    index: int
    values: dict[str, Value]
    metric: float | None
    reward: float | None = None
    components: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    system: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    failed: bool = False
    error: str | None = None
    is_best: bool = False
    improvement_pct: float | None = None
    elapsed_s: float = 0.0
    phase: str = "search"  # baseline | search | recheck

    @property
    def usable(self) -> bool:
        return not self.failed and self.metric is not None and math.isfinite(self.metric)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["values"] = {k: to_json_value(v) for k, v in self.values.items()}
        if d["metric"] is not None and not math.isfinite(d["metric"]):
            d["metric"] = None
        return d
