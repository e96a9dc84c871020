"""Seed 003's instant, delta and hybrid rewards (absolute score, EMA-normalised
deltas, a latency threshold, a balance penalty)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cli_ai.tactician.rewards.base import Measurement, RewardResult, failure_reward, sigmoid, throughput_and_latency


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
# Room below the bounded core of a mode for its penalties (the soft latency
# threshold and the balance penalty have no upper bound): totals are clipped
# this far below the core's lowest value.
PENALTY_ALLOWANCE = 10.0


def hybrid_floor(mode: str, p: dict[str, float]) -> float:
    """The lowest total of `mode`: its core's minimum (the absolute score is
    at least -(1 - alpha) * latency_term_cap - kappa, the delta score at least
    -(beta + gamma) * delta_clip) minus the penalties' allowance."""
    absolute = -abs(1.0 - p["alpha"]) * p["latency_term_cap"] - p["kappa"] - max(0.0, -p["alpha"])
    delta = -(p["beta"] + p["gamma"]) * p["delta_clip"]
    core = {"instant": absolute, "delta": delta,
            "hybrid": p["absolute_weight"] * absolute + p["delta_weight"] * delta}[mode]
    return float(core - PENALTY_ALLOWANCE)


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
        self.floor = hybrid_floor(mode, self.p)
        # An invalid measurement scores below every valid one.
        self.p["reward_invalid_penalty"] = failure_reward(self, self.p["reward_invalid_penalty"])
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
        total = max(self.floor, combine_hybrid(self.mode, absolute, delta, lat_pen, bal,
                                               absolute_weight=p["absolute_weight"], delta_weight=p["delta_weight"]))
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
