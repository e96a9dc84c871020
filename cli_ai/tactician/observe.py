"""System metrics for the agent's observation and the stability reward.

Each metric is a fraction in [0, 1] measured over a window (the benchmark run):
take `snapshot()` before, call `since(snapshot)` after. Sources are those of
seed 004 (`/proc/stat`, `/proc/meminfo`) plus pressure stall information
(`/proc/pressure/*`) where the kernel has it; psutil reads what it covers.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import psutil

METRICS = (
    "cpu_utilization",
    "iowait",
    "memory_used",
    "memory_pressure",
    "io_pressure",
    "cpu_pressure",
    "load_average",
    "context_switches",
    "swap_used",
)


class Observer(Protocol):
    def snapshot(self) -> object: ...

    def since(self, snapshot: object) -> dict[str, float]: ...


@dataclass(frozen=True)
class _Snap:
    t: float
    cpu: object  # psutil.scputimes
    ctx: int
    pressure: Mapping[str, float]  # resource -> total stall microseconds ("some")


def read_pressure_total(resource: str, root: str = "/proc/pressure") -> float | None:
    """Cumulative 'some' stall time in microseconds, or None without PSI."""
    try:
        text = Path(root, resource).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("some"):
            for field in line.split():
                if field.startswith("total="):
                    return float(field[6:])
    return None


def _clip01(x: float) -> float:
    if not math.isfinite(x):
        return 0.0
    return min(max(x, 0.0), 1.0)


class SystemObserver:
    """Reads this machine (read-only): never writes anything."""

    def __init__(self, pressure_root: str = "/proc/pressure"):
        self.pressure_root = pressure_root
        self.cpus = os.cpu_count() or 1

    def snapshot(self) -> _Snap:
        pressure = {}
        for resource in ("memory", "io", "cpu"):
            total = read_pressure_total(resource, self.pressure_root)
            if total is not None:
                pressure[resource] = total
        return _Snap(time.monotonic(), psutil.cpu_times(), psutil.cpu_stats().ctx_switches, pressure)

    def since(self, snap: _Snap) -> dict[str, float]:
        now = self.snapshot()
        dt = max(now.t - snap.t, 1e-6)
        before, after = snap.cpu, now.cpu
        total = sum(after) - sum(before)
        idle = (after.idle - before.idle) + (getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0))
        iowait = getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0)
        cpu_util = 1.0 - idle / total if total > 0 else 0.0
        mem = psutil.virtual_memory()
        swap = psutil.swap_memory()
        ctx_rate = (now.ctx - snap.ctx) / dt
        out = {
            "cpu_utilization": _clip01(cpu_util),
            "iowait": _clip01(iowait / total if total > 0 else 0.0),
            "memory_used": _clip01(mem.percent / 100.0),
            "load_average": _clip01(os.getloadavg()[0] / self.cpus / 2.0),
            # A rate spanning orders of magnitude: log10, 10^7/s maps to 1.
            "context_switches": _clip01(math.log10(1.0 + ctx_rate) / 7.0),
            "swap_used": _clip01(swap.percent / 100.0),
        }
        for resource in ("memory", "io", "cpu"):
            key = f"{resource}_pressure"
            if resource in now.pressure and resource in snap.pressure:
                out[key] = _clip01((now.pressure[resource] - snap.pressure[resource]) / (dt * 1e6))
            else:
                out[key] = 0.0
        return out


def select(metrics: Mapping[str, float], names: Sequence[str]) -> list[float]:
    """The named metrics in order (0.0 for one the observer lacks)."""
    return [float(metrics.get(n, 0.0)) for n in names]
