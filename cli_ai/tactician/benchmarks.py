"""Benchmarks: run a benchmark command and turn its output into numbers.

Two halves that meet only in `BenchmarkRunner.run`:

* **Running** (`BenchmarkRunner`). A benchmark is an argv list, never a shell
  string: the safety layer's `CommandPlan` already decided whether
  `/bin/sh -c` is part of it. Each run gets its own session (and so its own
  process group), stdin from /dev/null and stderr merged into stdout. On a
  timeout, and on *any* exception while waiting (Ctrl+C, the project's
  `Interrupted` from a signal handler, a bug), the whole group is sent
  SIGTERM, then SIGKILL after a short grace, and the direct child is reaped
  before the exception goes on: a tuning run must never leave a `pgbench -c 50`
  hammering the machine after it gave up. The leader is only reaped after the
  group was signalled, so its id cannot be recycled under our `killpg`.
  Warm-up runs are executed and discarded; repeats are aggregated by the
  median, which one noisy run cannot drag around.

* **Parsing** (pure functions of the output text). Each supported tool has a
  parser that returns *every* number it recognises under canonical snake_case
  names, in base units (ms for latency, per-second rates, KiB/s for fio
  bandwidth, bytes for wrk transfer). `extract_metric` picks the reward metric
  out of that dict, accepting the names people (and seed 004) actually write
  (`transactions_per_second` for pgbench's `tps`, `operations_per_second` for
  sysbench cpu, `p95_latency_ms`, ...), and falls back to the generic rule:
  the number printed after the metric's name. A metric that cannot be found is
  a `BenchmarkError` that names it, lists what *was* found and shows the end
  of the output, so the person can fix `reward_metric` without guessing.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import os
import re
import select
import selectors
import shlex
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

from cli_ai.errors import BenchmarkError

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from cli_ai.safety.check import CommandPlan
    from cli_ai.spec import TuningSpec

TAIL_LINES = 15
OUTPUT_CAP_BYTES = 16 * 1024 * 1024
DEFAULT_KILL_GRACE_S = 1.0
# After the benchmark's main process exited, how long to keep reading output
# that a left-over descendant may still hold open.
DRAIN_AFTER_EXIT_S = 2.0
HINT = "reward_metric must match text in the benchmark output; test the benchmark command by hand first"

# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class BenchmarkResult:
    """What one `BenchmarkRunner.run` measured (warm-ups excluded)."""

    metric: float  # the reward metric (median over repeats)
    metrics: dict[str, float]  # every number found, median over repeats, canonical names
    duration_s: float  # wall time of the measured runs (not warm-ups)
    runs: tuple[float, ...]  # the metric of each repeat
    output_tail: str  # last lines of the last run's output
    throughput: float | None  # tps, requests/s, events/s, iops, ops/s when the tool reports one
    latency_ms: float | None  # average (or p50) latency in ms when the tool reports one


@dataclass(frozen=True)
class _Completed:
    """One finished process: its output and how it ended."""

    output: str
    returncode: int
    duration_s: float


# --------------------------------------------------------------------------- text helpers

_NUM = r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"


def _f(text: str) -> float:
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


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def metric_key(name: str) -> str:
    """Canonical form of a metric name: 'Requests/sec' -> 'requests_sec'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


# --------------------------------------------------------------------------- units

# wrk: time via format_time_us (us, ms, s, m, h), counts via format_metric
# (k, M, G: powers of 1000), bytes via format_binary (K, M, G: powers of 1024).
_TIME_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_METRIC_SUFFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_BINARY_SUFFIX = {"": 1.0, "K": 1024.0, "M": 1024.0**2, "G": 1024.0**3, "T": 1024.0**4, "P": 1024.0**5}


def _ms(value: str, unit: str) -> float:
    return _f(value) * _TIME_TO_MS[unit]


# --------------------------------------------------------------------------- pgbench

_PGB_SIMPLE = (
    (r"latency average\s*[=:]\s*(?P<v>{n})\s*ms", "latency_avg_ms"),
    (r"latency stddev\s*[=:]\s*(?P<v>{n})\s*ms", "latency_stddev_ms"),
    (r"initial connection time\s*=\s*(?P<v>{n})\s*ms", "initial_connection_time_ms"),
    (r"number of transactions actually processed:\s*(?P<v>\d+)", "transactions"),
    (r"scaling factor:\s*(?P<v>\d+)", "scaling_factor"),
    (r"number of clients:\s*(?P<v>\d+)", "clients"),
    (r"number of threads:\s*(?P<v>\d+)", "threads"),
    (r"maximum number of tries:\s*(?P<v>\d+)", "max_tries"),
    (r"duration:\s*(?P<v>{n})\s*s", "duration_s"),
)
_PGB_COUNTED = (
    ("number of failed transactions", "failed_transactions"),
    ("number of transactions retried", "retried_transactions"),
    ("number of transactions skipped", "skipped_transactions"),
)


def parse_pgbench(text: str) -> dict[str, float]:
    """pgbench's summary. `tps` is the rate without connection set-up (what
    pgbench 14+ prints, and the "excluding connections establishing" line of
    older versions); the older "including" figure is `tps_including_connections`.
    Lines of per-script sections (` - latency average = ...`) and progress lines
    are not the run's totals and are left out."""
    out: dict[str, float] = {}
    for line in screen_lines(text):
        if not line.strip() or re.match(r"^[ \t]*-", line):
            continue
        m = re.match(rf"^[ \t]*tps\s*=\s*(?P<v>{_NUM})(?:\s*\((?P<why>[^)]*)\))?", line)
        if m:
            key = "tps_including_connections" if "including" in (m["why"] or "") else "tps"
            out[key] = _f(m["v"])
            continue
        for pattern, key in _PGB_SIMPLE:
            m = re.match(r"^[ \t]*" + pattern.format(n=_NUM), line)
            if m:
                out[key] = _f(m["v"])
                break
        else:
            for label, key in _PGB_COUNTED:
                m = re.match(rf"^[ \t]*{label}:\s*(\d+)(?:\s*\(\s*({_NUM})%\))?", line)
                if m:
                    out[key] = _f(m[1])
                    if m[2] is not None:
                        out[key + "_pct"] = _f(m[2])
            m = re.match(
                rf"^[ \t]*number of transactions above the ({_NUM}) ms latency limit:\s*(\d+)(?:/\d+)?(?:\s*\(({_NUM})\s*%\))?",
                line,
            )
            if m:
                out["latency_limit_ms"] = _f(m[1])
                out["transactions_above_latency_limit"] = _f(m[2])
                if m[3] is not None:
                    out["transactions_above_latency_limit_pct"] = _f(m[3])
            m = re.match(rf"^[ \t]*rate limit schedule lag:\s*avg\s*({_NUM})\s*\(max\s*({_NUM})\)\s*ms", line)
            if m:
                out["schedule_lag_avg_ms"] = _f(m[1])
                out["schedule_lag_max_ms"] = _f(m[2])
    return _finite(out)


# --------------------------------------------------------------------------- wrk

_WRK_TIME = rf"({_NUM})(us|ms|s|m|h)"
_WRK_COUNT = rf"({_NUM})([kMGTP]?)"


def parse_wrk(text: str) -> dict[str, float]:
    """wrk's report in base units: latencies in ms (wrk prints us/ms/s/m/h),
    per-thread request rates as plain numbers (wrk prints 1.08k), transfer and
    bytes read in bytes (wrk's KB/MB are powers of 1024). With `--latency`, the
    distribution gives latency_p50_ms ... latency_p99_ms."""
    out: dict[str, float] = {}
    lines = screen_lines(text)
    in_distribution = False
    for line in lines:
        s = line.strip()
        if in_distribution:
            m = re.fullmatch(rf"({_NUM})%\s+{_WRK_TIME}", s)
            if m:
                pct = m[1].rstrip("0").rstrip(".") if "." in m[1] else m[1]
                out[f"latency_p{pct.replace('.', '_')}_ms"] = _ms(m[2], m[3])
                continue
            in_distribution = False
        if s == "Latency Distribution":
            in_distribution = True
            continue
        m = re.fullmatch(rf"Latency\s+{_WRK_TIME}\s+{_WRK_TIME}\s+{_WRK_TIME}\s+({_NUM})%", s)
        if m:
            out["latency_avg_ms"] = _ms(m[1], m[2])
            out["latency_stdev_ms"] = _ms(m[3], m[4])
            out["latency_max_ms"] = _ms(m[5], m[6])
            out["latency_within_stdev_pct"] = _f(m[7])
            continue
        m = re.fullmatch(rf"Req/Sec\s+{_WRK_COUNT}\s+{_WRK_COUNT}\s+{_WRK_COUNT}\s+({_NUM})%", s)
        if m:
            out["thread_rps_avg"] = _f(m[1]) * _METRIC_SUFFIX[m[2]]
            out["thread_rps_stdev"] = _f(m[3]) * _METRIC_SUFFIX[m[4]]
            out["thread_rps_max"] = _f(m[5]) * _METRIC_SUFFIX[m[6]]
            out["thread_rps_within_stdev_pct"] = _f(m[7])
            continue
        m = re.fullmatch(r"(\d+) threads and (\d+) connections", s)
        if m:
            out["threads"], out["connections"] = _f(m[1]), _f(m[2])
            continue
        m = re.fullmatch(rf"(\d+) requests in {_WRK_TIME}, ({_NUM})([KMGTP]?)B read", s)
        if m:
            out["requests"] = _f(m[1])
            out["duration_s"] = _ms(m[2], m[3]) / 1000.0
            out["bytes_read"] = _f(m[4]) * _BINARY_SUFFIX[m[5]]
            continue
        m = re.fullmatch(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", s)
        if m:
            parts = [_f(x) for x in m.groups()]
            for name, value in zip(("connect", "read", "write", "timeout"), parts):
                out[f"socket_errors_{name}"] = value
            out["socket_errors"] = sum(parts)
            continue
        m = re.fullmatch(r"Non-2xx or 3xx responses:\s*(\d+)", s)
        if m:
            out["non_2xx_3xx_responses"] = _f(m[1])
            continue
        m = re.fullmatch(rf"Requests/sec:\s*({_NUM})", s)
        if m:
            out["requests_per_second"] = _f(m[1])
            continue
        m = re.fullmatch(rf"Transfer/sec:\s*({_NUM})([KMGTP]?)B", s)
        if m:
            out["transfer_bytes_per_second"] = _f(m[1]) * _BINARY_SUFFIX[m[2]]
    return _finite(out)


# --------------------------------------------------------------------------- sysbench

_SB_RATES = (
    ("transactions", "transactions"),
    ("queries", "queries"),
    ("ignored errors", "ignored_errors"),
    ("reconnects", "reconnects"),
)


def parse_sysbench(text: str) -> dict[str, float]:
    """sysbench 1.x reports (cpu, memory, threads, mutex, fileio, oltp_*).

    `events_per_second` is what `cpu` prints; tests that do not print it
    (threads, mutex, oltp, ...) get total events / total time, the same
    quantity. Latency is the "Latency (ms)" block: latency_min/avg/max_ms and
    latency_pNN_ms for the "NNth percentile" line (95 unless --percentile).
    OLTP tests add transactions_per_second and queries_per_second; memory adds
    operations_per_second and mib_per_second; fileio adds reads/writes/fsyncs
    per second and read/written MiB/s."""
    out: dict[str, float] = {}
    in_latency = False
    in_queries = False
    for line in screen_lines(text):
        s = line.strip()
        if s == "Latency (ms):":
            in_latency = True
            continue
        if s == "queries performed:":
            in_queries = True
            continue
        if in_latency:
            m = re.fullmatch(rf"(min|avg|max|sum):\s*({_NUM})", s)
            if m:
                out[f"latency_{m[1]}_ms"] = _f(m[2])
                continue
            m = re.fullmatch(rf"(\d+(?:\.\d+)?)th percentile:\s*({_NUM})", s)
            if m:
                out[f"latency_p{m[1].replace('.', '_')}_ms"] = _f(m[2])
                continue
            in_latency = False
        if in_queries:
            m = re.fullmatch(r"(read|write|other|total):\s*(\d+)", s)
            if m:
                out[f"queries_{m[1]}"] = _f(m[2])
                continue
            in_queries = False
        m = re.fullmatch(rf"events per second:\s*({_NUM})", s)
        if m:
            out["events_per_second"] = _f(m[1])
            continue
        m = re.fullmatch(rf"total time:\s*({_NUM})s", s)
        if m:
            out["total_time_s"] = _f(m[1])
            continue
        m = re.fullmatch(r"total number of events:\s*(\d+)", s)
        if m:
            out["total_events"] = _f(m[1])
            continue
        m = re.fullmatch(r"Number of threads:\s*(\d+)", s)
        if m:
            out["threads"] = _f(m[1])
            continue
        m = re.fullmatch(rf"Total operations:\s*(\d+)\s*\(\s*({_NUM}) per second\)", s)
        if m:
            out["total_operations"], out["operations_per_second"] = _f(m[1]), _f(m[2])
            continue
        m = re.fullmatch(rf"({_NUM}) MiB transferred \(({_NUM}) MiB/sec\)", s)
        if m:
            out["mib_transferred"], out["mib_per_second"] = _f(m[1]), _f(m[2])
            continue
        m = re.fullmatch(rf"(reads|writes|fsyncs)/s:\s*({_NUM})", s)
        if m:
            out[f"{m[1]}_per_second"] = _f(m[2])
            continue
        m = re.fullmatch(rf"(read|written), MiB/s:\s*({_NUM})", s)
        if m:
            out[f"{m[1]}_mib_per_second"] = _f(m[2])
            continue
        for label, key in _SB_RATES:
            m = re.fullmatch(rf"{label}:\s*(\d+)\s*\(\s*({_NUM}) per sec\.\)", s)
            if m:
                out[key] = _f(m[1])
                out[f"{key}_per_second"] = _f(m[2])
                break
    if "events_per_second" not in out and out.get("total_time_s", 0) > 0 and "total_events" in out:
        out["events_per_second"] = out["total_events"] / out["total_time_s"]
    return _finite(out)


# --------------------------------------------------------------------------- redis-benchmark

_REDIS_QUIET = re.compile(
    rf"^(?P<test>[^:]+): (?P<rps>{_NUM}) requests per second(?:, p50=(?P<p50>{_NUM}) msec)?"
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
                values[col] = _f(cell)
            except ValueError:
                continue
        per_test[name] = _finite(values)
    return _redis_flatten(per_test)


def _redis_flatten(per_test: dict[str, dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, values in per_test.items():
        for col, value in values.items():
            out[f"{name}_{col}"] = value
    out.update(_redis_overall(per_test))
    return _finite(out)


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
            values = {"rps": _f(m["rps"])}
            if m["p50"] is not None:
                values["p50_latency_ms"] = _f(m["p50"])
            per_test[_redis_test_name(m["test"], per_test)] = values
    return _redis_flatten(per_test)


# --------------------------------------------------------------------------- fio


def _fio_document(text: str) -> dict | None:
    """The fio JSON report inside an output that may start with notes or
    warnings (stderr is merged into stdout) and end with more text."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"^\{", text, re.M):
        try:
            doc, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("jobs"), list):
            return doc
    return None


def _fio_latency(stats: dict, key: str) -> tuple[dict, float] | None:
    """(latency block, factor to ms): fio 3 reports `<key>_ns`, fio 2 `<key>` in us."""
    if isinstance(stats.get(f"{key}_ns"), dict):
        return stats[f"{key}_ns"], 1e-6
    if isinstance(stats.get(key), dict):
        return stats[key], 1e-3
    return None


def parse_fio_json(text: str) -> dict[str, float]:
    """`fio --output-format=json`, aggregated over every job.

    Per direction (read, write; trim when it did I/O): `<dir>_iops` and
    `<dir>_bw_kib_s` summed over jobs, `<dir>_ios` (completed I/Os),
    `<dir>_clat_mean_ms` and `<dir>_lat_mean_ms` weighted by each job's sample
    count, and `<dir>_clat_p50_ms`/`p95`/`p99` as the largest job's value (an
    upper bound of the merged percentile; exact for one job or group_reporting).
    Overall: `iops`, `bw_kib_s` (sums over directions), `clat_mean_ms`,
    `lat_mean_ms` (sample-weighted) and `clat_pNN_ms` (largest direction)."""
    doc = _fio_document(text)
    if doc is None:
        return {}
    acc: dict[str, dict[str, float]] = {}
    for job in doc["jobs"]:
        if not isinstance(job, dict):
            continue
        for direction in ("read", "write", "trim"):
            stats = job.get(direction)
            if not isinstance(stats, dict):
                continue
            a = acc.setdefault(direction, {"iops": 0.0, "bw": 0.0, "ios": 0.0})
            a["iops"] += float(stats.get("iops", 0.0))
            a["bw"] += float(stats.get("bw", 0.0))
            a["ios"] += float(stats.get("total_ios", 0.0))
            for key in ("clat", "lat"):
                found = _fio_latency(stats, key)
                if not found:
                    continue
                block, to_ms = found
                n = float(block.get("N", 0) or 0)
                if n <= 0:
                    continue
                a[f"{key}_n"] = a.get(f"{key}_n", 0.0) + n
                a[f"{key}_sum"] = a.get(f"{key}_sum", 0.0) + n * float(block.get("mean", 0.0)) * to_ms
                for pct, value in (block.get("percentile") or {}).items():
                    try:
                        p = float(pct)
                    except ValueError:
                        continue
                    if p in (50.0, 95.0, 99.0):
                        name = f"{key}_p{int(p)}"
                        a[name] = max(a.get(name, 0.0), float(value) * to_ms)
    out: dict[str, float] = {"jobs": float(len(doc["jobs"]))}
    total_n = {"clat": 0.0, "lat": 0.0}
    total_sum = {"clat": 0.0, "lat": 0.0}
    for direction, a in acc.items():
        if direction == "trim" and a["ios"] == 0 and a["iops"] == 0:
            continue
        out[f"{direction}_iops"] = a["iops"]
        out[f"{direction}_bw_kib_s"] = a["bw"]
        out[f"{direction}_ios"] = a["ios"]
        out["iops"] = out.get("iops", 0.0) + a["iops"]
        out["bw_kib_s"] = out.get("bw_kib_s", 0.0) + a["bw"]
        for key in ("clat", "lat"):
            if a.get(f"{key}_n"):
                out[f"{direction}_{key}_mean_ms"] = a[f"{key}_sum"] / a[f"{key}_n"]
                total_n[key] += a[f"{key}_n"]
                total_sum[key] += a[f"{key}_sum"]
        for p in (50, 95, 99):
            if f"clat_p{p}" in a:
                out[f"{direction}_clat_p{p}_ms"] = a[f"clat_p{p}"]
                out[f"clat_p{p}_ms"] = max(out.get(f"clat_p{p}_ms", 0.0), a[f"clat_p{p}"])
    for key in ("clat", "lat"):
        if total_n[key]:
            out[f"{key}_mean_ms"] = total_sum[key] / total_n[key]
    return _finite(out)


# --------------------------------------------------------------------------- generic rule

_GENERIC_NUMBER = (
    r"(?P<v>[-+]?(?:nan|inf(?:inity)?)(?![a-z])"
    r"|[-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?)"
    r"(?!\.?\d)"
)
_GENERIC_SEPARATOR = r"(?:\s*[\"']?\s*[:=]\s*[\"']?\s*|\s+)"


def generic_pattern(metric: str) -> re.Pattern[str]:
    """The regex of the generic rule for one metric name: its words (split at
    '_', '-' and spaces) separated by any of those, not preceded by a letter,
    digit, '_' or '-', then ':', '=' or spaces, then the number."""
    words = [w for w in re.split(r"[\s_-]+", metric.strip()) if w]
    if not words:
        raise BenchmarkError("reward_metric is empty; name the number in the benchmark output to optimize")
    name = r"[\s_-]+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![\w-]){name}{_GENERIC_SEPARATOR}{_GENERIC_NUMBER}", re.I)


def parse_generic(text: str, metric: str) -> float | None:
    """The number printed after the metric's name: `name: 1.5`, `name=1.5`,
    `name 1.5`, `"name": 1.5`; case-insensitive; underscores in the name also
    match spaces and hyphens ('requests_per_second' finds 'Requests per
    second:'); units may follow the number and are not converted; thousands
    separators (1,234) are read. The last occurrence wins: progress lines come
    before the summary. Returns None when the name is not there; nan/inf are
    returned as such so the caller can refuse them."""
    last = None
    for last in generic_pattern(metric).finditer("\n".join(screen_lines(text))):
        pass
    if last is None:
        return None
    return _f(last["v"])


_KEY_VALUE = re.compile(
    rf"^[ \t]*[\"']?(?P<k>[A-Za-z][A-Za-z0-9_./-]*(?:[ \t][A-Za-z0-9_./-]+){{0,5}})[\"']?[ \t]*[:=][ \t]*{_GENERIC_NUMBER}",
    re.M,
)


def parse_key_values(text: str) -> dict[str, float]:
    """Every `name: number` / `name = number` line of a program's own output,
    under canonical names (last occurrence wins): the "every number found" of
    a benchmark that is no known tool. Non-finite values are left out."""
    out: dict[str, float] = {}
    for m in _KEY_VALUE.finditer("\n".join(screen_lines(text))):
        key = metric_key(m["k"])
        if key:
            out[key] = _f(m["v"])
    return _finite(out)


# --------------------------------------------------------------------------- metric resolution

Parser = Callable[[str], dict[str, float]]

PARSERS: dict[str, Parser] = {
    "pgbench": parse_pgbench,
    "wrk": parse_wrk,
    "sysbench": parse_sysbench,
    "redis-benchmark": parse_redis_benchmark,
    "fio": parse_fio_json,
}

# Names people write for a tool's metrics -> the parser's names, in order of preference.
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "pgbench": {
        "transactions_per_second": ("tps",),
        "transactions_per_sec": ("tps",),
        "transactions_sec": ("tps",),
        "throughput": ("tps",),
        "tps_excluding_connections": ("tps",),
    },
    "wrk": {
        "rps": ("requests_per_second",),
        "requests_sec": ("requests_per_second",),
        "requests_per_sec": ("requests_per_second",),
        "req_per_sec": ("requests_per_second",),
        "req_sec": ("requests_per_second",),
        "throughput": ("requests_per_second",),
        "transfer": ("transfer_bytes_per_second",),
        "transfer_sec": ("transfer_bytes_per_second",),
        "transfer_per_second": ("transfer_bytes_per_second",),
    },
    "sysbench": {
        "operations_per_second": ("operations_per_second", "events_per_second"),
        "ops_per_second": ("operations_per_second", "events_per_second"),
        "ops_per_sec": ("operations_per_second", "events_per_second"),
        "ops_sec": ("operations_per_second", "events_per_second"),
        "ops": ("operations_per_second", "events_per_second"),
        "events_per_sec": ("events_per_second",),
        "eps": ("events_per_second",),
        "tps": ("transactions_per_second",),
        "qps": ("queries_per_second",),
        "throughput": ("transactions_per_second", "operations_per_second", "events_per_second"),
    },
    "redis-benchmark": {
        "requests_per_second": ("rps",),
        "requests_per_sec": ("rps",),
        "requests_sec": ("rps",),
        "operations_per_second": ("rps",),
        "ops_per_second": ("rps",),
        "throughput": ("rps",),
    },
    "fio": {
        "io_per_second": ("iops",),
        "operations_per_second": ("iops",),
        "ops_per_second": ("iops",),
        "throughput": ("iops",),
        "bw": ("bw_kib_s",),
        "bandwidth": ("bw_kib_s",),
        "bw_kib": ("bw_kib_s",),
        "bandwidth_kib_s": ("bw_kib_s",),
    },
}

# Which parsed names are "the" throughput and latency of a tool, for BenchmarkResult.
THROUGHPUT_KEYS: dict[str, tuple[str, ...]] = {
    "pgbench": ("tps",),
    "wrk": ("requests_per_second",),
    "sysbench": ("transactions_per_second", "operations_per_second", "events_per_second"),
    "redis-benchmark": ("rps",),
    "fio": ("iops",),
}
LATENCY_KEYS: dict[str, tuple[str, ...]] = {
    "pgbench": ("latency_avg_ms",),
    "wrk": ("latency_avg_ms", "latency_p50_ms"),
    "sysbench": ("latency_avg_ms",),
    "redis-benchmark": ("avg_latency_ms", "p50_latency_ms"),
    "fio": ("clat_mean_ms", "clat_p50_ms"),
}

_STAT_SPELLINGS = {
    "avg": ("avg", "mean"),
    "mean": ("avg", "mean"),
    "average": ("avg", "mean"),
    "min": ("min",),
    "max": ("max",),
    "stddev": ("stddev", "stdev"),
    "stdev": ("stddev", "stdev"),
    "median": ("p50",),
}
_LATENCY_WORDS = ("latency", "lat", "clat")


def _stat_spellings(token: str) -> tuple[str, ...] | None:
    if token in _STAT_SPELLINGS:
        return _STAT_SPELLINGS[token]
    m = re.fullmatch(r"p?(\d+)(?:th)?", token)
    return (f"p{m[1]}",) if m else None


def latency_variants(key: str) -> list[str]:
    """The spellings a latency metric can have across parsers:
    'p95_latency_ms' <-> 'latency_p95_ms' (<-> fio's 'clat_p95_ms'),
    'latency_ms' -> the average, 'read_latency_ms' -> 'read_clat_mean_ms'."""
    tokens = key.split("_")
    idx = next((i for i, t in enumerate(tokens) if t in _LATENCY_WORDS), None)
    if idx is None:
        return []
    before, after = tokens[:idx], tokens[idx + 1 :]
    if after and after[-1] in ("ms", "msec"):
        after = after[:-1]
    elif after and after[-1] in ("us", "s", "ns", "sec"):
        return []  # another unit: only an exact name can match
    stat: tuple[str, ...] | None = ("avg", "mean")
    if after:
        if len(after) != 1 or _stat_spellings(after[0]) is None:
            return []
        stat = _stat_spellings(after[0])
    elif before and _stat_spellings(before[-1]) is not None:
        stat = _stat_spellings(before[-1])
        before = before[:-1]
    prefix = "".join(f"{t}_" for t in before)
    out: list[str] = []
    for s in stat or ():
        for form in (f"{prefix}latency_{s}_ms", f"{prefix}{s}_latency_ms", f"{prefix}clat_{s}_ms"):
            if form not in out:
                out.append(form)
    return out


def candidate_names(runner: str, metric: str) -> list[str]:
    """Parser names that may hold `metric`, best first: the name itself, the
    tool's aliases (also under a prefix: 'set_requests_per_second' ->
    'set_rps', 'read_bandwidth' -> 'read_bw_kib_s'), then latency spellings."""
    key = metric_key(metric)
    aliases = ALIASES.get(runner, {})
    out = [key]
    out.extend(aliases.get(key, ()))
    tokens = key.split("_")
    for i in range(1, len(tokens)):
        prefix, base = "_".join(tokens[:i]), "_".join(tokens[i:])
        out.extend(f"{prefix}_{name}" for name in aliases.get(base, ()))
    out.extend(latency_variants(key))
    seen: list[str] = []
    for name in out:
        if name not in seen:
            seen.append(name)
    return seen


def detect_runner(text: str) -> str | None:
    """Which known tool printed this output (for a wrapper script run as
    'command'), from its unmistakable lines; None when none did."""
    if re.search(r"^\{\s*$", text, re.M) and '"fio version"' in text:
        return "fio"
    if re.search(r"^Requests/sec:\s", text, re.M) and "Thread Stats" in text:
        return "wrk"
    if re.search(r"^sysbench \d", text, re.M):
        return "sysbench"
    if re.search(r"^pgbench \(", text, re.M) or re.search(r"^tps = \S+", text, re.M):
        return "pgbench"
    if re.search(r'^"test","rps"', text, re.M) or re.search(r"^\S[^:\n]*: \S+ requests per second", text, re.M):
        return "redis-benchmark"
    return None


@dataclass(frozen=True)
class _Extracted:
    value: float
    metrics: dict[str, float]
    tool: str | None  # whose parser produced `metrics`


def _pick(metrics: Mapping[str, float], runner: str, metric: str) -> float | None:
    for name in candidate_names(runner, metric):
        if name in metrics:
            return metrics[name]
    return None


def _extract(text: str, runner: str, metric: str) -> _Extracted:
    if not metric_key(metric):
        raise BenchmarkError("reward_metric is empty; name the number in the benchmark output to optimize")
    key = metric_key(metric)
    tool = runner if runner in PARSERS else detect_runner(text)
    metrics = PARSERS[tool](text) if tool else parse_key_values(text)
    value: float | None = None
    if runner in PARSERS:
        value = _pick(metrics, runner, metric)
        if value is None:
            value = parse_generic(text, metric)
    else:
        # A program of the person's own: their text first, a recognised tool's names second.
        value = parse_generic(text, metric)
        if value is None and tool:
            value = _pick(metrics, tool, metric)
    if value is None:
        raise missing_metric_error(metric, runner, metrics, text)
    if not math.isfinite(value):
        raise BenchmarkError(
            f"reward_metric {metric!r} is {value} in the benchmark output; the benchmark must print a finite number",
            problems=[
                f"reward_metric {metric!r} is {value} in the benchmark output; the benchmark must print a finite number",
                *_quoted_tail(text),
            ],
        )
    metrics = dict(metrics)
    metrics.setdefault(key, value)
    return _Extracted(value=value, metrics=metrics, tool=tool)


def extract_metric(text: str, runner: str, metric: str) -> tuple[float, dict[str, float]]:
    """(the reward metric, every number found) from one benchmark output.

    For a known tool the tool's parser decides, with aliases; for anything
    else (runner 'command') the generic rule reads the person's own text
    first, then the parser of a tool recognised in the output. Raises
    BenchmarkError when the metric is missing or not a finite number."""
    found = _extract(text, runner, metric)
    return found.value, found.metrics


def _quoted_tail(text: str, lines: int = TAIL_LINES) -> list[str]:
    tail = output_tail(text, lines)
    if not tail.strip():
        return ["the benchmark printed nothing"]
    return [f"last {len(tail.splitlines())} line(s) of output:", *(f"  | {row}" for row in tail.splitlines())]


def missing_metric_error(metric: str, runner: str, metrics: Mapping[str, float], text: str) -> BenchmarkError:
    """The error for a reward metric that is not in the output: what was
    looked for, what was there instead, the end of the output and the hint."""
    where = f"the {runner} output" if runner in PARSERS else "the benchmark output"
    head = f"reward_metric {metric!r} not found in {where}"
    problems = [head]
    if metrics:
        names = sorted(metrics)
        close = difflib.get_close_matches(metric_key(metric), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"metrics found: {', '.join(names)}{hint}")
    else:
        problems.append("no known metric was found in the output")
    problems.append(HINT)
    problems.extend(_quoted_tail(text))
    return BenchmarkError("\n".join(problems), problems=problems)


# --------------------------------------------------------------------------- processes


def benchmark_env(extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a benchmark: the inherited one, with numbers printed
    the C way (LC_NUMERIC=C, so a German locale's '1431,47' cannot break the
    parsers), then the caller's `extra` on top. An inherited LC_ALL would
    override LC_NUMERIC, so it is demoted to LANG."""
    env = dict(os.environ if base is None else base)
    if "LC_ALL" in env and not (extra and "LC_ALL" in extra):
        env["LANG"] = env.pop("LC_ALL")
    env["LC_NUMERIC"] = "C"
    if extra:
        env.update(extra)
    return env


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _exited_unreaped(pid: int) -> bool:
    """Whether the child exited, leaving it unreaped (a zombie keeps its pid,
    and so the process group id, from being reused while we signal it)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _wait_exit(pid: int, pidfd: int | None, timeout_s: float) -> bool:
    """Wait up to timeout_s for the child to exit, without reaping it."""
    deadline = time.monotonic() + timeout_s
    while True:
        if _exited_unreaped(pid):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if pidfd is not None:
            select.select([pidfd], [], [], remaining)
        else:
            time.sleep(min(remaining, 0.02))


def _terminate_group(proc: subprocess.Popen, pidfd: int | None, grace_s: float) -> None:
    """SIGTERM the whole group, give it `grace_s`, SIGKILL whatever is left,
    reap the direct child. The SIGKILL and the reap happen even if another
    signal interrupts the grace period."""
    try:
        _signal_group(proc.pid, signal.SIGTERM)
        _wait_exit(proc.pid, pidfd, grace_s)
    finally:
        _signal_group(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a child stuck in the kernel
            pass


class _OutputBuffer:
    """Collected output, keeping only the last OUTPUT_CAP_BYTES: every parser
    reads the summary at the end, and a chatty program must not eat memory."""

    def __init__(self, cap: int = OUTPUT_CAP_BYTES):
        self.cap = cap
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * self.cap:
            del self.data[: len(self.data) - self.cap]

    def text(self) -> str:
        return bytes(self.data[-self.cap :]).decode("utf-8", errors="replace")


def _collect(proc: subprocess.Popen, pidfd: int | None, buf: _OutputBuffer, deadline: float) -> bool:
    """Read output until the child exited and the pipe closed; True on timeout.

    When the child exits, left-over members of its group (background jobs of
    a script) are killed while the child is still unreaped, then the pipe is
    drained for at most DRAIN_AFTER_EXIT_S (a descendant that left the group
    may hold it open forever)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    try:
        sel.register(fd, selectors.EVENT_READ, "out")
        if pidfd is not None:
            sel.register(pidfd, selectors.EVENT_READ, "exit")
        out_open, exited = True, False
        drain_deadline = math.inf
        while out_open:
            now = time.monotonic()
            if not exited and now >= deadline:
                return True
            if exited and now >= drain_deadline:
                break
            wait = (drain_deadline if exited else deadline) - now
            if pidfd is None and not exited:
                wait = min(wait, 0.05)
            for key, _ in sel.select(max(wait, 0.0)):
                if key.data == "out":
                    chunk = os.read(fd, 65536)
                    if chunk:
                        buf.add(chunk)
                    else:
                        sel.unregister(fd)
                        out_open = False
                elif key.data == "exit":
                    sel.unregister(pidfd)
                    exited = True
            if not exited and (pidfd is None or not out_open) and _exited_unreaped(proc.pid):
                exited = True
            if exited and drain_deadline == math.inf:
                _signal_group(proc.pid, signal.SIGKILL)
                drain_deadline = time.monotonic() + DRAIN_AFTER_EXIT_S
        if not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not _wait_exit(proc.pid, pidfd, remaining):
                return True
            _signal_group(proc.pid, signal.SIGKILL)
        return False
    finally:
        sel.close()


def run_process(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    kill_grace_s: float = DEFAULT_KILL_GRACE_S,
) -> _Completed:
    """Run argv once in its own session; see the module docstring for the
    kill-the-whole-group guarantees. A timeout is a BenchmarkError; a non-zero
    exit is returned (the caller words that error)."""
    argv = [str(a) for a in argv]
    if not argv:
        raise BenchmarkError("the benchmark command is empty; give the program to run")
    command = shlex.join(argv)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    except FileNotFoundError:
        raise BenchmarkError(
            f"benchmark program {argv[0]!r} not found: {command}; install it or give its full path"
        ) from None
    except PermissionError:
        raise BenchmarkError(f"benchmark program {argv[0]!r} is not executable: {command}") from None
    except OSError as exc:
        raise BenchmarkError(f"cannot start the benchmark {command}: {exc.strerror or exc}") from None
    pidfd = _pidfd(proc.pid)
    buf = _OutputBuffer()
    try:
        try:
            timed_out = _collect(proc, pidfd, buf, start + timeout_s)
        except BaseException:
            _terminate_group(proc, pidfd, kill_grace_s)
            raise
        if timed_out:
            _terminate_group(proc, pidfd, kill_grace_s)
            text = buf.text()
            head = (
                f"benchmark timed out after {timeout_s:g} s and was stopped: {command}; raise "
                "benchmark.timeout_s (or training_config.benchmark_timeout) or shorten the benchmark"
            )
            problems = [head, *_quoted_tail(text)]
            raise BenchmarkError("\n".join(problems), problems=problems)
        returncode = proc.wait()
    finally:
        if pidfd is not None:
            os.close(pidfd)
        if proc.stdout is not None:
            proc.stdout.close()
    return _Completed(output=buf.text(), returncode=returncode, duration_s=time.monotonic() - start)


def exit_status_error(command: str, returncode: int, text: str, what: str = "benchmark") -> BenchmarkError:
    """A failed run, quoting how it ended and the end of its output."""
    if returncode < 0:
        try:
            how = f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"was killed by signal {-returncode}"
    else:
        how = f"exited with status {returncode}"
    head = f"{what} {how}: {command}; run it by hand to see why"
    problems = [head, *_quoted_tail(text)]
    return BenchmarkError("\n".join(problems), problems=problems)


# --------------------------------------------------------------------------- runner


def _median_metrics(all_metrics: Sequence[Mapping[str, float]]) -> dict[str, float]:
    keys: list[str] = []
    for metrics in all_metrics:
        keys.extend(k for k in metrics if k not in keys)
    return {k: float(statistics.median([m[k] for m in all_metrics if k in m])) for k in keys}


def _first(metrics: Mapping[str, float], keys: Iterable[str]) -> float | None:
    for key in keys:
        if key in metrics:
            return metrics[key]
    return None


class BenchmarkRunner:
    """Runs one benchmark command: warm-ups, then `repeats` measured runs whose
    reward metric (and every other parsed number) is the median.

    `runner` names the output parser (pgbench, wrk, sysbench, redis-benchmark,
    fio; anything else: the generic rule). `env` holds variables added to the
    inherited environment (see `benchmark_env`)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        runner: str = "command",
        metric: str,
        timeout_s: float = 120.0,
        repeats: int = 1,
        warmup_runs: int = 0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        kill_grace_s: float = DEFAULT_KILL_GRACE_S,
    ):
        if not metric_key(metric or ""):
            raise BenchmarkError("reward_metric is empty; name the number in the benchmark output to optimize")
        if repeats < 1:
            raise BenchmarkError(f"benchmark.repeats: {repeats} must be at least 1")
        if warmup_runs < 0:
            raise BenchmarkError(f"benchmark.warmup_runs: {warmup_runs} must be 0 or more")
        if not timeout_s > 0:
            raise BenchmarkError(f"benchmark.timeout_s: {timeout_s} must be above 0")
        self.argv = tuple(str(a) for a in argv)
        self.runner = runner
        self.metric = metric
        self.timeout_s = float(timeout_s)
        self.repeats = int(repeats)
        self.warmup_runs = int(warmup_runs)
        self.env = benchmark_env(env)
        self.cwd = cwd
        self.kill_grace_s = kill_grace_s

    def __repr__(self) -> str:
        return f"BenchmarkRunner({shlex.join(self.argv)!r}, runner={self.runner!r}, metric={self.metric!r})"

    def _once(self, argv: Sequence[str], what: str) -> _Completed:
        done = run_process(argv, timeout_s=self.timeout_s, env=self.env, cwd=self.cwd, kill_grace_s=self.kill_grace_s)
        if done.returncode != 0:
            raise exit_status_error(shlex.join(argv), done.returncode, done.output, what)
        return done

    def run(self, argv: Sequence[str] | None = None) -> BenchmarkResult:
        """Run warm-ups and repeats; `argv` overrides the constructor's (the
        command target substitutes knob values into it at every step)."""
        argv = tuple(str(a) for a in (argv if argv is not None else self.argv))
        if not argv:
            raise BenchmarkError("the benchmark command is empty; give the program to run")
        for i in range(self.warmup_runs):
            self._once(argv, f"benchmark warm-up run {i + 1} of {self.warmup_runs}")
        values: list[float] = []
        all_metrics: list[dict[str, float]] = []
        duration = 0.0
        tool: str | None = None
        last = ""
        for i in range(self.repeats):
            what = "benchmark" if self.repeats == 1 else f"benchmark run {i + 1} of {self.repeats}"
            done = self._once(argv, what)
            duration += done.duration_s
            found = _extract(done.output, self.runner, self.metric)
            values.append(found.value)
            all_metrics.append(found.metrics)
            tool = found.tool or tool
            last = done.output
        metrics = _median_metrics(all_metrics)
        return BenchmarkResult(
            metric=float(statistics.median(values)),
            metrics=metrics,
            duration_s=duration,
            runs=tuple(values),
            output_tail=output_tail(last),
            throughput=_first(metrics, THROUGHPUT_KEYS.get(tool or "", ())),
            latency_ms=_first(metrics, LATENCY_KEYS.get(tool or "", ())),
        )


def runner_from_spec(spec: "TuningSpec", plan: "CommandPlan | None" = None) -> BenchmarkRunner:
    """The runner a spec describes. A `benchmark_command` string runs as
    `plan.argv` (the safety layer's decision, shell or not; planned here with
    shell refused when no plan is given); a structured `benchmark.args` runs
    as `<runner program> <args...>`, or as `args` itself for runner 'command'."""
    bench = spec.benchmark
    if bench is None:
        raise BenchmarkError("the spec has no benchmark; give benchmark_command or benchmark.args")
    if not spec.reward_metric:
        raise BenchmarkError("reward_metric: missing; name the number in the benchmark output to optimize")
    if plan is not None:
        argv = tuple(plan.argv)
    elif bench.command is not None:
        from cli_ai.safety.check import plan_command

        argv = plan_command(bench.command).argv
    elif bench.args is not None:
        if bench.runner == "command":
            argv = tuple(bench.args)
        elif bench.runner in PARSERS:
            argv = (bench.runner, *bench.args)
        else:
            raise BenchmarkError(
                f"benchmark.runner: {bench.runner!r} is not a program cli-ai runs as a command benchmark"
            )
    else:
        raise BenchmarkError("benchmark: give benchmark_command or benchmark.args")
    if not argv:
        raise BenchmarkError("benchmark: the command is empty; give the program to run")
    return BenchmarkRunner(
        argv,
        runner=bench.runner,
        metric=spec.reward_metric,
        timeout_s=bench.timeout_s,
        repeats=bench.repeats,
        warmup_runs=bench.warmup_runs,
    )


__all__ = [
    "BenchmarkResult",
    "BenchmarkRunner",
    "runner_from_spec",
    "extract_metric",
    "parse_pgbench",
    "parse_wrk",
    "parse_sysbench",
    "parse_redis_benchmark_csv",
    "parse_redis_benchmark",
    "parse_fio_json",
    "parse_generic",
    "parse_key_values",
    "detect_runner",
    "candidate_names",
    "run_process",
    "PARSERS",
]
