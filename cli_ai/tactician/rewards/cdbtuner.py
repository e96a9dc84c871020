"""Seed 000's CDBTuner reward: throughput and latency deltas against the
baseline and the previous step."""

from __future__ import annotations

from typing import Any

from cli_ai.tactician.rewards.base import (
    Measurement, RewardResult, failure_reward, finite_positive, throughput_and_latency,
)


CDBTUNER_DEFAULTS: dict[str, Any] = {
    "tps_weight": 0.4,
    "lat_weight": 0.6,
    "eps": 1e-8,
    "reward_invalid_penalty": -1.0,
    "invalid_patience": 3,
    "reward_use_best_as_last": False,
    "positive_reward_multiplier": 1.0,
    # The latency term has no lower bound (a latency 10x the default's scores
    # about -300): valid rewards are clipped here, so that an invalid or failed
    # step (which scores below it) is never the better outcome.
    "reward_floor": -10.0,
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
    floor: float | None = None,
) -> RewardResult:
    """One CDBTune step from valid metrics and their references. A metric that
    is None is left out and the other carries both weights; the final reward
    is clipped at `floor` when one is given."""
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
    if floor is not None:
        final = max(final, floor)
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
        self.floor = float(p["reward_floor"])
        # An invalid measurement scores below every valid one.
        self.invalid_penalty = failure_reward(self, self.invalid_penalty)
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
        valid = all(v is None or finite_positive(v) for v in (tp, lat))
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
                tps_weight=self.tps_weight, lat_weight=self.lat_weight, eps=self.eps, floor=self.floor,
            )
        else:
            ref_tps = self.best_tps if self.use_best_as_last else self.last_tps
            ref_lat = self.best_lat if self.use_best_as_last else self.last_lat
            result = cdbtuner_reward(
                tp, lat,
                default_tps=self.default_tps, default_lat=self.default_lat,
                last_tps=ref_tps, last_lat=ref_lat,
                tps_weight=self.tps_weight, lat_weight=self.lat_weight, eps=self.eps,
                positive_reward_multiplier=self.positive_multiplier, floor=self.floor,
            )
            self.last_tps, self.last_lat = tp, lat
            if tp is not None:
                self.best_tps = tp if self.best_tps is None else max(self.best_tps, tp)
            if lat is not None:
                self.best_lat = lat if self.best_lat is None else min(self.best_lat, lat)
        comps = {**result.components, **self._tracked(), "invalid": 0.0, "invalid_streak": 0.0, "terminate": 0.0}
        return RewardResult(result.reward, comps, False)
