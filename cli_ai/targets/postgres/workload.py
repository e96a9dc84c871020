"""pgbench against the tuned server: `pgbench -i` at the spec's scale (managed
clusters), and one measurement = an unmeasured warm-up, then `duration_s` of
load whose TPS and latency come from pgbench's summary (the existing parser)
and its per-transaction log (`-l`: p50, p95, p99, which the summary lacks).

pgbench runs through the benchmark runner's process handling (its own
session, killed with its children on any way out, a private directory)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Mapping

from cli_ai.errors import BenchmarkError
from cli_ai.targets.postgres.settings import PgbenchConfig


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def parse_transaction_log(lines) -> list[float]:
    """Latencies in ms from pgbench's per-transaction log lines
    (`client_id transaction_no time script_no time_epoch time_us [schedule_lag]`,
    time in microseconds); skipped and failed transactions are left out."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) < 6:
            continue
        try:
            out.append(int(parts[2]) / 1000.0)
        except ValueError:  # "skipped" / "failed" in place of the time
            continue
    return out


def latency_metrics(latencies_ms: list[float]) -> dict[str, float]:
    values = sorted(latencies_ms)
    if not values:
        return {}
    return {"latency_p50_ms": percentile(values, 0.50), "latency_p95_ms": percentile(values, 0.95),
            "latency_p99_ms": percentile(values, 0.99)}


def base_argv(pgbench: str, conninfo: Mapping[str, str]) -> list[str]:
    return [pgbench, "-h", conninfo["host"], "-p", str(conninfo["port"]), "-U", conninfo["user"]]


def pg_env(conninfo: Mapping[str, str]) -> dict[str, str]:
    from cli_ai.tactician.benchmarks.process import benchmark_env

    env = {"PGCONNECT_TIMEOUT": "10"}
    if conninfo.get("passfile"):
        env["PGPASSFILE"] = conninfo["passfile"]
    return benchmark_env(env)


def initialize(pgbench: str, conninfo: Mapping[str, str], scale: int, timeout_s: float = 600.0) -> None:
    """`pgbench -i -s SCALE` (drops and recreates the pgbench tables: managed clusters only)."""
    from cli_ai.tactician.benchmarks.process import run_process

    argv = [*base_argv(pgbench, conninfo), "-i", "-q", "-s", str(int(scale)), conninfo["dbname"]]
    done = run_process(argv, timeout_s=timeout_s, env=pg_env(conninfo))
    if done.returncode != 0:
        raise BenchmarkError(f"pgbench -i failed (exit {done.returncode}): {_tail(done.output)}")


def measure(pgbench: str, conninfo: Mapping[str, str], config: PgbenchConfig,
            log_parent: str | None = None) -> tuple[dict[str, float], float]:
    """One measurement: (metrics, seconds measured). Raises BenchmarkError
    when pgbench fails or reports no TPS. The transaction logs go in a
    directory under `log_parent` (a managed cluster's own, so a kill -9
    leaves nothing outside it), removed after reading."""
    from cli_ai.tactician.benchmarks.pgbench import parse_pgbench
    from cli_ai.tactician.benchmarks.process import run_process

    env = pg_env(conninfo)
    common = [*base_argv(pgbench, conninfo), "-c", str(config.clients), "-j", str(config.threads), *config.flags()]
    timeout = config.timeout_s + config.duration_s + config.warmup_s
    if config.warmup_s > 0:
        warm = run_process([*common, "-n", "-T", _seconds(config.warmup_s), conninfo["dbname"]],
                           timeout_s=timeout, env=env)
        if warm.returncode != 0:
            raise BenchmarkError(f"pgbench (warm-up) failed (exit {warm.returncode}): {_tail(warm.output)}")
    with tempfile.TemporaryDirectory(prefix="cli-ai-pgbench-", dir=log_parent) as tmp:
        prefix = str(Path(tmp) / "txn")
        done = run_process([*common, "-T", _seconds(config.duration_s), "-l", f"--log-prefix={prefix}",
                            conninfo["dbname"]], timeout_s=timeout, env=env, cwd=tmp)
        if done.returncode != 0:
            raise BenchmarkError(f"pgbench failed (exit {done.returncode}): {_tail(done.output)}")
        metrics = parse_pgbench(done.output)
        latencies: list[float] = []
        for log in Path(tmp).glob("txn.*"):
            with open(log, errors="replace") as fh:
                latencies.extend(parse_transaction_log(fh))
    if "tps" not in metrics:
        raise BenchmarkError(f"pgbench printed no tps: {_tail(done.output)}")
    metrics.update(latency_metrics(latencies))
    return metrics, done.duration_s


def _seconds(x: float) -> str:
    return str(max(1, int(round(x))))  # pgbench -T takes whole seconds


def _tail(text: str) -> str:
    from cli_ai.tactician.benchmarks.common import output_tail

    return output_tail(text)


__all__ = ["initialize", "latency_metrics", "measure", "parse_transaction_log", "percentile"]
