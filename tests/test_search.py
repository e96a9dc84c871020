"""The search layer: the ask-and-tell interface, the Optuna adapter (`auto`),
random search, the loop's phases (baseline runs, search, re-measurement) and
the choice of the best by the evidence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cli_ai.spec import KnobSpec, VectorElement
from cli_ai.tactician.knobs import KnobSpace
from cli_ai.tactician.optimizers import Outcome, make_optimizer
from cli_ai.tactician.optimizers.base import worst_value

KNOBS = [
    KnobSpec("threads", "int", 1, 64, default=4),
    KnobSpec("ratio", "float", 0.0, 1.0, default=0.5),
    KnobSpec("buffer", "int", 4, 65536, scale="log", default=64),
    KnobSpec("mode", "enum", values=("a", "b", "c"), default="a"),
    KnobSpec("fast", "bool", default=False),
    KnobSpec("rmem", "vector", elements=(VectorElement(4096, 4096), VectorElement(16384, 4194304, "log"),
                                         VectorElement(65536, 16777216, "log"))),
    KnobSpec("small", "int", 0, 3, default=1),
]


def space(knobs=KNOBS, ordered=None) -> KnobSpace:
    return KnobSpace.from_specs(knobs, ordered or {})


def inside(values) -> bool:
    return (1 <= values["threads"] <= 64 and isinstance(values["threads"], int) and 0 <= values["ratio"] <= 1
            and 4 <= values["buffer"] <= 65536 and values["mode"] in ("a", "b", "c") and isinstance(values["fast"], bool)
            and values["rmem"][0] == 4096 and 16384 <= values["rmem"][1] <= 4194304
            and 65536 <= values["rmem"][2] <= 16777216 and values["small"] in (0, 1, 2, 3))


def test_optuna_space_maps_every_knob_type_and_back():
    from cli_ai.tactician.optimizers.optuna_search import OptunaSpace

    codec = OptunaSpace(space())
    # The fixed vector element is not searched; wide ints are continuous (rounded), narrow ones stay ints.
    assert set(codec.distributions) == {"threads", "ratio", "buffer", "mode", "fast", "rmem[1]", "rmem[2]", "small"}
    assert type(codec.distributions["threads"]).__name__ == "FloatDistribution"
    assert codec.distributions["buffer"].log is True
    assert type(codec.distributions["small"]).__name__ == "IntDistribution"
    values = codec.to_values({"threads": 7.6, "ratio": 0.25, "buffer": 1000.2, "mode": "b", "fast": True,
                              "rmem[1]": 20000.4, "rmem[2]": 70000.0, "small": 2})
    assert values == {"threads": 8, "ratio": 0.25, "buffer": 1000, "mode": "b", "fast": True,
                      "rmem": (4096, 20000, 70000), "small": 2}
    assert codec.to_values(codec.to_params(values)) == values
    # A current value outside the searched range cannot be placed in the model.
    assert codec.to_params({**values, "threads": 100}) is None
    assert codec.to_params({**values, "mode": "z"}) is None


def test_vector_order_is_repaired_where_the_kernel_wants_it():
    from cli_ai.tactician.optimizers.optuna_search import OptunaSpace

    knobs = [KnobSpec("net.ipv4.tcp_rmem", "vector", elements=(
        VectorElement(4096, 65536), VectorElement(4096, 1048576), VectorElement(4096, 16777216)))]
    codec = OptunaSpace(space(knobs, {"net.ipv4.tcp_rmem": "non-decreasing"}))
    values = codec.to_values({"net.ipv4.tcp_rmem[0]": 60000, "net.ipv4.tcp_rmem[1]": 5000,
                              "net.ipv4.tcp_rmem[2]": 4096})
    a, b, c = values["net.ipv4.tcp_rmem"]
    assert a <= b <= c


@pytest.mark.parametrize("name", ["auto", "random"])
def test_every_proposal_lies_inside_the_safe_ranges(name):
    opt = make_optimizer(name, space(), seed=3, budget=30, start=space().defaults(), start_runs=2)
    rng = np.random.default_rng(0)
    for _ in range(2):
        opt.observe(space().defaults(), Outcome(100 + rng.normal()))
    seen = []
    for i in range(12):
        for proposal in opt.ask(1):
            assert inside(proposal.values), proposal.values
            seen.append(proposal.values)
            failed = i % 5 == 4
            opt.tell(proposal, Outcome(None if failed else float(rng.normal(100, 5)), failed=failed,
                                       error="crash" if failed else None))
    assert len({repr(v) for v in seen}) > 6  # it explores


def test_auto_says_which_optimiser_and_why():
    from cli_ai.tactician.optimizers.optuna_search import choose_auto

    plan = choose_auto(space(), 30)
    assert plan.kind == "gp" and "GPSampler" in plan.reason and "infeasible" in plan.reason
    big = KnobSpace.from_specs([KnobSpec(f"k{i}", "int", 0, 100) for i in range(30)])
    assert choose_auto(big, 30).kind == "tpe" and "30 searched dimensions" in choose_auto(big, 30).reason
    assert choose_auto(space(), 90).kind == "gp"  # 8 dimensions: the GP still pays off at 90
    long = choose_auto(space(), 130)
    assert long.kind == "tpe" and "130 search evaluations" in long.reason
    ten = KnobSpace.from_specs([KnobSpec(f"k{i}", "int", 0, 100) for i in range(10)])
    assert choose_auto(ten, 60).kind == "gp" and choose_auto(ten, 97).kind == "tpe"
    opt = make_optimizer("auto", space(), seed=1, budget=30)
    assert opt.choice.name == "auto (gp)" and opt.choice.reason == plan.reason


def test_a_failure_reaches_the_model_as_infeasible_and_worst():
    import optuna

    opt = make_optimizer("auto", space(), seed=1, budget=20, start=space().defaults())
    opt.observe(space().defaults(), Outcome(50.0))
    (p,) = opt.ask(1)
    opt.tell(p, Outcome(80.0))
    (q,) = opt.ask(1)
    opt.tell(q, Outcome(None, failed=True, error="exit 1: out of memory"))
    trials = opt.study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert [t.constraints["failed"] for t in trials] == [0.0, 0.0, 1.0]
    assert trials[2].value < min(50.0, 80.0)  # worse than anything seen, never dropped
    assert worst_value([50.0, 80.0], "minimize") > 80.0


def test_auto_learns_where_the_crash_region_is():
    """A 2-D surface whose right half crashes and whose optimum sits just left
    of the edge: told as infeasible, the failures steer the GP away, so most
    model-based proposals are valid (the GP ignoring failed trials spent about
    30 of 40 on crashes)."""
    knobs = [KnobSpec("x", "float", 0.0, 1.0, default=0.1), KnobSpec("y", "float", 0.0, 1.0, default=0.5)]
    sp = KnobSpace.from_specs(knobs)
    opt = make_optimizer("auto", sp, seed=2, budget=30, start=sp.defaults())
    opt.observe(sp.defaults(), Outcome(10.0))
    crashes = 0
    for i in range(29):
        (p,) = opt.ask(1)
        x, y = p.values["x"], p.values["y"]
        if x > 0.6:
            crashes += i >= 8  # after the random start-up points
            opt.tell(p, Outcome(None, failed=True, error="crash"))
        else:
            opt.tell(p, Outcome(10 + 40 * x - 20 * (y - 0.5) ** 2))
    assert crashes <= 8, crashes


def test_random_search_is_seeded_and_uniform():
    a = make_optimizer("random", space(), seed=5, budget=10)
    b = make_optimizer("random", space(), seed=5, budget=10)
    assert [p.values for p in a.ask(5)] == [p.values for p in b.ask(5)]
    opt = make_optimizer("random", KnobSpace.from_specs([KnobSpec("x", "float", 0.0, 1.0)]), seed=1, budget=1)
    xs = [p.values["x"] for p in opt.ask(2000)]
    assert abs(np.mean(xs) - 0.5) < 0.03 and min(xs) < 0.02 and max(xs) > 0.98


# --------------------------------------------------------------------------- the loop


class FakeEnv:
    """Stands in for KnobTuningEnv.step_values: metric = f(values), or a failure."""

    def __init__(self, f):
        self.f = f
        self.calls = []

    def step_values(self, values):
        self.calls.append(dict(values))
        try:
            metric = self.f(values)
        except RuntimeError as exc:
            return None, -1.0, False, False, {"values": dict(values), "failed": True, "error": str(exc),
                                              "metric": math.nan}
        return None, 0.0, False, False, {"values": dict(values), "failed": False, "metric": metric}


def _tracker_with_baseline(budget, metrics=(100.0, 102.0, 98.0), values=None):
    from cli_ai.tactician.loop import Tracker

    t = Tracker(direction="maximize", budget=budget)
    t.record_baseline({"values": values or {"x": 0.5}, "runs": [{"metric": m} for m in metrics]})
    return t


def test_baseline_runs_count_in_the_budget_and_give_the_noise():
    t = _tracker_with_baseline(10)
    assert t.evaluations == 3 and t.baseline_metric == pytest.approx(100.0)
    assert t.baseline_cv == pytest.approx(0.02)
    assert [r.phase for r in t.records] == ["baseline"] * 3


def test_run_optimizer_spends_exactly_the_search_budget_in_batches():
    from cli_ai.tactician.loop import run_optimizer

    sp = KnobSpace.from_specs([KnobSpec("x", "float", 0.0, 1.0, default=0.5)])
    t = _tracker_with_baseline(20)
    t.search_limit = 17
    opt = make_optimizer("random", sp, seed=1, budget=14)
    env = FakeEnv(lambda v: 100 + 50 * v["x"])
    run_optimizer(opt, env, t, batch=4)
    assert t.evaluations == 17 and len(env.calls) == 14
    assert [r.phase for r in t.records[3:]] == ["search"] * 14


def test_the_best_is_what_re_measurement_supports_not_the_luckiest_sample():
    from cli_ai.tactician.loop import recheck

    t = _tracker_with_baseline(8)
    t.search_limit = 6
    # A lucky sample (true 105, measured 130) and a real gain (true 120).
    measured = {0.2: [130.0, 104.0], 0.8: [121.0, 119.0], 0.4: [110.0]}
    env = FakeEnv(lambda v: measured[v["x"]].pop(0))
    for x in (0.2, 0.8, 0.4):
        t.record_step(0.0, env.step_values({"x": x})[4])
    assert t.best.values == {"x": 0.2}  # the luckiest single measurement
    recheck(env, t)  # two evaluations left: the two top candidates once more each
    assert t.evaluations == 8
    assert [r.values["x"] for r in t.records if r.phase == "recheck"] == [0.2, 0.8]
    best = t.select_best()
    assert best.values == {"x": 0.8} and best.mean == pytest.approx(120.0) and best.runs == 2


def test_a_configuration_that_failed_once_is_never_the_best():
    t = _tracker_with_baseline(10)
    t.record_step(0.0, {"values": {"x": 0.9}, "metric": 200.0})
    t.record_step(0.0, {"values": {"x": 0.9}, "failed": True, "error": "crash", "metric": math.nan})
    t.record_step(0.0, {"values": {"x": 0.3}, "metric": 101.0})
    t.record_step(0.0, {"values": {"x": 0.3}, "metric": 103.0})
    assert t.select_best().values == {"x": 0.3}


def test_the_baseline_wins_when_nothing_beats_it():
    t = _tracker_with_baseline(10)
    for m in (99.0, 97.0):
        t.record_step(0.0, {"values": {"x": 0.9}, "metric": m})
    best = t.select_best()
    assert best.is_baseline and best.values == {"x": 0.5}


def test_recheck_budget_is_a_tenth_at_most_five():
    from cli_ai.tactician.loop import recheck_runs

    assert [recheck_runs(b) for b in (5, 12, 20, 29, 30, 40, 100, 500)] == [0, 0, 0, 0, 3, 4, 5, 5]
