"""Proof that the best configuration is better: re-measure it against the
baseline, alternately (baseline, best, baseline, best, ...) so that a drift of
the machine during the runs hits both alike.

The best value of a search is biased upward (it won because, among other
things, its noise was favourable); a fresh set of paired runs is not. The
verdict is Welch's t-test on the two samples, with the Welch-Satterthwaite
degrees of freedom: `better` when the gain is in the right direction with a
two-sided p-value below `alpha`, `worse` when it is significant the other
way, else `not significant`. The confidence interval of the gain (in percent
of the baseline mean) comes with it. `failed` means a side has no
measurement, or the best configuration failed in one of its runs.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from cli_ai.errors import BackendWriteError, BenchmarkError, TargetError
from cli_ai.core.backend import Value

ALPHA = 0.05
VERDICTS = ("better", "not significant", "worse", "failed")


@dataclass(frozen=True)
class WelchTest:
    """Welch's unequal-variance t-test of `b` against `a`, signed so that a
    positive difference is an improvement in `direction`."""

    diff: float  # improvement of the means, in metric units (positive = better)
    se: float
    t: float | None
    df: float | None
    p_value: float
    ci: tuple[float, float]  # of `diff`, at 1 - alpha

    @classmethod
    def of(cls, a: Sequence[float], b: Sequence[float], *, direction: str = "maximize",
           alpha: float = ALPHA) -> "WelchTest":
        from scipy import stats

        na, nb = len(a), len(b)
        if na < 2 or nb < 2:
            raise ValueError("Welch's test needs at least two measurements on each side")
        ma, mb = statistics.fmean(a), statistics.fmean(b)
        va, vb = statistics.variance(a), statistics.variance(b)
        diff = (mb - ma) if direction == "maximize" else (ma - mb)
        se2 = va / na + vb / nb
        se = math.sqrt(se2)
        if se == 0:
            # Identical runs on both sides: the difference is exact.
            p = 1.0 if diff == 0 else 0.0
            return cls(diff, 0.0, None, None, p, (diff, diff))
        df = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
        t = diff / se
        p = float(2 * stats.t.sf(abs(t), df))
        half = float(stats.t.ppf(1 - alpha / 2, df)) * se
        return cls(diff, se, t, df, p, (diff - half, diff + half))

    def verdict(self, alpha: float = ALPHA) -> str:
        if self.p_value < alpha:
            return "better" if self.diff > 0 else "worse"
        return "not significant"


def min_detectable_gain(cv: float, runs: int, alpha: float = ALPHA) -> float | None:
    """About the smallest gain (a fraction of the baseline) that `runs`
    measurements per side can show at `alpha`, for noise `cv` on each run."""
    if runs < 2 or cv is None:
        return None
    from scipy import stats

    return float(stats.t.ppf(1 - alpha / 2, 2 * runs - 2)) * cv * math.sqrt(2.0 / runs)


@dataclass
class Verification:
    runs: int
    baseline: list[float] = field(default_factory=list)
    best: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    direction: str = "maximize"
    alpha: float = ALPHA

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
            "improvement": None, "ci_low": None, "ci_high": None, "t": None, "df": None, "p_value": None,
            "alpha": self.alpha, "test": "Welch's t-test (two-sided)", "verdict": "not significant",
        }
        best_failed = any(f.startswith("best ") for f in self.failures)
        if bm is None or tm is None or best_failed:
            out["verdict"] = "failed"  # a configuration that fails now and then is not a better one
            return out
        if bm:
            change = (tm - bm) / abs(bm) * 100.0
            out["improvement"] = -change if self.direction == "minimize" else change
        if len(self.baseline) < 2 or len(self.best) < 2:
            return out  # one run a side: no test, so nothing is shown
        test = WelchTest.of(self.baseline, self.best, direction=self.direction, alpha=self.alpha)
        out.update(t=test.t, df=test.df, p_value=test.p_value, verdict=test.verdict(self.alpha))
        if bm:
            out["ci_low"], out["ci_high"] = (c / abs(bm) * 100.0 for c in test.ci)
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
    """`runs` alternating measurements each of the baseline and the best configuration."""
    v = Verification(runs=runs, direction=direction)
    for i in range(runs):
        for label, values, into in (("baseline", baseline_values, v.baseline), ("best", best_values, v.best)):
            try:
                apply(values)
                metric = float(evaluate(values).metric)
                if not math.isfinite(metric):
                    raise BenchmarkError("the benchmark reported no finite metric")
                into.append(metric)
                if on_run:
                    on_run(label, i, metric, None)
            except (BackendWriteError, BenchmarkError, TargetError) as exc:
                v.failures.append(f"{label} run {i + 1}: {exc}")
                if on_run:
                    on_run(label, i, None, str(exc))
    return v


__all__ = ["ALPHA", "VERDICTS", "Verification", "WelchTest", "min_detectable_gain", "verify"]
