"""sysbench's summaries (cpu, memory, fileio, threads, mutex, oltp)."""

from __future__ import annotations

import re

from cli_ai.tactician.benchmarks.common import NUMBER, finite_only, screen_lines, to_float


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
            m = re.fullmatch(rf"(min|avg|max|sum):\s*({NUMBER})", s)
            if m:
                out[f"latency_{m[1]}_ms"] = to_float(m[2])
                continue
            m = re.fullmatch(rf"(\d+(?:\.\d+)?)th percentile:\s*({NUMBER})", s)
            if m:
                out[f"latency_p{m[1].replace('.', '_')}_ms"] = to_float(m[2])
                continue
            in_latency = False
        if in_queries:
            m = re.fullmatch(r"(read|write|other|total):\s*(\d+)", s)
            if m:
                out[f"queries_{m[1]}"] = to_float(m[2])
                continue
            in_queries = False
        m = re.fullmatch(rf"events per second:\s*({NUMBER})", s)
        if m:
            out["events_per_second"] = to_float(m[1])
            continue
        m = re.fullmatch(rf"total time:\s*({NUMBER})s", s)
        if m:
            out["total_time_s"] = to_float(m[1])
            continue
        m = re.fullmatch(r"total number of events:\s*(\d+)", s)
        if m:
            out["total_events"] = to_float(m[1])
            continue
        m = re.fullmatch(r"Number of threads:\s*(\d+)", s)
        if m:
            out["threads"] = to_float(m[1])
            continue
        m = re.fullmatch(rf"Total operations:\s*(\d+)\s*\(\s*({NUMBER}) per second\)", s)
        if m:
            out["total_operations"], out["operations_per_second"] = to_float(m[1]), to_float(m[2])
            continue
        m = re.fullmatch(rf"({NUMBER}) MiB transferred \(({NUMBER}) MiB/sec\)", s)
        if m:
            out["mib_transferred"], out["mib_per_second"] = to_float(m[1]), to_float(m[2])
            continue
        m = re.fullmatch(rf"(reads|writes|fsyncs)/s:\s*({NUMBER})", s)
        if m:
            out[f"{m[1]}_per_second"] = to_float(m[2])
            continue
        m = re.fullmatch(rf"(read|written), MiB/s:\s*({NUMBER})", s)
        if m:
            out[f"{m[1]}_mib_per_second"] = to_float(m[2])
            continue
        for label, key in _SB_RATES:
            m = re.fullmatch(rf"{label}:\s*(\d+)\s*\(\s*({NUMBER}) per sec\.\)", s)
            if m:
                out[key] = to_float(m[1])
                out[f"{key}_per_second"] = to_float(m[2])
                break
    if "events_per_second" not in out and out.get("total_time_s", 0) > 0 and "total_events" in out:
        out["events_per_second"] = out["total_events"] / out["total_time_s"]
    return finite_only(out)
