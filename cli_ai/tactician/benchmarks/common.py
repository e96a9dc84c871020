"""What the parsers share: number and unit conversion, the screen view of an
output (carriage returns applied), canonical metric names."""

from __future__ import annotations

import math
import re



TAIL_LINES = 15
HINT = "reward_metric must match text in the benchmark output; test the benchmark command by hand first"



NUMBER = r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"


def to_float(text: str) -> float:
    return float(text.replace(",", ""))


def screen_lines(text: str) -> list[str]:
    """The lines as a terminal shows them: a carriage return (progress
    output of redis-benchmark, pgbench) overwrites the start of its line."""
    out = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if "\r" in line:
            line = line.rsplit("\r", 1)[1]
        out.append(line.rstrip())
    return out


def output_tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of an output (trailing blank lines dropped), for error messages."""
    rows = screen_lines(text)
    while rows and not rows[-1].strip():
        rows.pop()
    return "\n".join(rows[-lines:])


def finite_only(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def metric_key(name: str) -> str:
    """Canonical form of a metric name: 'Requests/sec' -> 'requests_sec'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")



# wrk: time via format_time_us (us, ms, s, m, h), counts via format_metric
# (k, M, G: powers of 1000), bytes via format_binary (K, M, G: powers of 1024).
TIME_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
METRIC_SUFFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
BINARY_SUFFIX = {"": 1.0, "K": 1024.0, "M": 1024.0**2, "G": 1024.0**3, "T": 1024.0**4, "P": 1024.0**5}


def to_ms(value: str, unit: str) -> float:
    return to_float(value) * TIME_TO_MS[unit]


def quoted_tail(text: str, lines: int = TAIL_LINES) -> list[str]:
    tail = output_tail(text, lines)
    if not tail.strip():
        return ["the benchmark printed nothing"]
    return [f"last {len(tail.splitlines())} line(s) of output:", *(f"  | {row}" for row in tail.splitlines())]
