"""The reward library: every function against values computed by hand (the
arithmetic is in the comments), every guardrail, every mode, and selection."""

from __future__ import annotations

import math

import numpy as np

import pytest

from cli_ai.errors import SpecError
from cli_ai.spec import RewardConfig, spec_from_dict
from cli_ai.tactician.rewards import (
    CDBTunerReward,
    HybridReward,
    Measurement,
    WeightedReward,
    absolute_score,
    balance_penalty,
    cdbtuner_delta,
    cdbtuner_reward,
    cdbtuner_term,
    combine_hybrid,
    delta_score,
    ema_update,
    latency_term,
    logistic_penalty,
    make_reward,
    normalized_delta,
    sigmoid,
    soft_threshold_penalty,
    throughput_term,
)

approx = pytest.approx


def M(tps=None, lat_ms=None, metric=0.0, **extra):
    return Measurement(metric=metric, throughput=tps, latency_ms=lat_ms, extra=extra)


# --------------------------------------------------------------------------- cdbtuner: pure functions


def test_cdbtuner_delta_direction_and_eps():
    assert cdbtuner_delta(110, 100) == approx(0.1)  # (110 - 100) / 100
    assert cdbtuner_delta(9, 10, lower_is_better=True) == approx(0.1)  # (10 - 9) / 10
    assert cdbtuner_delta(12, 10, lower_is_better=True) == approx(-0.2)  # (10 - 12) / 10
    assert cdbtuner_delta(1, 0, eps=1e-3) == approx(1000.0)  # (1 - 0) / max(0, 1e-3)


@pytest.mark.parametrize(
    "d0, dt, expected",
    [
        (0.1, 0.1, 0.231),  # ((1.1)^2 - 1) * |1.1| = 0.21 * 1.1
        (0.2, -0.05, 0.0),  # (1.44 - 1) * 0.95 = 0.418 > 0 but dt < 0 -> 0
        (-0.2, 0.1, -0.396),  # -((1.2)^2 - 1) * |1 - 0.1| = -0.44 * 0.9
        (-0.1, -0.3, -0.273),  # -((1.1)^2 - 1) * |1 + 0.3| = -0.21 * 1.3
        (0.0, 0.5, 0.0),  # -((1)^2 - 1) * ... = 0
    ],
)
def test_cdbtuner_term(d0, dt, expected):
    assert cdbtuner_term(d0, dt) == approx(expected, abs=1e-12)


def test_cdbtuner_reward_combines_weighted_terms():
    r = cdbtuner_reward(120, 8, default_tps=100, default_lat=10, last_tps=110, last_lat=9)
    c = r.components
    # tps: d0 = 0.2, dt = 10/110 = 0.090909; r = 0.44 * 1.090909 = 0.48
    assert c["delta0_tps"] == approx(0.2) and c["deltat_tps"] == approx(10 / 110)
    assert c["reward_tps"] == approx(0.48)
    # latency: d0 = (10-8)/10 = 0.2, dt = (9-8)/9 = 0.111111; r = 0.44 * 1.111111 = 0.488889
    assert c["delta0_lat"] == approx(0.2) and c["deltat_lat"] == approx(1 / 9)
    assert c["reward_latency"] == approx(0.44 * 10 / 9)
    # 0.4 * 0.48 + 0.6 * 0.488889 = 0.192 + 0.293333 = 0.485333
    assert r.reward == approx(0.192 + 0.6 * 0.44 * 10 / 9)
    assert c["reward_raw"] == c["reward_final"] == approx(r.reward)


def test_cdbtuner_reward_weights_and_multiplier():
    r = cdbtuner_reward(120, 8, default_tps=100, default_lat=10, last_tps=110, last_lat=9,
                        tps_weight=1.0, lat_weight=0.0, positive_reward_multiplier=2.0)
    assert r.components["reward_raw"] == approx(0.48)
    assert r.reward == approx(0.96)  # positive: 0.48 * 2
    worse = cdbtuner_reward(80, 12, default_tps=100, default_lat=10, last_tps=100, last_lat=10,
                            positive_reward_multiplier=2.0)
    # tps d0 = dt = -0.2: -(1.44 - 1) * 1.2 = -0.528; latency the same; total -0.528, not multiplied
    assert worse.reward == approx(-0.528)


# --------------------------------------------------------------------------- cdbtuner: the stateful reward


def test_cdbtuner_tracks_default_last_best():
    r = make_reward(RewardConfig(mode="cdbtuner"))
    assert isinstance(r, CDBTunerReward)
    r.reset(M(100, 10))
    s1 = r.score(M(120, 8))
    # d0 = dt = 0.2 for both: (1.44 - 1) * 1.2 = 0.528 each; total 0.528
    assert s1.reward == approx(0.528)
    assert s1.components["default_tps"] == 100 and s1.components["best_tps"] == 120 and s1.components["best_lat"] == 8
    s2 = r.score(M(110, 9))
    # better than default, worse than last: both terms positive with dt < 0 -> 0
    assert s2.reward == 0.0
    s3 = r.score(M(115, 8.5))
    # last = (110, 9): tps d0 0.15, dt 5/110; r = 0.3225 * 1.045455 = 0.337159
    # lat d0 0.15, dt 0.5/9;  r = 0.3225 * 1.055556 = 0.340417
    # 0.4 * 0.337159 + 0.6 * 0.340417 = 0.339114
    assert s3.components["reward_tps"] == approx(0.3225 * (1 + 5 / 110))
    assert s3.reward == approx(0.4 * 0.3225 * (1 + 5 / 110) + 0.6 * 0.3225 * (1 + 0.5 / 9))
    assert s3.components["best_tps"] == 120 and s3.components["best_lat"] == 8


def test_cdbtuner_best_as_last():
    r = make_reward({"mode": "cdbtuner", "reward_use_best_as_last": True})
    r.reset(M(100, 10))
    r.score(M(120, 8))
    r.score(M(110, 9))
    s3 = r.score(M(115, 8.5))
    # references are the best (120, 8): dt_tps = -5/120, dt_lat = -0.5/8, both terms positive -> 0
    assert s3.components["deltat_tps"] == approx(-5 / 120)
    assert s3.components["deltat_lat"] == approx(-0.0625)
    assert s3.reward == 0.0


def test_cdbtuner_positive_multiplier_only_on_positive():
    r = make_reward({"mode": "cdbtuner", "positive_reward_multiplier": 2.0})
    r.reset(M(100, 10))
    assert r.score(M(120, 8)).reward == approx(1.056)  # 0.528 * 2
    r.reset(M(100, 10))
    assert r.score(M(80, 12)).reward == approx(-0.528)  # negative: unchanged


@pytest.mark.parametrize("bad", [M(float("nan"), 10), M(100, float("inf")), M(0.0, 10), M(100, -1.0)])
def test_cdbtuner_invalid_metrics_give_penalty(bad):
    r = make_reward({"mode": "cdbtuner", "reward_invalid_penalty": -50.0})
    r.reset(M(100, 10))
    s = r.score(bad)
    assert s.reward == -50.0 and s.components["invalid"] == 1.0 and not s.terminate


def test_cdbtuner_invalid_patience_terminates_and_keeps_references():
    r = make_reward({"mode": "cdbtuner", "invalid_patience": 2})
    r.reset(M(100, 10))
    a = r.score(M(float("nan"), 10))
    assert not a.terminate and a.components["invalid_streak"] == 1
    ok = r.score(M(120, 8))  # a valid step resets the streak; references were untouched by the invalid one
    assert ok.reward == approx(0.528) and ok.components["invalid_streak"] == 0
    r.score(M(float("nan"), 10))
    b = r.score(M(None, float("nan")))
    assert b.terminate and b.components["terminate"] == 1.0 and b.components["invalid_streak"] == 2
    assert b.components["best_tps"] == 120


def test_cdbtuner_patience_zero_never_terminates():
    r = make_reward({"mode": "cdbtuner", "invalid_patience": 0})
    r.reset(M(100, 10))
    assert not any(r.score(M(float("nan"), 10)).terminate for _ in range(10))


def test_cdbtuner_invalid_baseline_uses_first_valid_step():
    r = make_reward({"mode": "cdbtuner"})
    r.reset(M(float("nan"), 10))
    first = r.score(M(100, 10))
    assert first.reward == 0.0 and first.components["default_tps"] == 100
    assert r.score(M(120, 8)).reward == approx(0.528)


def test_cdbtuner_single_metric_from_direction():
    # no throughput/latency fields: a maximized metric is the throughput, with both weights
    r = make_reward({"mode": "cdbtuner"}, direction="maximize")
    r.reset(Measurement(metric=100))
    s = r.score(Measurement(metric=120))
    assert s.components["reward_latency"] == 0.0
    assert s.reward == approx(0.528)  # (0.4 + 0.6) * 0.528
    r = make_reward({"mode": "cdbtuner"}, direction="minimize")
    r.reset(Measurement(metric=10))
    s = r.score(Measurement(metric=8))  # a minimized metric is a latency
    assert s.components["delta0_lat"] == approx(0.2) and s.reward == approx(0.528)


# --------------------------------------------------------------------------- seed 003: pure functions


def test_sigmoid_is_stable():
    assert sigmoid(0) == 0.5
    assert sigmoid(1000) == 1.0 and sigmoid(-1000) == 0.0
    assert sigmoid(1) == approx(0.7310585786)


def test_throughput_latency_and_logistic_terms():
    assert throughput_term(10, 10) == 0.5  # at the target
    assert throughput_term(12.5, 10, 0.25) == approx(sigmoid(1.0))  # (12.5 - 10) / 2.5 = 1
    assert throughput_term(7.5, 10, 0.25) == approx(sigmoid(-1.0))
    assert latency_term(3, 2) == 1.5
    assert latency_term(30, 2, cap=10) == 10  # capped
    assert logistic_penalty(2, 2, kappa=0.3, sigma=1) == approx(0.15)  # kappa / 2 at the threshold
    assert logistic_penalty(3, 2, kappa=0.3, sigma=1) == approx(0.3 * 0.7310585786)
    assert logistic_penalty(3, 2, kappa=0.3, sigma=100) == approx(0.3 * sigmoid(0.01))  # larger sigma: smoother


def test_absolute_score_by_hand():
    score, parts = absolute_score(12.5, 3.0, throughput_target=10, latency_threshold=2, alpha=0.5, kappa=0.3, sigma=1)
    # 0.5 * 0.7310586 - 0.5 * 1.5 - 0.2193176 = -0.6037883
    assert parts["throughput_term"] == approx(0.7310586)
    assert parts["latency_term"] == 1.5
    assert parts["logistic_penalty"] == approx(0.2193176)
    assert score == approx(-0.6037883)
    # alpha = 1: latency_term drops out, only the logistic penalty stays
    score1, _ = absolute_score(12.5, 3.0, throughput_target=10, latency_threshold=2, alpha=1.0)
    assert score1 == approx(0.7310586 - 0.2193176)


def test_ema_update_and_normalized_delta_by_hand():
    assert ema_update(10.0, 0.0, 12.0, 0.1) == approx((10.2, 0.4))  # diff 2: 10 + 0.2, 0.9*0 + 0.1*4
    assert ema_update(10.2, 0.4, 11.0, 0.1) == approx((10.28, 0.9 * 0.4 + 0.1 * 0.64))
    # var 0: the scale is the floor 0.05 * 10 = 0.5; (12 - 10) / 0.5 = 4, clipped to 3
    assert normalized_delta(12, 10, 0.0) == 3.0
    assert normalized_delta(12, 10, 0.0, clip=10) == approx(4.0)
    # var 0.4: sqrt = 0.632456 > floor 0.51; 0.8 / 0.632456 = 1.264911
    assert normalized_delta(11, 10.2, 0.4) == approx(0.8 / math.sqrt(0.4))


def test_delta_and_penalty_functions():
    assert delta_score(2.0, -2.0, beta=0.3, gamma=0.2) == approx(1.0)  # 0.6 + 0.4
    assert soft_threshold_penalty(3.0, 2.0, weight=1.0, scale=3.0) == approx(3.0)  # 1 * 3 * (3 - 2)
    assert soft_threshold_penalty(1.5, 2.0, weight=1.0, scale=3.0) == 0.0  # below the threshold
    assert soft_threshold_penalty(3.0, 2.0, weight=0.0) == 0.0  # legacy path off
    assert balance_penalty(4.0, balance_penalty_weight=1.0, load_balance_penalty=0.05) == approx(0.2)
    assert balance_penalty(4.0, balance_penalty_weight=2.0, load_balance_penalty=0.5) == approx(4.0)
    assert combine_hybrid("hybrid", -1.0, 1.0, 0.5, 0.25, absolute_weight=0.7, delta_weight=0.3) == approx(
        -0.7 + 0.3 - 0.75
    )
    assert combine_hybrid("instant", -1.0, 1.0, 0.5, 0.25) == approx(-1.75)
    assert combine_hybrid("delta", -1.0, 1.0, 0.5, 0.25) == approx(0.25)


# --------------------------------------------------------------------------- seed 003: the modes

# The same two steps in every mode; reward params: defaults, throughput_target 10, latency_threshold 2 s.
# baseline: 10 req/s, 2.0 s. step 1: 11 req/s, 1.8 s, balance signal 4.
#   throughput_term = sigmoid((11 - 10) / 2.5) = sigmoid(0.4) = 0.5986877
#   latency_term = 1.8 / 2 = 0.9; logistic = 0.3 * sigmoid(-0.2) = 0.1350498
#   absolute = 0.5 * 0.5986877 - 0.5 * 0.9 - 0.1350498 = -0.2857060
#   Δtp = (11 - 10) / max(0, 0.05 * 10) = 2; Δlat = (1.8 - 2) / max(0, 0.05 * 2) = -2
#   delta = 0.3 * 2 - 0.2 * (-2) = 1.0; balance = 1.0 * 0.05 * 4 = 0.2
ABS1 = 0.5 * sigmoid(0.4) - 0.45 - 0.3 * sigmoid(-0.2)
STEP1 = {"hybrid": 0.7 * ABS1 + 0.3 * 1.0 - 0.2, "instant": ABS1 - 0.2, "delta": 1.0 - 0.2}


@pytest.mark.parametrize("mode", ["instant", "delta", "hybrid"])
def test_modes_by_hand(mode):
    r = make_reward({"mode": mode, "throughput_target": 10, "latency_threshold": 2})
    assert isinstance(r, HybridReward) and r.mode == mode
    r.reset(M(10, 2000))
    s = r.score(M(11, 1800, balance=4.0))
    c = s.components
    assert ABS1 == approx(-0.2857060, abs=1e-7)
    assert c["absolute_score"] == approx(ABS1)
    assert c["throughput_term"] == approx(0.5986877)
    assert c["latency_term"] == approx(0.9)
    assert c["logistic_penalty"] == approx(0.1350498)
    assert c["delta_score"] == approx(1.0)
    assert c["balance_penalty"] == approx(0.2)
    assert s.reward == approx(STEP1[mode])
    assert c["reward"] == approx(s.reward)
    # the EMAs moved by ema_alpha: 10 + 0.1 * 1, 0.1 * 1^2; 2 + 0.1 * (-0.2), 0.1 * 0.04
    assert (c["throughput_ema"], c["throughput_var"]) == approx((10.1, 0.1))
    assert (c["latency_ema"], c["latency_var"]) == approx((1.98, 0.004))
    # step 2: 10.5 req/s, 2.0 s. Δtp = 0.4 / max(sqrt(0.1), 0.505) = 0.792079;
    # Δlat = 0.02 / max(sqrt(0.004) = 0.0632, 0.099) = 0.2020202; delta = 0.3*0.792079 - 0.2*0.2020202
    s2 = r.score(M(10.5, 2000))
    assert s2.components["throughput_delta"] == approx(0.4 / 0.505)
    assert s2.components["latency_delta"] == approx(0.02 / 0.099)
    assert s2.components["delta_score"] == approx(0.3 * 0.4 / 0.505 - 0.2 * 0.02 / 0.099)


def test_queue_variance_alias_and_legacy_latency_penalty():
    r = make_reward({"mode": "instant", "throughput_target": 10, "latency_threshold": 2, "latency_weight": 1.0,
                     "latency_penalty_scale": 3.0, "load_balance_penalty": 0.5})
    r.reset(None)
    s = r.score(M(10, 3000, queue_variance=2.0))
    # absolute = 0.5 * 0.5 - 0.5 * 1.5 - 0.3 * sigmoid(1) = -0.7193176
    # latency penalty = 1 * 3 * (3 - 2) = 3; balance = 1 * 0.5 * 2 = 1
    assert s.components["latency_penalty"] == approx(3.0)
    assert s.components["balance_penalty"] == approx(1.0)
    assert s.reward == approx(0.25 - 0.75 - 0.3 * sigmoid(1.0) - 4.0)


def test_first_step_without_baseline_has_no_delta():
    r = make_reward({"mode": "delta"})
    r.reset(None)
    s = r.score(M(11, 1800))
    assert s.components["delta_score"] == 0.0 and s.reward == 0.0
    assert s.components["throughput_ema"] == 11.0


def test_ema_follows_a_step_change_and_the_delta_fades():
    r = make_reward({"mode": "delta", "ema_alpha": 0.2})
    r.reset(M(10, 1000))
    steady = [r.score(M(10, 1000)).components["delta_score"] for _ in range(3)]
    assert steady == [0.0, 0.0, 0.0]  # no change, no delta
    deltas, emas = [], []
    for _ in range(30):
        c = r.score(M(12, 1000)).components
        deltas.append(c["throughput_delta"])
        emas.append(c["throughput_ema"])
    # the EMA closes the gap geometrically: 12 - 2 * 0.8^k
    assert emas[0] == approx(10.4) and emas[4] == approx(12 - 2 * 0.8**5)
    assert deltas[0] > 0 and deltas[-1] < 0.05 * deltas[0]
    assert all(a >= b for a, b in zip(deltas[3:], deltas[4:]))  # fades once the variance has grown


def test_smaller_ema_alpha_reacts_slower():
    def first_ema(alpha):
        r = make_reward({"mode": "hybrid", "ema_alpha": alpha})
        r.reset(M(10, 1000))
        return r.score(M(20, 1000)).components["throughput_ema"]

    assert first_ema(0.5) == approx(15.0) and first_ema(0.05) == approx(10.5)


def test_hybrid_invalid_measurement_is_penalized_without_touching_the_emas():
    r = make_reward({"mode": "hybrid", "reward_invalid_penalty": -50.0})
    r.reset(M(10, 1000))
    s = r.score(M(float("nan"), 1000))
    assert s.reward == -50.0 and s.components["invalid"] == 1.0
    ok = r.score(M(10, 1000))
    assert ok.components["throughput_ema"] == 10.0 and ok.components["delta_score"] == 0.0


def test_hybrid_latency_from_metric_when_minimizing():
    r = make_reward({"mode": "instant", "latency_threshold": 2}, direction="minimize")
    r.reset(None)
    c = r.score(Measurement(metric=3000.0)).components  # a minimized metric is a latency in ms
    assert c["latency_term"] == 1.5 and c["throughput_term"] == 0.0


# --------------------------------------------------------------------------- selection


def test_make_reward_selects_by_mode():
    assert isinstance(make_reward(RewardConfig()), WeightedReward)
    assert isinstance(make_reward(RewardConfig(mode="cdbtuner")), CDBTunerReward)
    for mode in ("instant", "delta", "hybrid"):
        r = make_reward(RewardConfig(mode=mode))
        assert isinstance(r, HybridReward) and r.mode == mode


def test_make_reward_reads_params_from_the_spec():
    spec = spec_from_dict({
        "workload_name": "w", "reward_metric": "tps", "benchmark_command": "true",
        "action_space": [{"param": "vm.swappiness", "min": 0, "max": 10}],
        "reward": {"mode": "cdbtuner", "tps_weight": 0.5, "lat_weight": 0.5, "invalid_patience": 5,
                   "reward_use_best_as_last": True, "kappa": 0.9},
    })
    r = make_reward(spec.reward, spec.metric_direction)
    assert isinstance(r, CDBTunerReward)
    assert (r.tps_weight, r.lat_weight, r.invalid_patience, r.use_best_as_last) == (0.5, 0.5, 5, True)
    h = make_reward(RewardConfig(mode="hybrid", params={"kappa": 0.9, "tps_weight": 0.1}))
    assert h.p["kappa"] == 0.9 and "tps_weight" not in h.p  # the other mode's key is ignored
    assert h.p["alpha"] == 0.5  # defaults filled


def test_make_reward_weighted_keeps_seed_004_behaviour():
    r = make_reward(RewardConfig(performance_weight=0.8, stability_weight=0.2), "maximize")
    r.reset(Measurement(metric=100))
    s = r.score(Measurement(metric=110, iowait=0.2))
    # 0.8 * ln(1.1) + 0.2 * (1 - 0.5 * 0.2) = 0.8 * 0.0953102 + 0.18 = 0.2562482
    assert s.reward == approx(0.2562482, abs=1e-6)


def test_make_reward_rejects_unknown_modes_and_params():
    with pytest.raises(SpecError, match="did you mean 'kappa'"):
        make_reward({"mode": "hybrid", "kapa": 1})
    with pytest.raises(SpecError, match="reward.mode"):
        make_reward({"mode": "hybird"})
    with pytest.raises(SpecError, match="reward.sigma: 0 must be above 0"):
        make_reward({"mode": "hybrid", "sigma": 0})
    with pytest.raises(SpecError, match="true or false"):
        make_reward({"mode": "cdbtuner", "reward_use_best_as_last": 1})


def test_schema_checks_reward_params():
    base = {"workload_name": "w", "reward_metric": "tps", "benchmark_command": "true",
            "action_space": [{"param": "vm.swappiness", "min": 0, "max": 10}]}
    with pytest.raises(SpecError) as err:
        spec_from_dict({**base, "reward": {"mode": "hybrid", "ema_alfa": 0.1}})
    assert "did you mean 'ema_alpha'" in str(err.value)
    with pytest.raises(SpecError, match="reward.alpha: 2 must be at most 1"):
        spec_from_dict({**base, "reward": {"mode": "hybrid", "alpha": 2}})
    with pytest.raises(SpecError, match="reward.reward_invalid_penalty"):
        spec_from_dict({**base, "reward": {"mode": "cdbtuner", "reward_invalid_penalty": 1}})


# --------------------------------------------------------------------------- weighted (seed 004)


def test_relative_performance_log_ratio_and_fallbacks():
    from cli_ai.tactician.rewards import relative_performance

    assert relative_performance(110.0, 100.0) == pytest.approx(math.log(1.1))  # 0.0953
    assert relative_performance(200.0, 100.0) == pytest.approx(0.693147, abs=1e-6)
    assert relative_performance(50.0, 100.0) == pytest.approx(-0.693147, abs=1e-6)  # halving mirrors doubling
    assert relative_performance(50.0, 100.0, "minimize") == pytest.approx(0.693147, abs=1e-6)
    # 5x and 7x stay apart (ln 5 = 1.609, ln 7 = 1.946)
    assert relative_performance(700.0, 100.0) - relative_performance(500.0, 100.0) == pytest.approx(0.3365, abs=1e-4)
    assert relative_performance(1e9, 1.0) == 5.0  # capped
    # a score that can be negative: linear relative change, (-10 - -20) / 20 = +0.5
    assert relative_performance(-10.0, -20.0) == pytest.approx(0.5)
    assert relative_performance(float("nan"), 1.0) == -5.0


def test_weighted_reward_hand_computed():
    from cli_ai.tactician.rewards import weighted_reward

    # perf = ln(120/100) = 0.18232; stab = 1 - 0.5*0.10 - 0.5*0.04 = 0.93
    # reward = 0.5*0.18232 + 0.5*0.93 = 0.55616
    r = weighted_reward(120.0, 100.0, iowait=0.10, memory_pressure=0.04)
    assert r.components["performance"] == pytest.approx(0.182322, abs=1e-6)
    assert r.components["stability"] == pytest.approx(0.93)
    assert r.reward == pytest.approx(0.556161, abs=1e-6)
    # weights from the spec's reward block: 0.8 * 0.18232 + 0.2 * 0.93 = 0.33186
    r = weighted_reward(120.0, 100.0, iowait=0.10, memory_pressure=0.04, performance_weight=0.8, stability_weight=0.2)
    assert r.reward == pytest.approx(0.331858, abs=1e-6)
    # latency to minimize: 80 ms against 100 ms is ln(100/80) = 0.22314 better
    r = weighted_reward(80.0, 100.0, direction="minimize")
    assert r.components["performance"] == pytest.approx(0.223144, abs=1e-6)
    assert r.components["stability"] == 1.0  # stability clips its inputs to [0, 1]
    assert weighted_reward(80.0, 100.0, iowait=3.0).components["stability"] == 0.5


# ---------------------------------------------------------------- failures are the worst outcome


@pytest.mark.parametrize("mode", ["weighted", "cdbtuner", "instant", "delta", "hybrid"])
@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_a_failure_scores_below_every_valid_measurement(mode, direction):
    """The default penalties (-1) scored better than a very bad valid step
    (cdbtuner about -5 at -90 % throughput, weighted down to -2.5), so an agent
    was rewarded for provoking failures."""
    from cli_ai.tactician.rewards import failure_reward

    rng = np.random.default_rng(0)
    r = make_reward({"mode": mode, "latency_weight": 1.0} if mode in ("instant", "delta", "hybrid") else {"mode": mode},
                    direction)
    r.reset(Measurement(metric=100.0, throughput=100.0, latency_ms=10.0, extra={"balance": 1.0}))
    fail = failure_reward(r, -1.0)
    invalid = r.score(Measurement(metric=float("nan"), throughput=float("nan"), latency_ms=float("nan"))).reward
    worst = np.inf
    for _ in range(3000):
        # from 1000x worse to 1000x better, latencies up to minutes, heavy imbalance and pressure
        tp, lat = 100.0 * 10 ** rng.uniform(-3, 3), 10.0 * 10 ** rng.uniform(-3, 4)
        m = Measurement(metric=tp if direction == "maximize" else lat, throughput=tp, latency_ms=lat,
                        iowait=rng.uniform(), memory_pressure=rng.uniform(), extra={"balance": rng.uniform(0, 50)})
        worst = min(worst, r.score(m).reward)
    assert fail < worst and fail <= r.floor - 1.0 and fail <= -1.0
    if mode != "weighted":  # weighted has no invalid measurement of its own
        assert invalid < worst


def test_a_failed_step_of_the_env_scores_below_the_worst_valid_one():
    """Through the knob env: a benchmark that fails scores below one that
    measured a hundredth of the baseline."""
    from cli_ai.errors import BenchmarkError
    from cli_ai.tactician.envs.knob_env import Evaluation

    calls = {"n": 0}

    def evaluate(values):
        calls["n"] += 1
        if values["x"] == 3:
            raise BenchmarkError("the program crashed")
        return Evaluation(metric=100.0 if calls["n"] == 1 else 1.0)

    env = _knob_env(evaluate)
    env.reset()
    _, bad, *_ = env.step(env.space.to_action({"x": 1}))
    _, failed, *_ = env.step(env.space.to_action({"x": 3}))
    assert failed < bad < 0


def _knob_env(evaluate):
    from cli_ai.safety.guard import FailureCounter
    from cli_ai.spec import KnobSpec
    from cli_ai.tactician.backends.simulated import SimulatedBackend
    from cli_ai.tactician.envs.knob_env import KnobTuningEnv
    from cli_ai.tactician.knobs import KnobSpace
    from cli_ai.tactician.surrogate import SimulatedObserver

    space = KnobSpace.from_specs([KnobSpec("x", "int", 0, 10)])
    backend = SimulatedBackend({"x": 5})
    return KnobTuningEnv(space, evaluate, apply=backend.write, read=backend.read, observer=SimulatedObserver(),
                         failures=FailureCounter(5))
