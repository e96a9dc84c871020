"""Proof that the best configuration is better: re-measure it against the
baseline, interleaved (baseline, best, baseline, best, ...) so that a drift of
the machine during the runs hits both alike.

The best value of a search is biased upward (it won because, among other
things, its noise was favourable); a fresh set of paired runs is not. The
verdict compares the difference of the means with its standard error
(Welch): "better" when it is at least two standard errors in the right
direction, "worse" symmetrically, else "inconclusive".
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from cli_ai.errors import BackendWriteError, BenchmarkError, TargetError
from cli_ai.tactician.backends.base import Value


@dataclass
class Verification:
    runs: int
    baseline: list[float] = field(default_factory=list)
    best: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    direction: str = "maximize"

    @staticmethod
    def _mean_std(xs: list[float]) -> tuple[float | None, float | None]:
        if not xs:
            return None, None
        return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)

    def summary(self) -> dict[str, Any]:
        bm, bs = self._mean_std(self.baseline)
        tm, ts = self._mean_std(self.best)
        out: dict[str, Any] = {
            "runs": self.runs, "baseline_runs": self.baseline, "best_runs": self.best, "failures": self.failures,
            "baseline_mean": bm, "baseline_std": bs, "best_mean": tm, "best_std": ts,
            "improvement": None, "t": None, "verdict": "inconclusive",
        }
        if bm is None or tm is None:
            out["verdict"] = "failed"
            return out
        if bm:
            change = (tm - bm) / abs(bm) * 100.0
            out["improvement"] = -change if self.direction == "minimize" else change
        se = math.sqrt((bs or 0.0) ** 2 / len(self.baseline) + (ts or 0.0) ** 2 / len(self.best))
        diff = (tm - bm) if self.direction == "maximize" else (bm - tm)
        if se > 0:
            out["t"] = diff / se
        if len(self.baseline) >= 2 and len(self.best) >= 2:
            if se == 0:
                out["verdict"] = "better" if diff > 0 else ("worse" if diff < 0 else "inconclusive")
            elif diff >= 2 * se:
                out["verdict"] = "better"
            elif diff <= -2 * se:
                out["verdict"] = "worse"
        return out


def verify(
    runs: int,
    baseline_values: Mapping[str, Value],
    best_values: Mapping[str, Value],
    *,
    apply: Callable[[Mapping[str, Value]], None],
    evaluate: Callable[[Mapping[str, Value]], Any],
    direction: str = "maximize",
    on_run: Callable[[str, int, float | None, str | None], None] | None = None,
) -> Verification:
    """`runs` paired measurements of the baseline and the best configuration."""
    v = Verification(runs=runs, direction=direction)
    for i in range(runs):
        for label, values, into in (("baseline", baseline_values, v.baseline), ("best", best_values, v.best)):
            try:
                apply(values)
                metric = float(evaluate(values).metric)
                into.append(metric)
                if on_run:
                    on_run(label, i, metric, None)
            except (BackendWriteError, BenchmarkError, TargetError) as exc:
                v.failures.append(f"{label} run {i + 1}: {exc}")
                if on_run:
                    on_run(label, i, None, str(exc))
    return v


__all__ = ["Verification", "verify", "asdict"]
