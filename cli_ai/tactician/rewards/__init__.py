"""Rewards: pure functions that turn a measurement into a reward and its parts.

One module per family (`weighted`, `cdbtuner`, `hybrid` for instant, delta
and hybrid), their shared types in `base`; this module picks one by mode.

Every env scores a step through a `Reward` object made by
`make_reward(config, direction)`: `reset(baseline)` at the start of a run (or
episode), then `score(measurement)` per step, which returns a `RewardResult`
whose `components` go into the env's `info["reward_components"]` and the run's
trajectory.csv.

Modes (the spec's `reward.mode`); every parameter is an extra key of the spec's
`reward` block (`RewardConfig.params`), with the defaults listed here:

- `weighted` (default, seed 004): performance relative to the baseline,
  direction-aware, plus stability from I/O wait and memory pressure.
  Parameters: `performance_weight` (0.5), `stability_weight` (0.5).

- `cdbtuner` (seed 000, the CDBTune paper): throughput and latency deltas
  against the default configuration (Δ0) and against the previous step (Δt-1);
  for throughput Δ = (x - ref) / ref, for latency Δ = (ref - x) / ref, so a
  positive Δ is always an improvement. Per metric
      r = ((1 + Δ0)² - 1) · |1 + Δt-1|     if Δ0 > 0
      r = -((1 - Δ0)² - 1) · |1 - Δt-1|    otherwise
  and r = 0 when r > 0 while Δt-1 < 0 (better than the default, but worse than
  last step). total = tps_weight · r_tps + lat_weight · r_latency.
  Parameters (defaults): `tps_weight` 0.4, `lat_weight` 0.6, `eps` 1e-8 (floor
  of every denominator), `reward_invalid_penalty` -1.0 (the reward of a step
  whose throughput or latency is NaN, infinite or <= 0), `invalid_patience` 3
  (after this many consecutive invalid steps the result says `terminate`;
  0 never terminates), `reward_use_best_as_last` false (compare with the best
  throughput/latency so far instead of the previous step),
  `positive_reward_multiplier` 1.0 (applied to positive rewards only),
  `reward_floor` -10.0 (valid rewards are clipped here: the latency term has
  no lower bound).

- `instant`, `delta`, `hybrid` (seed 003's reward calculator): an absolute
  score and an EMA-normalized delta score, plus the legacy latency and
  load-balance penalties; `instant` uses the absolute score only, `delta` the
  delta score only, `hybrid` mixes them. Latencies are in **seconds** here (a
  measurement's `latency_ms` is divided by 1000); throughput is in the unit the
  measurement reports (requests/s for the scheduler env).
      throughput_term = sigmoid((throughput - throughput_target) / (throughput_sigma · throughput_target))
                        (0.5 at the target, → 1 above it, → 0 below)
      latency_term    = min(latency / latency_threshold, latency_term_cap)
      logistic_penalty = kappa · sigmoid((latency - latency_threshold) / sigma)
      absolute_score  = alpha · throughput_term - (1 - alpha) · latency_term - logistic_penalty
      delta_score     = beta · Δthroughput - gamma · Δlatency
                        Δx = clip((x - ema_x) / max(sqrt(var_x), ema_std_floor · |ema_x|, 1e-9), ±delta_clip)
                        with ema_x, var_x the exponential moving mean and variance
                        (ema_alpha) before this step; the first step's delta is 0
      latency_penalty = latency_weight · latency_penalty_scale · max(0, latency - latency_threshold)
      balance_penalty = balance_penalty_weight · load_balance_penalty · balance_signal
      total (hybrid)  = absolute_weight · absolute_score + delta_weight · delta_score
                        - latency_penalty - balance_penalty
      total (instant) = absolute_score - latency_penalty - balance_penalty
      total (delta)   = delta_score - latency_penalty - balance_penalty
  The balance signal is `Measurement.extra["balance"]` (or, if absent,
  `extra["queue_variance"]`): a non-negative imbalance, 0 when perfectly
  balanced. The scheduler env passes the variance across replicas of their
  drain times in units of the mean request work (or, with
  `scheduler.balance_signal: "queued"`, of their queue lengths in units of
  max_batch_size), each capped at 10.
  Defaults (seed 003's calculator): throughput_target 10.0, throughput_sigma
  0.25, latency_threshold 2.0 s, latency_term_cap 10.0, alpha 0.5, beta 0.3,
  gamma 0.2, kappa 0.3, sigma 1.0 s, ema_alpha 0.1, ema_std_floor 0.05,
  delta_clip 3.0, absolute_weight 0.7, delta_weight 0.3, latency_weight 0.0
  (the legacy soft-threshold penalty is off until given a weight, e.g. 1.0),
  latency_penalty_scale 3.0, balance_penalty_weight 1.0, load_balance_penalty
  0.05, reward_invalid_penalty -1.0.

Failures are worse than any valid outcome, in every mode: each reward has a
`floor`, the lowest reward a valid measurement can score (weighted: -|w_p| ·
5, performance being clipped to ±5; cdbtuner: `reward_floor`; instant, delta
and hybrid: the bounded core's minimum minus 10 for the penalties, the total
clipped there), and a failed step (the env's `safety.failure_penalty`) or an
invalid measurement (`reward_invalid_penalty`) scores at most floor - 1
(`rewards.base.failure_reward`).

Where a measurement lacks `throughput` or `latency_ms`, `metric` stands in for
the missing one by the spec's direction: a maximized metric is a throughput, a
minimized one a latency in milliseconds.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Mapping

# One module per mode; the names below are this package's public API.
from cli_ai.tactician.rewards.base import (
    FAILURE_MARGIN, Measurement, Reward, RewardResult, failure_reward, sigmoid, throughput_and_latency,
)
from cli_ai.tactician.rewards.cdbtuner import (
    CDBTUNER_DEFAULTS, CDBTunerReward, cdbtuner_delta, cdbtuner_reward, cdbtuner_term,
)
from cli_ai.tactician.rewards.hybrid import (
    HYBRID_DEFAULTS, HYBRID_MODES, EmaState, HybridReward, absolute_score, balance_penalty, balance_signal,
    combine_hybrid, delta_score, ema_update, latency_term, logistic_penalty, normalized_delta,
    soft_threshold_penalty, throughput_term,
)
from cli_ai.tactician.rewards.weighted import WeightedReward, relative_performance, stability_score, weighted_reward


MODES = ("weighted", "cdbtuner", *HYBRID_MODES)
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "weighted": {},
    "cdbtuner": CDBTUNER_DEFAULTS,
    **{m: HYBRID_DEFAULTS for m in HYBRID_MODES},
}
_POSITIVE = {"throughput_target", "throughput_sigma", "latency_threshold", "latency_term_cap", "sigma", "ema_alpha", "eps",
             "delta_clip"}
_NON_NEGATIVE = {"tps_weight", "lat_weight", "positive_reward_multiplier", "beta", "gamma", "kappa", "ema_std_floor",
                 "absolute_weight", "delta_weight", "latency_weight", "latency_penalty_scale", "balance_penalty_weight",
                 "load_balance_penalty", "invalid_patience"}


def reward_params(mode: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of `mode` with defaults filled, checked. Keys of another
    mode are ignored (a spec may keep them while switching modes); keys no mode
    knows are errors."""
    from cli_ai.errors import SpecError

    if mode not in MODES:
        close = difflib.get_close_matches(str(mode), MODES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"reward.mode: {mode!r} is not one of {', '.join(MODES)}{hint}")
    known = set(CDBTUNER_DEFAULTS) | set(HYBRID_DEFAULTS)
    defaults = MODE_DEFAULTS[mode]
    out = dict(defaults)
    problems = []
    for key, value in params.items():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"reward.{key}: unknown reward parameter{hint}")
            continue
        if key not in defaults:
            continue
        if key == "reward_use_best_as_last":
            if not isinstance(value, bool):
                problems.append(f"reward.{key}: expected true or false, got {value!r}")
                continue
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"reward.{key}: expected a finite number, got {value!r}")
            continue
        elif key in _POSITIVE and value <= 0:
            problems.append(f"reward.{key}: {value} must be above 0")
            continue
        elif key in _NON_NEGATIVE and value < 0:
            problems.append(f"reward.{key}: {value} must be at least 0")
            continue
        elif key == "reward_floor" and value >= 0:
            problems.append(f"reward.{key}: {value} must be below 0 (the lowest reward a valid measurement scores)")
            continue
        elif key == "invalid_patience" and not float(value).is_integer():
            problems.append(f"reward.{key}: {value} is not a whole number")
            continue
        elif key in ("ema_alpha", "alpha") and not 0 <= value <= 1:
            problems.append(f"reward.{key}: {value} must be in [0, 1]")
            continue
        out[key] = value
    if problems:
        raise SpecError(f"{len(problems)} problem(s) in the reward block", problems=problems)
    return out


def make_reward(config: Any, direction: str = "maximize") -> Reward:
    """The reward object for a spec's `reward` block: a RewardConfig, or a
    plain dict such as {"mode": "hybrid", "kappa": 0.5}. Unknown modes and
    parameters raise SpecError."""
    if isinstance(config, Mapping):
        raw = dict(config)
        mode = raw.pop("mode", "weighted")
        pw = raw.pop("performance_weight", 0.5)
        sw = raw.pop("stability_weight", 0.5)
        params = raw
    else:
        mode = getattr(config, "mode", "weighted")
        pw = getattr(config, "performance_weight", 0.5)
        sw = getattr(config, "stability_weight", 0.5)
        params = dict(getattr(config, "params", {}) or {})
    values = reward_params(mode, params)
    if mode == "weighted":
        return WeightedReward(direction, pw, sw)
    if mode == "cdbtuner":
        return CDBTunerReward(direction, **values)
    return HybridReward(mode, direction, **values)


__all__ = [
    "FAILURE_MARGIN", "Measurement", "Reward", "RewardResult", "failure_reward", "sigmoid", "throughput_and_latency",
    "WeightedReward", "relative_performance", "stability_score", "weighted_reward",
    "CDBTUNER_DEFAULTS", "CDBTunerReward", "cdbtuner_delta", "cdbtuner_reward", "cdbtuner_term",
    "HYBRID_DEFAULTS", "HYBRID_MODES", "EmaState", "HybridReward", "absolute_score", "balance_penalty",
    "balance_signal", "combine_hybrid", "delta_score", "ema_update", "latency_term", "logistic_penalty",
    "normalized_delta", "soft_threshold_penalty", "throughput_term",
    "MODES", "MODE_DEFAULTS", "reward_params", "make_reward",
]
