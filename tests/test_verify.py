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
    assert Verification(runs=3, baseline=[100, 130, 70], best=[110, 80, 140]).summary()["verdict"] == "inconclusive"
    worse = Verification(runs=2, baseline=[10, 10.2], best=[12, 12.1], direction="minimize").summary()
    assert worse["verdict"] == "worse" and worse["improvement"] < 0
    assert Verification(runs=1, baseline=[1.0], best=[2.0]).summary()["verdict"] == "inconclusive"  # one run proves nothing
    assert Verification(runs=2).summary()["verdict"] == "failed"


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
