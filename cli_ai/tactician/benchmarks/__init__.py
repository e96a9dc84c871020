"""Benchmarks: run a benchmark command and turn its output into numbers.

One module per job: `runner` (BenchmarkRunner, runner_from_spec), `process`
(one process and its group), `metrics` (which parser, the names people
write, the reward metric picked out), one parser module per tool
(`pgbench`, `wrk`, `sysbench`, `redis`, `fio`), `generic` (the number
after a metric's name), `common` (units, the screen view of an output).

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

from cli_ai.tactician.benchmarks.fio import parse_fio_json
from cli_ai.tactician.benchmarks.generic import parse_generic, parse_key_values
from cli_ai.tactician.benchmarks.metrics import PARSERS, candidate_names, detect_runner, extract_metric
from cli_ai.tactician.benchmarks.pgbench import parse_pgbench
from cli_ai.tactician.benchmarks.process import benchmark_env, run_process
from cli_ai.tactician.benchmarks.redis import parse_redis_benchmark, parse_redis_benchmark_csv
from cli_ai.tactician.benchmarks.runner import BenchmarkResult, BenchmarkRunner, runner_from_spec
from cli_ai.tactician.benchmarks.sysbench import parse_sysbench
from cli_ai.tactician.benchmarks.wrk import parse_wrk

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
    "benchmark_env",
    "run_process",
    "PARSERS",
]
