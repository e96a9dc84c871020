"""`BenchmarkRunner`: warm-ups, repeats and their median; and the runner a spec describes."""

from __future__ import annotations

import shlex
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from cli_ai.errors import BenchmarkError
from cli_ai.tactician.benchmarks.common import metric_key, output_tail
from cli_ai.tactician.benchmarks.metrics import LATENCY_KEYS, PARSERS, THROUGHPUT_KEYS, extract
from cli_ai.tactician.benchmarks.process import (
    DEFAULT_KILL_GRACE_S, Completed, benchmark_env, exit_status_error, run_process,
)

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from cli_ai.safety.check import CommandPlan
    from cli_ai.spec import TuningSpec


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

    def _once(self, argv: Sequence[str], what: str) -> Completed:
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
            found = extract(done.output, self.runner, self.metric)
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
        from cli_ai.safety.check import check_argv

        check_argv(tuple(bench.args), runner=bench.runner)
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
