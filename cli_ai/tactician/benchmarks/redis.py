"""redis-benchmark's quiet, CSV and full outputs."""

from __future__ import annotations

import csv
import re
import statistics
from typing import Iterable

from cli_ai.tactician.benchmarks.common import NUMBER, finite_only, metric_key, screen_lines, to_float


_REDIS_QUIET = re.compile(
    rf"^(?P<test>[^:]+): (?P<rps>{NUMBER}) requests per second(?:, p50=(?P<p50>{NUMBER}) msec)?"
)


def _redis_test_name(raw: str, taken: Iterable[str]) -> str:
    """'LRANGE_100 (first 100 elements)' -> 'lrange_100'; the full name when
    the short one is taken ('LPUSH (needed to benchmark LRANGE)' after 'LPUSH')."""
    short = metric_key(raw.split(" (", 1)[0])
    return short if short not in taken else metric_key(raw)


def _redis_overall(per_test: dict[str, dict[str, float]]) -> dict[str, float]:
    """Whole-run figures from the per-test rows.

    Every test of one redis-benchmark run sends the same number of requests
    (-n), so total requests / total time is the *harmonic* mean of the per-test
    rates: that is `rps`. The average latency is the plain mean of the per-test
    averages (equal weights, same reason); min and max are exact. A percentile
    of the merged run is not derivable from per-test percentiles, so
    p50/p95/p99 are the largest per-test value, an upper bound of the merged
    percentile (exact when there is one test)."""
    out: dict[str, float] = {}
    rates = [t["rps"] for t in per_test.values() if t.get("rps", 0) > 0]
    if rates:
        out["rps"] = len(rates) / sum(1.0 / r for r in rates)
    columns = {c for t in per_test.values() for c in t if c != "rps"}
    for col in sorted(columns):
        values = [t[col] for t in per_test.values() if col in t]
        if col.startswith("avg_"):
            out[col] = statistics.fmean(values)
        elif col.startswith("min_"):
            out[col] = min(values)
        else:
            out[col] = max(values)
    return out


def parse_redis_benchmark_csv(text: str) -> dict[str, float]:
    """`redis-benchmark --csv`: one row per test. Redis 7 prints a header
    (test, rps, avg/min/p50/p95/p99/max_latency_ms); older versions print only
    `"TEST","rps"`. Per test: `<test>_rps`, `<test>_<column>` (e.g.
    `get_p50_latency_ms`); overall: see `_redis_overall` (`rps` is the harmonic
    mean of the tests' rates, i.e. total requests / total time)."""
    rows = [line for line in screen_lines(text) if line.startswith('"')]
    header: list[str] | None = None
    per_test: dict[str, dict[str, float]] = {}
    for row in csv.reader(rows):
        if not row:
            continue
        if row[0].strip().lower() == "test":
            header = [metric_key(c) for c in row]
            continue
        columns = header if header and len(header) == len(row) else ["test", "rps"]
        name = _redis_test_name(row[0], per_test)
        values: dict[str, float] = {}
        for col, cell in zip(columns[1:], row[1:]):
            try:
                values[col] = to_float(cell)
            except ValueError:
                continue
        per_test[name] = finite_only(values)
    return _redis_flatten(per_test)


def _redis_flatten(per_test: dict[str, dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, values in per_test.items():
        for col, value in values.items():
            out[f"{name}_{col}"] = value
    out.update(_redis_overall(per_test))
    return finite_only(out)


def parse_redis_benchmark(text: str) -> dict[str, float]:
    """redis-benchmark in `--csv` form, or else `-q` form
    (`SET: 52910.05 requests per second, p50=0.103 msec`), same names."""
    found = parse_redis_benchmark_csv(text)
    if found:
        return found
    per_test: dict[str, dict[str, float]] = {}
    for line in screen_lines(text):
        m = _REDIS_QUIET.match(line.strip())
        if m:
            values = {"rps": to_float(m["rps"])}
            if m["p50"] is not None:
                values["p50_latency_ms"] = to_float(m["p50"])
            per_test[_redis_test_name(m["test"], per_test)] = values
    return _redis_flatten(per_test)
