"""`cli-ai tune`: load, check, confirm, guard, search, report.

    spec -> safety checks -> confirmation -> Guard(backend) -> env + agent -> TuningResult

A dry run takes exactly the same path with a simulated backend and the
surrogate benchmark: nothing on the machine is written and no benchmark runs.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cli_ai.errors import CliAiError, Interrupted, SafetyError, TooManyFailures
from cli_ai.events import Event, EventSink, fanout, null_sink
from cli_ai.pipeline import CheckedSpec, benchmark_text, check_loaded_spec
from cli_ai.results import RunDirectory, TuningResult, plot_progress
from cli_ai.safety.catalog import lookup
from cli_ai.safety.check import CommandPlan
from cli_ai.spec import TuningSpec, load_spec
from cli_ai.tactician.backends.base import Backend, Value
from cli_ai.tactician.backends.simulated import SimulatedBackend
from cli_ai.tactician.backends.sysctl import SysctlBackend
from cli_ai.tactician.knobs import KnobSpace

DEFAULT_BUDGET_CAP = 100


@dataclass
class TuneOptions:
    dry_run: bool = False
    algorithm: str | None = None
    budget: int | None = None
    seed: int | None = None
    output_dir: str | None = None
    yes: bool = False
    allow_shell: bool = False
    clamp: bool = False
    verbose: int = 0
    proc_root: str = "/proc/sys"
    attachments: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedRun:
    """Everything decided before the first write: shown on the confirmation screen."""

    checked: CheckedSpec
    space: KnobSpace
    budget: int
    algorithm: str
    seed: int | None
    dry_run: bool
    notes: list[str] = field(default_factory=list)
    current: dict[str, Value] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def spec(self) -> TuningSpec:
        return self.checked.spec


def resolve_budget(spec: TuningSpec, notes: list[str]) -> int:
    tc = spec.training_config
    if tc.budget is not None:
        return tc.budget
    budget = min(tc.total_timesteps, DEFAULT_BUDGET_CAP)
    if budget < tc.total_timesteps:
        notes.append(
            f"no budget given: using {budget} evaluations (total_timesteps {tc.total_timesteps} would mean "
            f"{tc.total_timesteps} benchmark runs); set training_config.budget or --budget"
        )
    return budget


def _knob_space(checked: CheckedSpec) -> KnobSpace:
    ordered = {}
    for knob in checked.report.knobs:
        entry = lookup(knob.param) if checked.spec.target == "sysctl" else None
        ordered[knob.param] = entry.ordered if entry else None
    return KnobSpace.from_specs(checked.report.knobs, ordered)


def prepare(spec: TuningSpec, options: TuneOptions) -> PreparedRun:
    """Checks and decisions; raises before anything runs."""
    spec = spec.with_overrides(budget=options.budget, algorithm=options.algorithm, seed=options.seed)
    if spec.target not in ("sysctl", "command"):
        raise SafetyError(f"target: {spec.target!r} is tuned by its own path; this run handles sysctl and command")
    checked = check_loaded_spec(spec, clamp=options.clamp, allow_shell=options.allow_shell,
                                dry_run=options.dry_run, proc_root=options.proc_root)
    notes = list(checked.report.notes)
    budget = resolve_budget(spec, notes)
    if budget < 2:
        raise SafetyError("training_config.budget: a run needs at least 2 evaluations (the baseline and one try)")
    space = _knob_space(checked)
    run = PreparedRun(checked, space, budget, spec.training_config.algorithm, spec.training_config.seed,
                      options.dry_run, notes, warnings=list(checked.report.warnings))
    run.current = _current_values(run, options)
    if spec.target == "sysctl" and not options.dry_run:
        _require_writable(space.names, options.proc_root)
    return run


def _current_values(run: PreparedRun, options: TuneOptions) -> dict[str, Value]:
    """What the run starts from: this machine's values (read-only, also on a dry
    run), or for the command target each knob's default (else mid-range)."""
    space = run.space
    if run.spec.target == "command":
        return space.defaults()
    backend = SysctlBackend(options.proc_root)
    out: dict[str, Value] = {}
    for knob in space.knobs:
        try:
            out[knob.name] = backend.read([knob.name])[knob.name]
        except CliAiError:
            if not options.dry_run:
                raise
            entry = lookup(knob.name)
            out[knob.name] = entry.default if entry and entry.default is not None else knob.default_value()
    return out


def _require_writable(names, proc_root: str) -> None:
    backend = SysctlBackend(proc_root)
    if os.geteuid() != 0:
        raise SafetyError("writing /proc/sys needs root: run with sudo, or try it first with --dry-run")
    read_only = [n for n in names if not backend.writable(n)]
    if read_only:
        raise SafetyError(
            f"{', '.join(read_only)}: read-only here (inside a container or a child network namespace these "
            "mirror the host); drop them from the spec or tune on the host"
        )


# --------------------------------------------------------------------------- evaluators


def substitute(argv: tuple[str, ...], values: Mapping[str, Value], *, shell: bool) -> list[str]:
    """Put knob values into {name} placeholders: ints as ints, floats in full
    precision, bools as true/false, enums as their string. Substitution happens
    per argv element, so a value can never split into extra arguments; under
    --allow-shell the value is shell-quoted."""

    def text(v: Value) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, (tuple, list)):
            return " ".join(map(str, v))
        return str(v)

    out = []
    for arg in argv:
        for name, value in values.items():
            token = "{" + name + "}"
            if token in arg:
                rendered = text(value)
                arg = arg.replace(token, shlex.quote(rendered) if shell else rendered)
        out.append(arg)
    return out


def benchmark_argv(spec: TuningSpec, plan: CommandPlan | None) -> tuple[list[str], str]:
    """(argv, parser family) of the spec's benchmark."""
    b = spec.benchmark
    assert b is not None
    if b.runner == "tcp-accept":
        return [sys.executable, "-m", "cli_ai", "bench", "tcp-accept", *(b.args or ())], "command"
    if plan is not None:
        return list(plan.argv), b.runner
    args = list(b.args or ())
    return (args if b.runner == "command" else [b.runner, *args]), b.runner


def make_real_evaluator(spec: TuningSpec, plan: CommandPlan | None):
    from cli_ai.tactician.benchmarks import BenchmarkRunner
    from cli_ai.tactician.envs.knob_env import Evaluation

    argv, family = benchmark_argv(spec, plan)
    b = spec.benchmark
    runner = BenchmarkRunner(argv, runner=family, metric=spec.reward_metric or "", timeout_s=b.timeout_s,
                             repeats=b.repeats, warmup_runs=b.warmup_runs)
    shell = bool(plan and plan.shell)
    command_target = spec.target == "command"

    def evaluate(values: Mapping[str, Value]) -> Evaluation:
        run_argv = substitute(tuple(argv), values, shell=shell) if command_target else None
        r = runner.run(run_argv)
        return Evaluation(metric=r.metric, metrics=dict(r.metrics), duration_s=r.duration_s,
                          throughput=r.throughput, latency_ms=r.latency_ms)

    return evaluate


def make_dry_evaluator(run: PreparedRun):
    from cli_ai.tactician.envs.knob_env import Evaluation
    from cli_ai.tactician.surrogate import SurrogateBenchmark

    surrogate = SurrogateBenchmark(run.space, direction=run.spec.metric_direction, seed=run.seed)
    metric_name = run.spec.reward_metric or "metric"

    def evaluate(values: Mapping[str, Value]) -> Evaluation:
        started = time.perf_counter()
        metric, system = surrogate.measure(values)
        return Evaluation(metric=metric, metrics={metric_name: metric}, duration_s=time.perf_counter() - started,
                          system=system)

    evaluate.surrogate = surrogate  # type: ignore[attr-defined]
    return evaluate


# --------------------------------------------------------------------------- the run


def make_backend(run: PreparedRun, options: TuneOptions) -> Backend:
    if run.dry_run or run.spec.target == "command":
        return SimulatedBackend(run.current)
    return SysctlBackend(options.proc_root)


def execute(run: PreparedRun, options: TuneOptions, sink: EventSink = null_sink) -> TuningResult:
    """Run the search under the guard; always restore; write the run directory."""
    from cli_ai.safety.guard import FailureCounter, Guard
    from cli_ai.tactician.agents.factory import build_agent, plan_agent
    from cli_ai.tactician.envs.knob_env import KnobTuningEnv
    from cli_ai.tactician.loop import RecordingWrapper, Tracker, run_agent
    from cli_ai.tactician.observe import SystemObserver
    from cli_ai.tactician.rewards import make_reward
    from cli_ai.tactician.surrogate import SimulatedObserver

    spec = run.spec
    started = time.monotonic()
    rundir = RunDirectory(options.output_dir)
    rundir.write_json("spec.json", spec.to_dict())
    for name, payload in options.attachments.items():
        rundir.write_json(name, payload)
    tracker = Tracker(direction=spec.metric_direction, budget=run.budget, sink=fanout(sink, rundir))
    agent_plan = plan_agent(run.algorithm, spec.training_config, run.budget - 1)
    run.notes.extend(agent_plan.notes)
    sink(Event("run_started", {"run": run, "run_dir": str(rundir.path), "agent": agent_plan,
                               "benchmark": benchmark_text(spec)}))

    backend = make_backend(run, options)
    evaluate = make_dry_evaluator(run) if run.dry_run else make_real_evaluator(spec, run.checked.command)
    observer = SimulatedObserver() if run.dry_run else SystemObserver()
    if run.dry_run:
        base_eval = evaluate

        def evaluate(values):  # keep the simulated observer in step with the surrogate
            result = base_eval(values)
            observer.last = dict(result.system or {})
            return result

    netns = [n for n in run.space.names if (lookup(n) and lookup(n).netns)]
    stopped = "budget spent"
    error: BaseException | None = None
    model_path = None
    try:
        with Guard(backend, run.space.names, sink=sink, workload=spec.workload_name, netns_params=netns) as guard:
            env = KnobTuningEnv(
                run.space,
                evaluate,
                apply=guard.apply,
                read=backend.read,
                observer=observer,
                reward=make_reward(spec.reward, spec.metric_direction),
                state_metrics=[m.metric for m in spec.state_space],
                max_steps_per_episode=min(spec.training_config.max_steps_per_episode, run.budget),
                failure_penalty=spec.safety.failure_penalty,
                failures=FailureCounter(spec.safety.max_consecutive_failures),
            )
            wrapped = RecordingWrapper(env, tracker)
            wrapped.reset(seed=run.seed)  # the baseline: evaluation 1 of the budget
            agent = build_agent(agent_plan, wrapped, seed=run.seed, verbose=options.verbose)
            run_agent(agent, tracker, run.budget - 1)
            if hasattr(agent, "policy"):
                model_path = str(agent.save(rundir.path / "model.zip") or (rundir.path / "model.zip"))
    except TooManyFailures as exc:
        stopped, error = "too many consecutive failures", exc
    except (Interrupted, KeyboardInterrupt) as exc:
        stopped, error = "interrupted", exc
    except CliAiError as exc:
        stopped, error = f"error: {exc}", exc

    rundir.close()
    result = _result(run, tracker, stopped, error, time.monotonic() - started, str(rundir.path), model_path)
    rundir.write_json("result.json", result.to_json())
    plot_progress(tracker.records, rundir.path / "plots" / "progress.png", metric=spec.reward_metric or "metric",
                  direction=spec.metric_direction, simulated=run.dry_run)
    sink(Event("run_finished", {"result": result, "records": tracker.records}))
    if error is not None:
        raise error
    return result


def _result(run: PreparedRun, tracker, stopped: str, error, duration: float, run_dir: str, model_path) -> TuningResult:
    spec = run.spec
    base, best = tracker.baseline, tracker.best
    improvement = None
    if base is not None and best is not None:
        from cli_ai.tactician.loop import improvement_pct

        improvement = improvement_pct(best.metric, base.metric, spec.metric_direction)
    return TuningResult(
        workload=spec.workload_name,
        target=spec.target,
        metric=spec.reward_metric,
        direction=spec.metric_direction,
        algorithm=run.algorithm,
        budget=run.budget,
        simulated=run.dry_run,
        baseline_config=dict(base.values) if base else dict(run.current),
        best_config=dict(best.values) if best else {},
        baseline=base.metric if base else None,
        best=best.metric if best else None,
        improvement=improvement,
        evaluations=tracker.evaluations,
        failed_steps=tracker.failed_steps,
        stopped_reason=stopped,
        success=error is None and best is not None,
        duration_s=duration,
        run_dir=run_dir,
        model_path=model_path,
        seed=run.seed,
        notes=list(run.notes),
    )


def tune(spec_path: str | Path, options: TuneOptions, *, sink: EventSink = null_sink, confirm=None) -> TuningResult:
    """Load, check, confirm (`confirm(run)` raises to refuse) and run."""
    spec = load_spec(spec_path)
    return tune_spec(spec, options, sink=sink, confirm=confirm)


def tune_spec(spec: TuningSpec, options: TuneOptions, *, sink: EventSink = null_sink, confirm=None,
              attachments: Mapping[str, Any] | None = None) -> TuningResult:
    """Tune a loaded spec; `attachments` are extra JSON files for the run directory
    (the plan, the system profile)."""
    from cli_ai.tactician.envs import SIMULATED_TARGETS

    options.attachments = dict(attachments or {})
    if spec.target in SIMULATED_TARGETS:
        from cli_ai.policy_training import train_policy

        return train_policy(spec, options, sink=sink)
    run = prepare(spec, options)
    if confirm is not None:
        confirm(run)
    return execute(run, options, sink)


def improvement_text(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.1f}%"


__all__ = ["TuneOptions", "PreparedRun", "prepare", "execute", "tune", "substitute", "improvement_text"]
