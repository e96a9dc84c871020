"""pgbench's summary (and its per-statement and aggregate lines)."""

from __future__ import annotations

import re

from cli_ai.tactician.benchmarks.common import NUMBER, finite_only, screen_lines, to_float


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
        m = re.match(rf"^[ \t]*tps\s*=\s*(?P<v>{NUMBER})(?:\s*\((?P<why>[^)]*)\))?", line)
        if m:
            key = "tps_including_connections" if "including" in (m["why"] or "") else "tps"
            out[key] = to_float(m["v"])
            continue
        for pattern, key in _PGB_SIMPLE:
            m = re.match(r"^[ \t]*" + pattern.format(n=NUMBER), line)
            if m:
                out[key] = to_float(m["v"])
                break
        else:
            for label, key in _PGB_COUNTED:
                m = re.match(rf"^[ \t]*{label}:\s*(\d+)(?:\s*\(\s*({NUMBER})%\))?", line)
                if m:
                    out[key] = to_float(m[1])
                    if m[2] is not None:
                        out[key + "_pct"] = to_float(m[2])
            m = re.match(
                rf"^[ \t]*number of transactions above the ({NUMBER}) ms latency limit:\s*(\d+)(?:/\d+)?(?:\s*\(({NUMBER})\s*%\))?",
                line,
            )
            if m:
                out["latency_limit_ms"] = to_float(m[1])
                out["transactions_above_latency_limit"] = to_float(m[2])
                if m[3] is not None:
                    out["transactions_above_latency_limit_pct"] = to_float(m[3])
            m = re.match(rf"^[ \t]*rate limit schedule lag:\s*avg\s*({NUMBER})\s*\(max\s*({NUMBER})\)\s*ms", line)
            if m:
                out["schedule_lag_avg_ms"] = to_float(m[1])
                out["schedule_lag_max_ms"] = to_float(m[2])
    return finite_only(out)
