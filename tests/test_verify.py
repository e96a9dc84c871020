"""Verification: paired re-measurements of baseline and best, and the verdict."""

from __future__ import annotations

import pytest

from cli_ai.errors import BenchmarkError
from cli_ai.tactician.envs.knob_env import Evaluation
from cli_ai.tactician.verify import Verification, verify
from tests.conftest import EXAMPLES


def test_verdicts():
    v = Verification(runs=3, baseline=[100, 102, 98], best=[120, 119, 121])
    s = v.summary()
    assert s["verdict"] == "better" and s["improvement"] == pytest.approx(20.0)
    assert s["t"] == pytest.approx(20 / ((4 / 3 + 1 / 3) ** 0.5))
    assert Verification(runs=3, baseline=[100, 130, 70], best=[110, 80, 140]).summary()["verdict"] == "not significant"
    worse = Verification(runs=2, baseline=[10, 10.2], best=[12, 12.1], direction="minimize").summary()
    assert worse["verdict"] == "worse" and worse["improvement"] < 0
    assert Verification(runs=1, baseline=[1.0], best=[2.0]).summary()["verdict"] == "not significant"  # one run proves nothing
    assert Verification(runs=2).summary()["verdict"] == "failed"


def test_welch_matches_the_textbook():
    """Welch's t, the Welch-Satterthwaite degrees of freedom, the two-sided p
    and the interval, against values computed by hand (and scipy's own test)."""
    from scipy import stats

    a, b = [100.0, 102.0, 98.0, 101.0], [104.0, 99.0, 108.0]
    s = Verification(runs=4, baseline=a, best=b).summary()
    va, vb = stats.tvar(a), stats.tvar(b)
    se = (va / 4 + vb / 3) ** 0.5
    df = (va / 4 + vb / 3) ** 2 / ((va / 4) ** 2 / 3 + (vb / 3) ** 2 / 2)
    assert s["t"] == pytest.approx((sum(b) / 3 - sum(a) / 4) / se)
    assert s["df"] == pytest.approx(df)
    assert s["p_value"] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    half = stats.t.ppf(0.975, df) * se / (sum(a) / 4) * 100
    assert s["ci_high"] - s["ci_low"] == pytest.approx(2 * half)
    assert s["ci_low"] < s["improvement"] < s["ci_high"]
    assert s["verdict"] == "not significant"  # p is about 0.3 on these


def test_a_best_that_fails_in_verification_is_not_better():
    s = Verification(runs=3, baseline=[1.0, 1.1, 1.0], best=[5.0, 5.1], failures=["best run 3: crashed"]).summary()
    assert s["verdict"] == "failed"


def test_verify_interleaves_and_survives_failures():
    order, applied = [], []
    calls = {"n": 0}

    def evaluate(values):
        calls["n"] += 1
        order.append(values["x"])
        if calls["n"] == 3:
            raise BenchmarkError("flaky")
        return Evaluation(metric=float(values["x"]))

    v = verify(2, {"x": 1}, {"x": 5}, apply=applied.append, evaluate=evaluate)
    assert order == [1, 5, 1, 5]
    assert v.baseline == [1.0] and v.best == [5.0, 5.0]
    assert v.failures == ["baseline run 2: flaky"]


def test_tune_verify_on_the_dry_run(tmp_path):
    from cli_ai import tuning

    result = tuning.tune(EXAMPLES / "nginx_high_concurrency.json",
                         tuning.TuneOptions(dry_run=True, budget=12, seed=3, algorithm="random", verify=3,
                                            output_dir=str(tmp_path)))
    ver = result.to_json()["verification"]
    assert len(ver["baseline_runs"]) == 3 and len(ver["best_runs"]) == 3
    assert ver["verdict"] == "better"
    assert result.evaluations == 12  # verification runs are on top of the budget
