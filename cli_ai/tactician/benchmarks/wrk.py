"""wrk's summary and latency distribution, in base units."""

from __future__ import annotations

import re

from cli_ai.tactician.benchmarks.common import (
    BINARY_SUFFIX, METRIC_SUFFIX, NUMBER, finite_only, screen_lines, to_float, to_ms,
)


_WRK_TIME = rf"({NUMBER})(us|ms|s|m|h)"
_WRK_COUNT = rf"({NUMBER})([kMGTP]?)"


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
            m = re.fullmatch(rf"({NUMBER})%\s+{_WRK_TIME}", s)
            if m:
                pct = m[1].rstrip("0").rstrip(".") if "." in m[1] else m[1]
                out[f"latency_p{pct.replace('.', '_')}_ms"] = to_ms(m[2], m[3])
                continue
            in_distribution = False
        if s == "Latency Distribution":
            in_distribution = True
            continue
        m = re.fullmatch(rf"Latency\s+{_WRK_TIME}\s+{_WRK_TIME}\s+{_WRK_TIME}\s+({NUMBER})%", s)
        if m:
            out["latency_avg_ms"] = to_ms(m[1], m[2])
            out["latency_stdev_ms"] = to_ms(m[3], m[4])
            out["latency_max_ms"] = to_ms(m[5], m[6])
            out["latency_within_stdev_pct"] = to_float(m[7])
            continue
        m = re.fullmatch(rf"Req/Sec\s+{_WRK_COUNT}\s+{_WRK_COUNT}\s+{_WRK_COUNT}\s+({NUMBER})%", s)
        if m:
            out["thread_rps_avg"] = to_float(m[1]) * METRIC_SUFFIX[m[2]]
            out["thread_rps_stdev"] = to_float(m[3]) * METRIC_SUFFIX[m[4]]
            out["thread_rps_max"] = to_float(m[5]) * METRIC_SUFFIX[m[6]]
            out["thread_rps_within_stdev_pct"] = to_float(m[7])
            continue
        m = re.fullmatch(r"(\d+) threads and (\d+) connections", s)
        if m:
            out["threads"], out["connections"] = to_float(m[1]), to_float(m[2])
            continue
        m = re.fullmatch(rf"(\d+) requests in {_WRK_TIME}, ({NUMBER})([KMGTP]?)B read", s)
        if m:
            out["requests"] = to_float(m[1])
            out["duration_s"] = to_ms(m[2], m[3]) / 1000.0
            out["bytes_read"] = to_float(m[4]) * BINARY_SUFFIX[m[5]]
            continue
        m = re.fullmatch(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", s)
        if m:
            parts = [to_float(x) for x in m.groups()]
            for name, value in zip(("connect", "read", "write", "timeout"), parts):
                out[f"socket_errors_{name}"] = value
            out["socket_errors"] = sum(parts)
            continue
        m = re.fullmatch(r"Non-2xx or 3xx responses:\s*(\d+)", s)
        if m:
            out["non_2xx_3xx_responses"] = to_float(m[1])
            continue
        m = re.fullmatch(rf"Requests/sec:\s*({NUMBER})", s)
        if m:
            out["requests_per_second"] = to_float(m[1])
            continue
        m = re.fullmatch(rf"Transfer/sec:\s*({NUMBER})([KMGTP]?)B", s)
        if m:
            out["transfer_bytes_per_second"] = to_float(m[1]) * BINARY_SUFFIX[m[2]]
    return finite_only(out)
