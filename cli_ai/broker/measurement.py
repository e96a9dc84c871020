"""What one broker measurement window holds (`BrokerMeasurement`), the $SYS
topics it reads, and the pure functions that turn samples into rates and
percentiles (see `cli_ai.broker.workload` for how a window is measured)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

SYS_COUNTERS = {
    "received": "$SYS/broker/publish/messages/received",
    "sent": "$SYS/broker/publish/messages/sent",
    "dropped": "$SYS/broker/publish/messages/dropped",
}
SYS_LOADS = {
    "load_received_1min": "$SYS/broker/load/publish/received/1min",
    "load_sent_1min": "$SYS/broker/load/publish/sent/1min",
    "clients_connected": "$SYS/broker/clients/connected",
}


@dataclass(frozen=True)
class BrokerMeasurement:
    """One measurement window. Rates are messages per second; None where the
    source gave nothing (no $SYS updates, no workload)."""

    throughput_msg_s: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    sys_received_rate: float | None
    sys_sent_rate: float | None
    subscriber_rate: float | None
    warnings: tuple[str, ...] = ()
    window_s: float = 0.0
    publish_rate: float | None = None
    sys_dropped_rate: float | None = None
    overhead_rate: float = 0.0
    probe_samples: int = 0
    probe_lost: int = 0
    latency_fallback: bool = False
    throughput_source: str = "sys"  # "sys" | "subscribers" | "none"
    extra: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Every finite number of the measurement, by name (for Evaluation.metrics)."""
        out: dict[str, float] = {}
        for key in ("throughput_msg_s", "latency_p50_ms", "latency_p95_ms", "sys_received_rate", "sys_sent_rate",
                    "subscriber_rate", "publish_rate", "sys_dropped_rate", "overhead_rate"):
            v = getattr(self, key)
            if v is not None and math.isfinite(float(v)):
                out[key] = float(v)
        out["window_s"] = float(self.window_s)
        out["probe_samples"] = float(self.probe_samples)
        out["probe_lost"] = float(self.probe_lost)
        out["latency_fallback"] = 1.0 if self.latency_fallback else 0.0
        out["throughput_from_sys"] = 1.0 if self.throughput_source == "sys" else 0.0
        out["warnings"] = float(len(self.warnings))
        out.update({k: float(v) for k, v in self.extra.items() if v is not None and math.isfinite(float(v))})
        return out


def counter_rate(series: Sequence[tuple[float, float]], t0: float, t1: float, *, min_span: float) -> float | None:
    """Per-second change of a monotonic counter from its timestamped updates
    inside [t0, t1]: from the first to the last. After a reset (the value goes
    back: a restarted broker) only the updates after it count. None when they
    span less than `min_span` seconds."""
    pts = [(t, v) for t, v in series if t0 <= t <= t1]
    start = 0
    for i in range(1, len(pts)):
        if pts[i][1] < pts[i - 1][1]:
            start = i
    pts = pts[start:]
    if len(pts) < 2:
        return None
    span = pts[-1][0] - pts[0][0]
    if span < min_span or span <= 0:
        return None
    return (pts[-1][1] - pts[0][1]) / span


def percentiles(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    p50, p95 = np.percentile(arr, [50, 95])
    return float(p50), float(p95)
