"""Rewards: pure functions that turn a measurement into a reward and its parts.

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
  `positive_reward_multiplier` 1.0 (applied to positive rewards only).

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

Where a measurement lacks `throughput` or `latency_ms`, `metric` stands in for
the missing one by the spec's direction: a maximized metric is a throughput, a
minimized one a latency in milliseconds.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol


@dataclass(frozen=True)
class Measurement:
    """What one benchmark evaluation observed.

    `metric` is the spec's reward_metric in its native unit. `throughput` and
    `latency_ms` are filled when the benchmark reports them (for rewards that
    use both). `iowait` and `memory_pressure` are fractions in [0, 1]. `extra`
    carries other signals; the seed-003 modes read `extra["balance"]` (or
    `extra["queue_variance"]`) as the load-imbalance signal."""

    metric: float
    throughput: float | None = None
    latency_ms: float | None = None
    iowait: float = 0.0
    memory_pressure: float = 0.0
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RewardResult:
    """A reward and its breakdown. `terminate` asks the env to end the episode
    (the cdbtuner guardrail after too many invalid measurements); it is also
    in `components` as 1.0/0.0 where a reward sets it."""

    reward: float
    components: dict[str, float]
    terminate: bool = False


class Reward(Protocol):
    def reset(self, baseline: Measurement) -> None: ...

    def score(self, m: Measurement) -> RewardResult: ...
# --------------------------------------------------------------------------- weighted (seed 004)


def relative_performance(metric: float, baseline: float, direction: str = "maximize", cap: float = 5.0) -> float:
    """How much better than the baseline, direction-aware, clipped to [-cap, cap].

    For positive metrics it is the log ratio ln(metric / baseline): about the
    relative change for small changes (+0.095 for 10 % better), symmetric for
    doubling and halving (+-0.69), and it keeps telling a 5x gain from a 7x
    one where a clipped linear ratio would call both "the cap". Metrics that
    can be zero or negative (a program's own score) use the linear relative
    change (metric - baseline) / |baseline| instead."""
    if not (math.isfinite(metric) and math.isfinite(baseline)):
        return -cap
    if metric > 0 and baseline > 0:
        delta = math.log(metric / baseline)
    else:
        scale = abs(baseline) if baseline != 0 else 1.0
        delta = (metric - baseline) / scale
    if direction == "minimize":
        delta = -delta
    return max(-cap, min(cap, delta))


def stability_score(iowait: float, memory_pressure: float) -> float:
    """1 for an idle-looking system, falling towards 0 as I/O wait and memory
    pressure (both fractions of time) grow."""
    io = min(max(iowait, 0.0), 1.0)
    mem = min(max(memory_pressure, 0.0), 1.0)
    return 1.0 - 0.5 * io - 0.5 * mem


def weighted_reward(
    metric: float,
    baseline: float,
    *,
    direction: str = "maximize",
    iowait: float = 0.0,
    memory_pressure: float = 0.0,
    performance_weight: float = 0.5,
    stability_weight: float = 0.5,
) -> RewardResult:
    """Seed 004's multi-objective reward: w_p * performance + w_s * stability."""
    perf = relative_performance(metric, baseline, direction)
    stab = stability_score(iowait, memory_pressure)
    total = performance_weight * perf + stability_weight * stab
    return RewardResult(
        reward=float(total),
        components={
            "performance": float(perf),
            "stability": float(stab),
            "performance_weight": float(performance_weight),
            "stability_weight": float(stability_weight),
        },
    )


class WeightedReward:
    """`weighted` mode bound to a baseline measured at reset."""

    def __init__(self, direction: str = "maximize", performance_weight: float = 0.5, stability_weight: float = 0.5):
        self.direction = direction
        self.performance_weight = performance_weight
        self.stability_weight = stability_weight
        self.baseline: Measurement | None = None

    def reset(self, baseline: Measurement) -> None:
        self.baseline = baseline

    def score(self, m: Measurement) -> RewardResult:
        base = self.baseline.metric if self.baseline else m.metric
        return weighted_reward(
            m.metric,
            base,
            direction=self.direction,
            iowait=m.iowait,
            memory_pressure=m.memory_pressure,
            performance_weight=self.performance_weight,
            stability_weight=self.stability_weight,
        )


# --------------------------------------------------------------------------- shared helpers


def _finite_positive(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def throughput_and_latency(m: Measurement, direction: str = "maximize") -> tuple[float | None, float | None]:
    """(throughput, latency_ms) of a measurement; `metric` stands in for the
    missing one by direction (maximize: a throughput, minimize: a latency in ms)."""
    tp, lat = m.throughput, m.latency_ms
    if tp is None and direction != "minimize":
        tp = m.metric
    if lat is None and direction == "minimize":
        lat = m.metric
    return (None if tp is None else float(tp)), (None if lat is None else float(lat))


def sigmoid(x: float) -> float:
    """The logistic function, without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


# --------------------------------------------------------------------------- cdbtuner (seed 000)


CDBTUNER_DEFAULTS: dict[str, Any] = {
    "tps_weight": 0.4,
    "lat_weight": 0.6,
    "eps": 1e-8,
    "reward_invalid_penalty": -1.0,
    "invalid_patience": 3,
    "reward_use_best_as_last": False,
    "positive_reward_multiplier": 1.0,
}


def cdbtuner_delta(x: float, ref: float, *, lower_is_better: bool = False, eps: float = 1e-8) -> float:
    """Relative change against a reference, positive when better:
    (x - ref) / ref for throughput, (ref - x) / ref for latency; the
    denominator is at least `eps`."""
    d = (x - ref) / max(abs(ref), eps)
    return -d if lower_is_better else d


def cdbtuner_term(delta0: float, deltat: float) -> float:
    """CDBTune's reward of one metric from its delta against the default (Δ0)
    and against the previous step (Δt-1)."""
    if delta0 > 0:
        r = ((1.0 + delta0) ** 2 - 1.0) * abs(1.0 + deltat)
    else:
        r = -((1.0 - delta0) ** 2 - 1.0) * abs(1.0 - deltat)
    if r > 0 and deltat < 0:
        r = 0.0
    return float(r)


def cdbtuner_reward(
    tps: float | None,
    lat: float | None,
    *,
    default_tps: float | None,
    default_lat: float | None,
    last_tps: float | None,
    last_lat: float | None,
    tps_weight: float = 0.4,
    lat_weight: float = 0.6,
    eps: float = 1e-8,
    positive_reward_multiplier: float = 1.0,
) -> RewardResult:
    """One CDBTune step from valid metrics and their references. A metric that
    is None is left out and the other carries both weights."""
    use_tps = tps is not None and default_tps is not None and last_tps is not None
    use_lat = lat is not None and default_lat is not None and last_lat is not None
    d0_tps = cdbtuner_delta(tps, default_tps, eps=eps) if use_tps else 0.0
    dt_tps = cdbtuner_delta(tps, last_tps, eps=eps) if use_tps else 0.0
    d0_lat = cdbtuner_delta(lat, default_lat, lower_is_better=True, eps=eps) if use_lat else 0.0
    dt_lat = cdbtuner_delta(lat, last_lat, lower_is_better=True, eps=eps) if use_lat else 0.0
    r_tps = cdbtuner_term(d0_tps, dt_tps) if use_tps else 0.0
    r_lat = cdbtuner_term(d0_lat, dt_lat) if use_lat else 0.0
    if use_tps and use_lat:
        raw = tps_weight * r_tps + lat_weight * r_lat
    elif use_tps:
        raw = (tps_weight + lat_weight) * r_tps
    else:
        raw = (tps_weight + lat_weight) * r_lat
    final = raw * positive_reward_multiplier if raw > 0 else raw
    return RewardResult(
        reward=float(final),
        components={
            "reward_tps": float(r_tps),
            "reward_latency": float(r_lat),
            "reward_raw": float(raw),
            "reward_final": float(final),
            "delta0_tps": float(d0_tps),
            "deltat_tps": float(dt_tps),
            "delta0_lat": float(d0_lat),
            "deltat_lat": float(dt_lat),
        },
    )


class CDBTunerReward:
    """`cdbtuner` mode: the CDBTune reward with seed 000's guardrails.

    Tracks the default (the baseline given to `reset`), the last and the best
    throughput and latency (best: highest throughput, lowest latency, each on
    its own). Invalid measurements (NaN, infinite or <= 0) score
    `reward_invalid_penalty`, leave every reference untouched and, after
    `invalid_patience` in a row, return `terminate=True`. If the baseline itself
    is invalid, the first valid measurement becomes the default (reward 0)."""

    def __init__(self, direction: str = "maximize", **params: Any):
        p = {**CDBTUNER_DEFAULTS, **params}
        self.direction = direction
        self.tps_weight = float(p["tps_weight"])
        self.lat_weight = float(p["lat_weight"])
        self.eps = float(p["eps"])
        self.invalid_penalty = float(p["reward_invalid_penalty"])
        self.invalid_patience = int(p["invalid_patience"])
        self.use_best_as_last = bool(p["reward_use_best_as_last"])
        self.positive_multiplier = float(p["positive_reward_multiplier"])
        self._clear()

    def _clear(self) -> None:
        self.default_tps: float | None = None
        self.default_lat: float | None = None
        self.last_tps: float | None = None
        self.last_lat: float | None = None
        self.best_tps: float | None = None
        self.best_lat: float | None = None
        self.invalid_streak = 0
        self.has_default = False

    def _metrics(self, m: Measurement) -> tuple[float | None, float | None, bool]:
        tp, lat = throughput_and_latency(m, self.direction)
        if tp is None and lat is None:
            return None, None, False
        valid = all(v is None or _finite_positive(v) for v in (tp, lat))
        return tp, lat, valid

    def _set_default(self, tp: float | None, lat: float | None) -> None:
        self.default_tps = self.last_tps = self.best_tps = tp
        self.default_lat = self.last_lat = self.best_lat = lat
        self.has_default = True

    def reset(self, baseline: Measurement | None) -> None:
        self._clear()
        if baseline is None:
            return
        tp, lat, valid = self._metrics(baseline)
        if valid:
            self._set_default(tp, lat)

    def _tracked(self) -> dict[str, float]:
        z = lambda v: 0.0 if v is None else float(v)  # noqa: E731
        return {
            "default_tps": z(self.default_tps),
            "default_lat": z(self.default_lat),
            "best_tps": z(self.best_tps),
            "best_lat": z(self.best_lat),
        }

    def score(self, m: Measurement) -> RewardResult:
        tp, lat, valid = self._metrics(m)
        if not valid:
            self.invalid_streak += 1
            terminate = self.invalid_patience > 0 and self.invalid_streak >= self.invalid_patience
            comps = {
                "reward_tps": 0.0, "reward_latency": 0.0,
                "reward_raw": self.invalid_penalty, "reward_final": self.invalid_penalty,
                "delta0_tps": 0.0, "deltat_tps": 0.0, "delta0_lat": 0.0, "deltat_lat": 0.0,
                **self._tracked(),
                "invalid": 1.0, "invalid_streak": float(self.invalid_streak), "terminate": float(terminate),
            }
            return RewardResult(self.invalid_penalty, comps, terminate)
        self.invalid_streak = 0
        if not self.has_default:
            self._set_default(tp, lat)
            result = cdbtuner_reward(
                tp, lat, default_tps=tp, default_lat=lat, last_tps=tp, last_lat=lat,
                tps_weight=self.tps_weight, lat_weight=self.lat_weight, eps=self.eps,
            )
        else:
            ref_tps = self.best_tps if self.use_best_as_last else self.last_tps
            ref_lat = self.best_lat if self.use_best_as_last else self.last_lat
            result = cdbtuner_reward(
                tp, lat,
                default_tps=self.default_tps, default_lat=self.default_lat,
                last_tps=ref_tps, last_lat=ref_lat,
                tps_weight=self.tps_weight, lat_weight=self.lat_weight, eps=self.eps,
                positive_reward_multiplier=self.positive_multiplier,
            )
            self.last_tps, self.last_lat = tp, lat
            if tp is not None:
                self.best_tps = tp if self.best_tps is None else max(self.best_tps, tp)
            if lat is not None:
                self.best_lat = lat if self.best_lat is None else min(self.best_lat, lat)
        comps = {**result.components, **self._tracked(), "invalid": 0.0, "invalid_streak": 0.0, "terminate": 0.0}
        return RewardResult(result.reward, comps, False)


# --------------------------------------------------------------------------- instant / delta / hybrid (seed 003)


HYBRID_DEFAULTS: dict[str, Any] = {
    "throughput_target": 10.0,
    "throughput_sigma": 0.25,
    "latency_threshold": 2.0,
    "latency_term_cap": 10.0,
    "alpha": 0.5,
    "beta": 0.3,
    "gamma": 0.2,
    "kappa": 0.3,
    "sigma": 1.0,
    "ema_alpha": 0.1,
    "ema_std_floor": 0.05,
    "delta_clip": 3.0,
    "absolute_weight": 0.7,
    "delta_weight": 0.3,
    "latency_weight": 0.0,
    "latency_penalty_scale": 3.0,
    "balance_penalty_weight": 1.0,
    "load_balance_penalty": 0.05,
    "reward_invalid_penalty": -1.0,
}
HYBRID_MODES = ("instant", "delta", "hybrid")


def throughput_term(throughput: float, target: float, sigma_rel: float = 0.25) -> float:
    """Throughput squashed into (0, 1): 0.5 at the target; `sigma_rel` is the
    width of the sigmoid as a fraction of the target."""
    return sigmoid((throughput - target) / max(sigma_rel * target, 1e-12))


def latency_term(latency_s: float, threshold_s: float, cap: float = 10.0) -> float:
    """Latency in units of the threshold (1.0 at the threshold), capped."""
    return min(latency_s / max(threshold_s, 1e-12), cap)


def logistic_penalty(latency_s: float, threshold_s: float, kappa: float = 0.3, sigma: float = 1.0) -> float:
    """kappa · sigmoid((latency - threshold) / sigma): a smooth step from 0 to
    kappa around the threshold, kappa/2 exactly at it."""
    return kappa * sigmoid((latency_s - threshold_s) / max(sigma, 1e-12))


def absolute_score(
    throughput: float | None,
    latency_s: float | None,
    *,
    throughput_target: float = 10.0,
    throughput_sigma: float = 0.25,
    latency_threshold: float = 2.0,
    latency_term_cap: float = 10.0,
    alpha: float = 0.5,
    kappa: float = 0.3,
    sigma: float = 1.0,
) -> tuple[float, dict[str, float]]:
    """alpha · throughput_term - (1 - alpha) · latency_term - logistic_penalty;
    a metric that is None contributes 0 to its terms."""
    tt = throughput_term(throughput, throughput_target, throughput_sigma) if throughput is not None else 0.0
    lt = latency_term(latency_s, latency_threshold, latency_term_cap) if latency_s is not None else 0.0
    lp = logistic_penalty(latency_s, latency_threshold, kappa, sigma) if latency_s is not None else 0.0
    score = alpha * tt - (1.0 - alpha) * lt - lp
    return float(score), {"throughput_term": float(tt), "latency_term": float(lt), "logistic_penalty": float(lp)}


def ema_update(mean: float, var: float, x: float, ema_alpha: float) -> tuple[float, float]:
    """One step of the exponential moving mean and variance:
    mean' = mean + a·(x - mean), var' = (1 - a)·var + a·(x - mean)²."""
    diff = x - mean
    return mean + ema_alpha * diff, (1.0 - ema_alpha) * var + ema_alpha * diff * diff


def normalized_delta(x: float, mean: float, var: float, *, std_floor: float = 0.05, clip: float = 3.0) -> float:
    """(x - mean) in units of the EMA standard deviation, which is floored at
    `std_floor`·|mean| (a steady metric does not turn noise into huge deltas),
    clipped to ±clip."""
    scale = max(math.sqrt(max(var, 0.0)), std_floor * abs(mean), 1e-9)
    return float(max(-clip, min(clip, (x - mean) / scale)))


def delta_score(throughput_delta: float, latency_delta: float, *, beta: float = 0.3, gamma: float = 0.2) -> float:
    """beta · Δthroughput - gamma · Δlatency (both already normalized)."""
    return float(beta * throughput_delta - gamma * latency_delta)


def soft_threshold_penalty(latency_s: float, threshold_s: float, *, weight: float = 0.0, scale: float = 3.0) -> float:
    """Seed 003's legacy latency penalty: weight · scale · max(0, latency - threshold)."""
    return float(weight * scale * max(0.0, latency_s - threshold_s))


def balance_penalty(signal: float, *, balance_penalty_weight: float = 1.0, load_balance_penalty: float = 0.05) -> float:
    """balance_penalty_weight · load_balance_penalty · imbalance signal."""
    return float(balance_penalty_weight * load_balance_penalty * max(signal, 0.0))


def combine_hybrid(
    mode: str,
    absolute: float,
    delta: float,
    latency_penalty: float = 0.0,
    balance: float = 0.0,
    *,
    absolute_weight: float = 0.7,
    delta_weight: float = 0.3,
) -> float:
    """The total of a seed-003 mode from its parts."""
    if mode == "instant":
        core = absolute
    elif mode == "delta":
        core = delta
    elif mode == "hybrid":
        core = absolute_weight * absolute + delta_weight * delta
    else:
        raise ValueError(f"reward mode {mode!r} is not one of {', '.join(HYBRID_MODES)}")
    return float(core - latency_penalty - balance)


@dataclass
class EmaState:
    """Exponential moving mean and variance of throughput and latency (s)."""

    throughput_mean: float = 0.0
    throughput_var: float = 0.0
    latency_mean: float = 0.0
    latency_var: float = 0.0
    seeded_throughput: bool = False
    seeded_latency: bool = False


def balance_signal(m: Measurement) -> float:
    extra = m.extra or {}
    value = extra.get("balance", extra.get("queue_variance", 0.0))
    value = float(value)
    return value if math.isfinite(value) and value > 0 else 0.0


class HybridReward:
    """Seed 003's reward calculator in mode `instant`, `delta` or `hybrid`.

    `reset(baseline)` seeds the EMAs with the baseline's throughput and latency
    (a baseline without them leaves the EMAs to be seeded by the first step).
    `score` computes the absolute and delta scores and the penalties, then
    updates the EMAs; the delta score is computed (and logged) in every mode.
    A throughput or latency that is NaN, infinite or negative scores
    `reward_invalid_penalty` and leaves the EMAs untouched."""

    def __init__(self, mode: str = "hybrid", direction: str = "maximize", **params: Any):
        if mode not in HYBRID_MODES:
            raise ValueError(f"reward mode {mode!r} is not one of {', '.join(HYBRID_MODES)}")
        self.mode = mode
        self.direction = direction
        self.p = {k: float(v) for k, v in {**HYBRID_DEFAULTS, **params}.items()}
        self.ema = EmaState()
        self.steps = 0

    def _metrics(self, m: Measurement) -> tuple[float | None, float | None]:
        tp, lat_ms = throughput_and_latency(m, self.direction)
        return tp, (None if lat_ms is None else lat_ms / 1000.0)

    @staticmethod
    def _valid(v: float | None) -> bool:
        return v is None or (math.isfinite(v) and v >= 0)

    def reset(self, baseline: Measurement | None) -> None:
        self.ema = EmaState()
        self.steps = 0
        if baseline is None:
            return
        tp, lat = self._metrics(baseline)
        if tp is not None and self._valid(tp):
            self.ema.throughput_mean, self.ema.seeded_throughput = tp, True
        if lat is not None and self._valid(lat):
            self.ema.latency_mean, self.ema.seeded_latency = lat, True

    def score(self, m: Measurement) -> RewardResult:
        p = self.p
        tp, lat = self._metrics(m)
        signal = balance_signal(m)
        if not (self._valid(tp) and self._valid(lat)) or (tp is None and lat is None):
            penalty = p["reward_invalid_penalty"]
            comps = {k: 0.0 for k in _HYBRID_KEYS}
            comps.update(reward=penalty, invalid=1.0, balance_signal=signal)
            return RewardResult(penalty, comps)
        absolute, parts = absolute_score(
            tp, lat,
            throughput_target=p["throughput_target"], throughput_sigma=p["throughput_sigma"],
            latency_threshold=p["latency_threshold"], latency_term_cap=p["latency_term_cap"],
            alpha=p["alpha"], kappa=p["kappa"], sigma=p["sigma"],
        )
        e, a = self.ema, p["ema_alpha"]
        d_tp = d_lat = 0.0
        if tp is not None:
            if e.seeded_throughput:
                d_tp = normalized_delta(tp, e.throughput_mean, e.throughput_var,
                                        std_floor=p["ema_std_floor"], clip=p["delta_clip"])
                e.throughput_mean, e.throughput_var = ema_update(e.throughput_mean, e.throughput_var, tp, a)
            else:
                e.throughput_mean, e.seeded_throughput = tp, True
        if lat is not None:
            if e.seeded_latency:
                d_lat = normalized_delta(lat, e.latency_mean, e.latency_var,
                                         std_floor=p["ema_std_floor"], clip=p["delta_clip"])
                e.latency_mean, e.latency_var = ema_update(e.latency_mean, e.latency_var, lat, a)
            else:
                e.latency_mean, e.seeded_latency = lat, True
        delta = delta_score(d_tp, d_lat, beta=p["beta"], gamma=p["gamma"])
        lat_pen = (
            soft_threshold_penalty(lat, p["latency_threshold"], weight=p["latency_weight"], scale=p["latency_penalty_scale"])
            if lat is not None else 0.0
        )
        bal = balance_penalty(signal, balance_penalty_weight=p["balance_penalty_weight"],
                              load_balance_penalty=p["load_balance_penalty"])
        total = combine_hybrid(self.mode, absolute, delta, lat_pen, bal,
                               absolute_weight=p["absolute_weight"], delta_weight=p["delta_weight"])
        self.steps += 1
        comps = {
            "absolute_score": absolute,
            "delta_score": delta,
            **parts,
            "balance_penalty": bal,
            "latency_penalty": lat_pen,
            "throughput_delta": d_tp,
            "latency_delta": d_lat,
            "throughput_ema": float(e.throughput_mean),
            "latency_ema": float(e.latency_mean),
            "throughput_var": float(e.throughput_var),
            "latency_var": float(e.latency_var),
            "throughput": float(tp) if tp is not None else 0.0,
            "latency_s": float(lat) if lat is not None else 0.0,
            "balance_signal": signal,
            "reward": total,
            "invalid": 0.0,
        }
        return RewardResult(total, comps)


_HYBRID_KEYS = (
    "absolute_score", "delta_score", "throughput_term", "latency_term", "logistic_penalty", "balance_penalty",
    "latency_penalty", "throughput_delta", "latency_delta", "throughput_ema", "latency_ema", "throughput_var",
    "latency_var", "throughput", "latency_s", "balance_signal", "reward", "invalid",
)


# --------------------------------------------------------------------------- selection


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
