"""Which parser reads an output, the names people write for its metrics, and
the reward metric picked out of what it found (or an error that says what was)."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Callable, Mapping

from cli_ai.errors import BenchmarkError
from cli_ai.tactician.benchmarks.common import HINT, metric_key, quoted_tail
from cli_ai.tactician.benchmarks.fio import parse_fio_json
from cli_ai.tactician.benchmarks.generic import parse_generic, parse_key_values
from cli_ai.tactician.benchmarks.pgbench import parse_pgbench
from cli_ai.tactician.benchmarks.redis import parse_redis_benchmark
from cli_ai.tactician.benchmarks.sysbench import parse_sysbench
from cli_ai.tactician.benchmarks.wrk import parse_wrk


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
class Extracted:
    value: float
    metrics: dict[str, float]
    tool: str | None  # whose parser produced `metrics`


def _pick(metrics: Mapping[str, float], runner: str, metric: str) -> float | None:
    for name in candidate_names(runner, metric):
        if name in metrics:
            return metrics[name]
    return None


def extract(text: str, runner: str, metric: str) -> Extracted:
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
                *quoted_tail(text),
            ],
        )
    metrics = dict(metrics)
    metrics.setdefault(key, value)
    return Extracted(value=value, metrics=metrics, tool=tool)


def extract_metric(text: str, runner: str, metric: str) -> tuple[float, dict[str, float]]:
    """(the reward metric, every number found) from one benchmark output.

    For a known tool the tool's parser decides, with aliases; for anything
    else (runner 'command') the generic rule reads the person's own text
    first, then the parser of a tool recognised in the output. Raises
    BenchmarkError when the metric is missing or not a finite number."""
    found = extract(text, runner, metric)
    return found.value, found.metrics


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
    problems.extend(quoted_tail(text))
    return BenchmarkError("\n".join(problems), problems=problems)
