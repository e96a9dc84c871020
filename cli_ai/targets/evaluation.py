"""How a knob target's configuration is measured: its spec's benchmark on a
real run (the command target puts the values into the program's argv), the
surrogate response surface on a dry run."""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping

from cli_ai.core.backend import Backend, Value
from cli_ai.safety.check import CommandPlan
from cli_ai.safety.interpreters import fill, placeholders, render
from cli_ai.spec import TuningSpec
from cli_ai.spec.model import BUILTIN_RUNNERS
from cli_ai.targets.base import TargetSession


def substitute(argv: tuple[str, ...], values: Mapping[str, Value], *, shell: bool) -> list[str]:
    """Put knob values into {name} placeholders (`interpreters.render`: ints
    as ints, floats in full precision, bools as true/false, enums as given).

    Without a shell, substitution is one pass per argv element: a value stays
    inside its element, so it never splits into extra arguments and is never
    read as another placeholder. Under --allow-shell (`/bin/sh -c SCRIPT`) a
    value is never pasted into the script, where it could close its quotes or
    run `$(...)`: the script reads it as a positional parameter (`${1}`), and
    the values follow as sh's arguments, which sh never parses as code."""
    if shell and len(argv) >= 3 and tuple(argv[:2]) == ("/bin/sh", "-c"):
        script = argv[2]
        names = [n for n in placeholders([script]) if n in values]
        refs = {n: "${%d}" % (i + 1) for i, n in enumerate(names)}
        return [argv[0], argv[1], fill([script], refs)[0], "cli-ai-benchmark",
                *(render(values[n]) for n in names), *argv[3:]]
    rendered = {name: render(value) for name, value in values.items()}
    return fill(argv, rendered)


def benchmark_argv(spec: TuningSpec, plan: CommandPlan | None) -> tuple[list[str], str]:
    """(argv, parser family) of the spec's benchmark."""
    b = spec.benchmark
    assert b is not None
    if b.runner in BUILTIN_RUNNERS:
        return [sys.executable, "-m", "cli_ai", "bench", b.runner, *(b.args or ())], "command"
    if plan is not None:
        return list(plan.argv), b.runner
    args = list(b.args or ())
    return (args if b.runner == "command" else [b.runner, *args]), b.runner


def first_step_argv(run: Any, *, substitute_values: bool) -> list[str] | None:
    """The exact argv of a run's first benchmark step (the baseline, at the
    run's current values), as the confirmation screen shows it."""
    spec = run.spec
    if spec.benchmark is None:
        return None
    plan = run.checked.command
    argv, _ = benchmark_argv(spec, plan)
    if substitute_values:
        argv = substitute(tuple(argv), run.current, shell=bool(plan and plan.shell))
    return argv


def make_real_evaluator(spec: TuningSpec, plan: CommandPlan | None, *, substitute_values: bool = False):
    from cli_ai.tactician.benchmarks import BenchmarkRunner
    from cli_ai.tactician.envs.knob_env import Evaluation

    argv, family = benchmark_argv(spec, plan)
    b = spec.benchmark
    runner = BenchmarkRunner(argv, runner=family, metric=spec.reward_metric or "", timeout_s=b.timeout_s,
                             repeats=b.repeats, warmup_runs=b.warmup_runs)
    shell = bool(plan and plan.shell)

    def evaluate(values: Mapping[str, Value]) -> Evaluation:
        run_argv = substitute(tuple(argv), values, shell=shell) if substitute_values else None
        r = runner.run(run_argv)
        return Evaluation(metric=r.metric, metrics=dict(r.metrics), duration_s=r.duration_s,
                          throughput=r.throughput, latency_ms=r.latency_ms)

    return evaluate


def make_dry_evaluator(run):
    from cli_ai.tactician.envs.knob_env import Evaluation
    from cli_ai.tactician.surrogate import SurrogateBenchmark

    surrogate = SurrogateBenchmark(run.space, direction=run.spec.metric_direction, seed=run.seed, start=run.current)
    metric_name = run.spec.reward_metric or "metric"

    minimize = run.spec.metric_direction == "minimize"

    def evaluate(values: Mapping[str, Value]) -> Evaluation:
        started = time.perf_counter()
        metric, system = surrogate.measure(values)
        # Rewards that want throughput and latency (cdbtuner, hybrid) get a
        # consistent simulated pair: the metric itself on its side, and the
        # other one moving with the same response surface.
        q = surrogate.quality(values)
        throughput = surrogate.level * (0.4 + 0.8 * q) if minimize else metric
        latency = metric if minimize else 20.0 * (1.6 - 0.8 * q)
        return Evaluation(metric=metric, metrics={metric_name: metric}, duration_s=time.perf_counter() - started,
                          throughput=throughput, latency_ms=latency, system=system)

    evaluate.surrogate = surrogate  # type: ignore[attr-defined]
    return evaluate


def benchmark_session(run: Any, options: Any, *, backend: Backend | None = None,
                      substitute_values: bool = False) -> TargetSession:
    """A run measured by its spec's benchmark (real) or the surrogate (dry):
    `backend` holds the values on a real run, a simulated backend otherwise."""
    from cli_ai.tactician.backends.simulated import SimulatedBackend
    from cli_ai.tactician.observe import SystemObserver
    from cli_ai.tactician.rewards import make_reward

    spec = run.spec
    reward = make_reward(spec.reward, spec.metric_direction)
    if not run.dry_run:
        evaluate = make_real_evaluator(spec, run.checked.command, substitute_values=substitute_values)
        return TargetSession(backend or SimulatedBackend(run.current), evaluate, SystemObserver(), reward)
    return dry_session(run, reward)


def dry_session(run: Any, reward: Any) -> TargetSession:
    """The dry run's parts: a simulated backend and the surrogate benchmark."""
    from cli_ai.tactician.backends.simulated import SimulatedBackend
    from cli_ai.tactician.surrogate import SimulatedObserver

    observer = SimulatedObserver()
    surrogate_eval = make_dry_evaluator(run)

    def evaluate(values):  # keep the simulated observer in step with the surrogate
        result = surrogate_eval(values)
        observer.last = dict(result.system or {})
        return result

    return TargetSession(SimulatedBackend(run.current), evaluate, observer, reward)


__all__ = ["substitute", "benchmark_argv", "first_step_argv", "make_real_evaluator", "make_dry_evaluator", "benchmark_session",
           "dry_session"]
