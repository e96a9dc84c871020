"""`cli-ai tune`: load, check, confirm, guard, search, verify, report.

    spec -> safety checks -> confirmation -> Guard(backend) -> baseline runs
         -> search (optimiser or RL agent) -> re-measure the top few -> verify -> TuningResult

A dry run takes exactly the same path with a simulated backend and the
surrogate benchmark: nothing on the machine is written and no benchmark runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cli_ai.errors import BadInputError, CliAiError, Interrupted, SafetyError, TooManyFailures
from cli_ai.events import Event, EventSink, fanout, null_sink
from cli_ai.pipeline import CheckedSpec, benchmark_text, check_loaded_spec
from cli_ai.results import RunDirectory, TuningResult, plot_progress
from cli_ai.spec import TuningSpec, load_spec
from cli_ai.core.backend import Value, to_json_value
from cli_ai.tactician.knobs import KnobSpace
from cli_ai.targets import TargetSession, get_target, knob_targets

DEFAULT_BUDGET_CAP = 100
DEFAULT_BASELINE_RUNS = 3
DEFAULT_VERIFY_RUNS = 3
# Warn when the noise hides gains smaller than this (a fraction of the baseline).
NOISE_WARNING_GAIN = 0.10


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
    # Re-measure baseline and best this many times each at the end (alternately);
    # None = the default (DEFAULT_VERIFY_RUNS), 0 = skip.
    verify: int | None = None
    # Write SB3's training log, with the reward breakdown, as TensorBoard events here.
    tensorboard: str | None = None
    # Seed 000's broker flags (--replay-*, --enable-workload, --total-timesteps); None = from the spec.
    broker: dict[str, Any] = field(default_factory=dict)


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
    baseline_runs: int = 1
    recheck_runs: int = 0
    verify_runs: int = 0
    search_reason: str = ""

    @property
    def spec(self) -> TuningSpec:
        return self.checked.spec

    @property
    def search_evaluations(self) -> int:
        return self.budget - self.baseline_runs - self.recheck_runs


# The flags of seed 000's broker CLI, and what each applies to.
TARGET_FLAGS = {
    "replay_buffer_size": "--replay-buffer-size", "replay_alpha": "--replay-alpha", "replay_beta": "--replay-beta",
    "replay_beta_increment": "--replay-beta-increment", "enable_workload": "--enable-workload",
    "total_timesteps": "--total-timesteps",
}
REPLAY_FLAGS = ("replay_buffer_size", "replay_alpha", "replay_beta", "replay_beta_increment")
# Algorithms that write a training log (SB3's, through torch's TensorBoard writer).
TENSORBOARD_ALGORITHMS = ("ppo", "ddpg", "td3", "sac", "per-ddpg")


def check_flags(spec: TuningSpec, options: TuneOptions, algorithm: str) -> None:
    """A flag that would not apply to this run is an error that says what it
    applies to (it used to be ignored without a word); a missing optional
    package is found here, before anything runs."""
    target = get_target(spec.target)
    given = [k for k, v in (options.broker or {}).items() if v is not None]
    for key in given:
        flag = TARGET_FLAGS.get(key, key)
        if key not in target.cli_flags:
            hint = "; give the budget with --budget" if key == "total_timesteps" else ""
            raise BadInputError(f"{flag}: applies to the mosquitto target (seed 000's flags); this spec's target is "
                                f"{spec.target}{hint}")
        if key in REPLAY_FLAGS and algorithm != "per-ddpg":
            raise BadInputError(f"{flag}: sets PER-DDPG's prioritized replay; this run's algorithm is {algorithm} "
                                "(--algo per-ddpg to use it)")
    if options.tensorboard is not None:
        if algorithm not in TENSORBOARD_ALGORITHMS:
            raise BadInputError(f"--tensorboard: {algorithm} writes no training log; it applies to "
                                f"{', '.join(TENSORBOARD_ALGORITHMS)}")
        tensorboard_dir(options)


def tensorboard_dir(options: TuneOptions) -> str | None:
    """The --tensorboard directory, after checking that TensorBoard can write."""
    if options.tensorboard is None:
        return None
    try:
        import tensorboard  # noqa: F401  (SB3 writes through torch.utils.tensorboard, which needs it)
    except ImportError:
        raise BadInputError("--tensorboard: the tensorboard package is not installed; pip install tensorboard") from None
    return options.tensorboard


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
    target = get_target(checked.spec.target)
    ordered = {knob.param: target.knob_ordering(knob.param) for knob in checked.report.knobs}
    return KnobSpace.from_specs(checked.report.knobs, ordered)


def prepare(spec: TuningSpec, options: TuneOptions) -> PreparedRun:
    """Checks and decisions; raises before anything runs."""
    if options.verify is not None and not (options.verify == 0 or 2 <= options.verify <= 50):
        raise BadInputError(f"--verify: {options.verify} runs cannot test a difference (Welch's test needs at least 2 "
                            "of each); give 0 to skip verification, or 2 to 50")
    budget = options.budget
    target = get_target(spec.target)
    steps = target.search_steps(options)
    if steps is not None and budget is None:
        # seed 000: N agent steps after the baseline (and the re-measurements of the top few)
        budget = budget_for_search(spec, steps)
    spec = spec.with_overrides(budget=budget, algorithm=options.algorithm, seed=options.seed)
    if target.search != "knobs":
        raise SafetyError(f"target: {spec.target!r} is tuned by its own path; this run handles "
                          f"{', '.join(knob_targets())}")
    check_flags(spec, options, spec.training_config.algorithm)
    checked = check_loaded_spec(spec, clamp=options.clamp, allow_shell=options.allow_shell,
                                dry_run=options.dry_run, proc_root=options.proc_root)
    notes = list(checked.report.notes)
    budget = resolve_budget(spec, notes)
    if budget < 2:
        raise BadInputError("training_config.budget: a run needs at least 2 evaluations (the baseline and one try)")
    space = _knob_space(checked)
    run = PreparedRun(checked, space, budget, spec.training_config.algorithm, spec.training_config.seed,
                      options.dry_run, notes, warnings=list(checked.report.warnings))
    _split_budget(run, options)
    space.rules = target.knob_rules(space, dry_run=options.dry_run, proc_root=options.proc_root)
    run.current = target.current_values(spec, space, dry_run=options.dry_run, proc_root=options.proc_root)
    target.require_access(space.names, dry_run=options.dry_run, proc_root=options.proc_root)
    return run


def baseline_runs_for(spec: TuningSpec, budget: int) -> int:
    """How many times the current values are measured: the spec's
    `benchmark.repeats` when it sets one, else 3; at most a quarter of the budget."""
    given = ((spec.raw or {}).get("benchmark") or {}).get("repeats") if isinstance(spec.raw, dict) else None
    wanted = int(given) if isinstance(given, int) and not isinstance(given, bool) else DEFAULT_BASELINE_RUNS
    return max(1, min(wanted, budget // 4))


def split_budget(spec: TuningSpec, budget: int) -> tuple[int, int, int]:
    """(baseline runs, search evaluations, re-measurements) of `budget`."""
    from cli_ai.tactician.loop import recheck_runs

    baseline = baseline_runs_for(spec, budget)
    rechecks = min(recheck_runs(budget), max(0, budget - baseline - 1))
    return baseline, budget - baseline - rechecks, rechecks


def budget_for_search(spec: TuningSpec, steps: int) -> int:
    """The budget whose search part is exactly `steps` evaluations (the
    search part grows by at most one per budget step, so the first budget
    that reaches `steps` has exactly `steps`)."""
    budget = steps + 1
    while split_budget(spec, budget)[1] < steps:
        budget += 1
    return budget


def _split_budget(run: PreparedRun, options: TuneOptions) -> None:
    """Baseline runs, search and re-measurements, all inside the budget; and
    the verification runs, outside it."""
    run.baseline_runs, _, run.recheck_runs = split_budget(run.spec, run.budget)
    if run.baseline_runs < DEFAULT_BASELINE_RUNS and run.budget < 4 * DEFAULT_BASELINE_RUNS:
        run.notes.append(f"baseline measured {run.baseline_runs} time(s), not {DEFAULT_BASELINE_RUNS}: a budget of "
                         f"{run.budget} has no room for more")
    run.verify_runs = DEFAULT_VERIFY_RUNS if options.verify is None else int(options.verify)
    if run.algorithm == "auto":
        from cli_ai.tactician.optimizers.optuna_search import choose_auto

        run.search_reason = choose_auto(run.space, run.search_evaluations).reason
    elif run.algorithm == "random":
        run.search_reason = "uniform random search over the safe ranges"


# --------------------------------------------------------------------------- the run


def _agent_plan(run: PreparedRun, options: TuneOptions):
    from cli_ai.tactician.agents.factory import plan_knob_agent

    plan = plan_knob_agent(run.algorithm, run.spec.training_config, run.search_evaluations)
    get_target(run.spec.target).fit_agent_plan(plan, run, options)
    return plan


def execute(run: PreparedRun, options: TuneOptions, sink: EventSink = null_sink, *, evaluate=None) -> TuningResult:
    """Run the search under the guard; always restore; write the run directory.

    `evaluate` replaces the spec's benchmark with a Python function (values ->
    Evaluation), for programmatic use and the search benchmark; everything
    else (Guard, journal, budget, events, run directory) stays the same."""
    from cli_ai.safety.guard import claim

    # The Guard's refusals (another run holds the lock, a crashed run left its
    # journal) come before this run writes anything of its own or starts a
    # broker: a refused run leaves no run directory behind. The journal is
    # still written by the Guard, before the first write to the machine.
    lock = claim(sink=sink) if get_target(run.spec.target).writes_machine(run) else None
    try:
        return _run(run, options, sink, evaluate, lock)
    finally:
        if lock is not None:
            lock.release()  # a no-op once the Guard has released it


def _run(run: PreparedRun, options: TuneOptions, sink: EventSink, evaluate, lock) -> TuningResult:
    from cli_ai.safety.guard import FailureCounter, Guard
    from cli_ai.tactician.loop import RecordingWrapper, Tracker, recheck

    spec = run.spec
    started = time.monotonic()
    rundir = RunDirectory(options.output_dir)
    rundir.write_json("spec.json", spec.to_dict())
    for name, payload in options.attachments.items():
        rundir.write_json(name, payload)
    target = get_target(spec.target)
    columns = target.step_columns(run.space)
    if columns is not None:
        rundir.extra_columns = columns
    tracker = Tracker(direction=spec.metric_direction, budget=run.budget, sink=fanout(sink, rundir))
    tracker.search_limit = run.budget - run.recheck_runs
    agent_plan = _agent_plan(run, options)
    run.notes.extend(agent_plan.notes)
    sink(Event("run_started", {"run": run, "run_dir": str(rundir.path), "agent": agent_plan,
                               "benchmark": benchmark_text(spec)}))

    netns = target.netns_params(run.space.names)
    stopped = "budget spent"
    error: BaseException | None = None
    model_path = None
    verification = None
    chosen = None
    search_name = run.algorithm
    session: TargetSession | None = None
    try:
        session = target.session(run, options, sink)
        if evaluate is not None:
            session.evaluate = evaluate
        with Guard(session.backend, run.space.names, sink=sink, workload=spec.workload_name,
                   netns_params=netns, lock=lock) as guard:
            failures = FailureCounter(spec.safety.max_consecutive_failures)
            common = dict(reward=session.reward, failures=failures, budget=run.budget)
            env = target.make_env(run, session, guard, **common)
            env.baseline_runs = run.baseline_runs
            wrapped = RecordingWrapper(env, tracker)
            wrapped.reset(seed=run.seed)  # the baseline runs: the first evaluations of the budget
            _warn_about_noise(run, tracker, sink)
            search_name, model_path = _search(run, options, env, wrapped, tracker, agent_plan, rundir)
            recheck(env, tracker)
            chosen = tracker.select_best()
            if run.verify_runs and chosen is not None and not chosen.is_baseline:
                verification = _verify(run.verify_runs, tracker, chosen, guard.apply, session.evaluate, spec, sink)
    except TooManyFailures as exc:
        stopped, error = "too many consecutive failures", exc
    except (Interrupted, KeyboardInterrupt) as exc:
        stopped, error = "interrupted", exc
    except CliAiError as exc:
        stopped, error = f"error: {exc}", exc
    finally:
        if session is not None:
            session.close()

    rundir.close()
    if chosen is None and error is not None:
        chosen = tracker.select_best()  # what the evidence so far supports (nothing is offered to apply)
    result = _result(run, tracker, chosen, verification, stopped, error, time.monotonic() - started,
                     str(rundir.path), model_path, search_name)
    rundir.write_json("result.json", result.to_json())
    plot_progress(tracker.records, rundir.path / "plots" / "progress.png", metric=spec.reward_metric or "metric",
                  direction=spec.metric_direction, simulated=run.dry_run,
                  baseline=tracker.baseline_metric, chosen=chosen.records if chosen else None)
    sink(Event("run_finished", {"result": result, "records": tracker.records}))
    if error is not None:
        raise error
    return result


def _search(run: PreparedRun, options: TuneOptions, env, wrapped, tracker, agent_plan, rundir) -> tuple[str, str | None]:
    """The search phase: an ask-and-tell optimiser, or an RL agent through the
    env. Returns (what searched, the saved model or None)."""
    from cli_ai.tactician.optimizers import OPTIMIZERS, make_optimizer

    if run.algorithm in OPTIMIZERS:
        from cli_ai.tactician.loop import run_optimizer

        optimizer = make_optimizer(run.algorithm, run.space, direction=run.spec.metric_direction, seed=run.seed,
                                   budget=run.search_evaluations, start=run.current, start_runs=run.baseline_runs)
        try:
            run_optimizer(optimizer, env, tracker)
        finally:
            optimizer.close()
        return optimizer.choice.name, None
    from cli_ai.tactician.agents.factory import build_agent
    from cli_ai.tactician.loop import run_agent

    agent = build_agent(agent_plan, wrapped, seed=run.seed, verbose=options.verbose,
                        tensorboard_log=tensorboard_dir(options))
    run_agent(agent, tracker, run.search_evaluations, breakdown=options.tensorboard is not None)
    if hasattr(agent, "policy"):
        agent.save(rundir.path / "model.zip")
        return run.algorithm, str(rundir.path / "model.zip")
    return run.algorithm, None


def _warn_about_noise(run: PreparedRun, tracker, sink: EventSink) -> None:
    """Say how noisy the benchmark is, and warn when the noise hides the gains
    the verification could show."""
    from cli_ai.tactician.verify import min_detectable_gain

    cv = tracker.baseline_cv
    runs = run.verify_runs or run.baseline_runs
    mdg = min_detectable_gain(cv, runs) if cv is not None else None
    sink(Event("noise", {"cv": cv, "runs": len(tracker.baseline_records), "min_detectable_gain": mdg,
                         "verify_runs": run.verify_runs}))
    if mdg is not None and mdg >= NOISE_WARNING_GAIN:
        run.warnings.append(
            f"the benchmark is noisy: {cv * 100:.1f} % run to run over {len(tracker.baseline_records)} baseline "
            f"runs, so with {runs} verification runs a side only a gain above about {mdg * 100:.0f} % can be told "
            "from noise; lengthen the benchmark, set benchmark.repeats, or raise --verify"
        )
        sink(Event("target_warning", {"message": run.warnings[-1]}))


def _verify(runs: int, tracker, chosen, apply, evaluate, spec: TuningSpec, sink: EventSink) -> dict[str, Any]:
    from cli_ai.tactician.verify import verify

    sink(Event("verify_started", {"runs": runs}))

    def on_run(label, i, metric, error):
        sink(Event("verify_run", {"label": label, "index": i, "metric": metric, "error": error}))

    outcome = verify(runs, tracker.baseline.values, chosen.values, apply=apply, evaluate=evaluate,
                     direction=spec.metric_direction, on_run=on_run).summary()
    sink(Event("verify_finished", {"summary": outcome}))
    return outcome


def _result(run: PreparedRun, tracker, chosen, verification, stopped: str, error, duration: float, run_dir: str,
            model_path, search_name: str) -> TuningResult:
    spec = run.spec
    base_metric = tracker.baseline_metric
    baseline_values = dict(tracker.baseline.values) if tracker.baseline else dict(run.current)
    improved = chosen is not None and not chosen.is_baseline
    estimate = tracker.improvement(chosen.mean) if improved else (0.0 if chosen is not None else None)
    if verification is not None and verification.get("improvement") is not None:
        improvement, basis = verification["improvement"], "verified"
        verdict = verification["verdict"]
    elif verification is not None:
        verdict = verification["verdict"]
        basis = "verification failed" if verdict == "failed" else "no relative gain (the baseline's mean is 0)"
        improvement = None
    elif improved:
        improvement = estimate
        basis = "re-measured estimate" if chosen.runs >= 2 else "single measurement"
        verdict = "not verified"
    else:
        improvement, basis = estimate, "no configuration beat the baseline"
        verdict = "no improvement" if chosen is not None else "not verified"
    best_sample = tracker.best
    extra: dict[str, Any] = {
        "verdict": verdict,
        "improvement_basis": basis,
        "improvement_estimate": estimate,
        "baseline_runs": [r.metric for r in tracker.baseline_records],
        "noise_cv": tracker.baseline_cv,
        "best_runs": list(chosen.metrics) if chosen else [],
        "search": {"algorithm": run.algorithm, "used": search_name, "reason": run.search_reason,
                   "baseline_runs": run.baseline_runs, "recheck_runs": run.recheck_runs,
                   "search_evaluations": run.search_evaluations, "verify_runs": run.verify_runs},
    }
    if best_sample is not None and best_sample.phase != "baseline":
        extra["best_sample"] = {"step": best_sample.index, "metric": best_sample.metric,
                                "improvement": best_sample.improvement_pct,
                                "config": {k: to_json_value(v) for k, v in best_sample.values.items()},
                                "note": "the single best measurement (biased upward by its noise; not verified)"}
    if verification is not None:
        extra["verification"] = verification
    return TuningResult(
        workload=spec.workload_name,
        target=spec.target,
        applicable=get_target(spec.target).applicable,
        metric=spec.reward_metric,
        direction=spec.metric_direction,
        algorithm=run.algorithm,
        budget=run.budget,
        simulated=run.dry_run,
        baseline_config=baseline_values,
        best_config=dict(chosen.values) if chosen is not None else {},
        baseline=base_metric,
        best=chosen.mean if chosen is not None else None,
        improvement=improvement,
        evaluations=tracker.evaluations,
        failed_steps=tracker.failed_steps,
        stopped_reason=stopped,
        success=error is None and chosen is not None,
        duration_s=duration,
        run_dir=run_dir,
        model_path=model_path,
        seed=run.seed,
        notes=list(run.notes),
        extra=extra,
    )


def tune(spec_path: str | Path, options: TuneOptions, *, sink: EventSink = null_sink, confirm=None) -> TuningResult:
    """Load, check, confirm (`confirm(run)` raises to refuse) and run."""
    spec = load_spec(spec_path)
    return tune_spec(spec, options, sink=sink, confirm=confirm)


def tune_spec(spec: TuningSpec, options: TuneOptions, *, sink: EventSink = null_sink, confirm=None,
              attachments: Mapping[str, Any] | None = None) -> TuningResult:
    """Tune a loaded spec; `attachments` are extra JSON files for the run directory
    (the plan, the system profile)."""
    options.attachments = dict(attachments or {})
    if get_target(spec.target).search == "policy":
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


__all__ = ["TuneOptions", "PreparedRun", "prepare", "execute", "tune", "improvement_text"]
