"""`cli-ai plan` and `cli-ai optimize`: from a goal in plain words to a tuned
configuration.

    goal -> strategist (LLM or offline) -> spec -> checks -> confirmation -> tune -> summary -> apply?

The plan and the system profile it was made for go into the run directory
(`plan.json` with token usage, `profile.json`), so the run can be reproduced
from `spec.json` and understood from the plan.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cli_ai.errors import BadInputError, SafetyError
from cli_ai.spec import TuningSpec


@dataclass
class PlanOptions:
    provider: str = "auto"
    model: str | None = None
    base_url: str | None = None
    timeout: float | None = None  # None: the endpoint's default (long for a local server)
    max_repairs: int = 2
    response_format: str | None = None  # pinned; None: $CLI_AI_RESPONSE_FORMAT, else negotiated


def make_plan(goal: str, options: PlanOptions, *, dry_run: bool = False, profile=None):
    """The strategist's plan for `goal` (see cli_ai.strategist.make_plan)."""
    from cli_ai.errors import BadInputError
    from cli_ai.strategist import gather_profile
    from cli_ai.strategist import make_plan as strategist_plan

    if not goal or not goal.strip():
        raise BadInputError('GOAL: empty; say what to optimize, e.g. "optimize this system for database workload"')
    profile = profile or gather_profile()
    plan = strategist_plan(goal, provider=options.provider, model=options.model, base_url=options.base_url,
                           timeout=options.timeout, max_repairs=options.max_repairs, dry_run=dry_run, profile=profile,
                           response_format=options.response_format)
    return plan, profile


_DURATION_FLAGS = (
    (re.compile(r"^-T$"), None),                      # pgbench -T 30
    (re.compile(r"^--time=(\d+)$"), 1),               # sysbench --time=30
    (re.compile(r"^--runtime=(\d+)s?$"), 1),          # fio --runtime=30
    (re.compile(r"^-d(\d+)s?$"), 1),                  # wrk -d30s
    (re.compile(r"^--duration=(\d+)s?$"), 1),
)


def estimate_evaluation_seconds(spec: TuningSpec) -> tuple[float, bool]:
    """(seconds per benchmark run, whether it is read from the command).
    Falls back to the benchmark timeout as an upper bound."""
    b = spec.benchmark
    if b is None:
        return 0.0, False
    try:
        argv = shlex.split(b.command) if b.command else list(b.args or ())
    except ValueError:
        argv = []
    for i, arg in enumerate(argv):
        for pattern, group in _DURATION_FLAGS:
            m = pattern.match(arg)
            if m:
                if group is None and i + 1 < len(argv) and argv[i + 1].isdigit():
                    return float(argv[i + 1]) * (b.repeats + b.warmup_runs), True
                if group is not None:
                    return float(m.group(group)) * (b.repeats + b.warmup_runs), True
    return float(b.timeout_s) * (b.repeats + b.warmup_runs), False


def _duration_text(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def time_estimate_text(spec: TuningSpec, budget: int, dry_run: bool, verify: int = 0) -> str:
    """How long a run takes: the budget's evaluations plus the verification
    runs (2 x verify, outside the budget). From the benchmark's own duration
    when its command states one, else only an upper bound from its timeout."""
    if dry_run:
        return "a few seconds (simulated: no benchmark runs)"
    per, exact = estimate_evaluation_seconds(spec)
    runs = budget + 2 * verify
    total = per * runs
    what = f"{budget} evaluations + {2 * verify} verification runs" if verify else f"{budget} evaluations"
    if exact:
        return (f"about {_duration_text(total)} ({what} of ~{per:.0f} s from the benchmark's duration, "
                "plus the search's own time)")
    return (f"unknown: the benchmark's command states no duration; an upper bound is {_duration_text(total)} "
            f"({what}, if each one ran into its {per:.0f} s timeout)")


@dataclass
class ApplyOffer:
    """Whether optimize may offer (or, with --apply, do) the apply, and what to say."""

    possible: bool
    message: str | None = None


def check_goal_or_spec(goal: str | None, spec_file) -> None:
    if spec_file is not None and goal:
        raise BadInputError("GOAL and --spec: give one of them (a goal to plan from, or a ready spec to run)")


def apply_offer(result, *, force: bool = False, requested: bool = False) -> ApplyOffer:
    """Only a verified gain on a real sysctl run is offered; `force` lets an
    unverified one through (the apply then records that it was forced).
    With `requested` (optimize --apply), a result not verified better is a
    refusal: SafetyError, exit 3."""
    from cli_ai.apply import verified_gain_problem
    from cli_ai.targets import get_target

    if not get_target(result.target).applicable or not result.best_config or result.baseline is None:
        return ApplyOffer(False)
    if result.simulated:
        return ApplyOffer(False, "dry run: nothing to apply (the best configuration was found on a simulated system)")
    problem = verified_gain_problem(result.to_json())
    if problem is not None:
        if force:
            return ApplyOffer(True, f"applying with --force although {problem}")
        if requested:
            raise SafetyError(f"not applied: {problem} (--force applies it anyway)")
        return ApplyOffer(False, f"nothing applied: {problem}")
    return ApplyOffer(True)


@dataclass
class OptimizeRequest:
    """One `cli-ai optimize`: what to plan from, how to tune, whether to apply."""

    goal: str | None = None
    spec_file: Path | None = None
    plan: PlanOptions = field(default_factory=PlanOptions)
    tune: Any = None  # tuning.TuneOptions; None: the defaults
    apply_best: bool = False  # --apply: apply without asking, if verified better
    force: bool = False
    yes: bool = False
    json_out: bool = False
    interactive: bool = False  # stdin is a terminal: the apply question may be asked


class OptimizeView(Protocol):
    """What `run_optimize` shows and asks (the console implements it; the app
    layer never prints)."""

    sink: Any  # receives the tune's events

    def plan_made(self, plan_result) -> None: ...
    def run_screen(self, run, estimate: str) -> None: ...
    def confirm(self, question: str) -> bool: ...
    def note(self, text: str) -> None: ...
    def result_json(self, payload: dict[str, Any]) -> None: ...
    def applied(self, outcome) -> None: ...


def run_optimize(req: OptimizeRequest, view: OptimizeView):
    """Plan (or load the ready spec), confirm, tune, verify, then apply a
    verified gain: without asking under --apply, after a question on a
    terminal, else say how to apply it later. Returns the tune's result."""
    from cli_ai import apply as applying
    from cli_ai import pipeline, tuning

    check_goal_or_spec(req.goal, req.spec_file)
    tune_options = req.tune if req.tune is not None else tuning.TuneOptions()
    if req.spec_file is None:
        plan_result, profile = make_plan(req.goal or "", req.plan, dry_run=tune_options.dry_run)
        view.plan_made(plan_result)
        spec, files, plan_json = plan_result.spec, attachments(plan_result, profile), plan_result.to_dict()
    else:
        spec, files, plan_json = load_ready_spec(req.spec_file), {}, {"provider": "none", "spec_file": str(req.spec_file)}

    def confirm(run) -> None:
        view.run_screen(run, time_estimate_text(run.spec, run.budget, run.dry_run, run.verify_runs))
        if not run.dry_run:
            pipeline.require_confirmation(view, "Start tuning", yes=req.yes)

    result = tuning.tune_spec(spec, tune_options, sink=view.sink, confirm=confirm, attachments=files)
    if req.json_out:
        view.result_json({**result.to_json(), "plan": {k: v for k, v in plan_json.items() if k != "spec"}})
    offer = apply_offer(result, force=req.force, requested=req.apply_best)
    if offer.message:
        view.note(offer.message)
    if not offer.possible:
        return result
    if not req.apply_best:
        if not req.interactive or req.json_out:
            view.note(f"to apply the best configuration: cli-ai apply {result.run_dir}/result.json")
            return result
        what = "this configuration although it was not verified better" if req.force and offer.message else \
            "the verified configuration"
        if not view.confirm(f"Apply {what} now (journaled; cli-ai rollback undoes it)?"):
            view.note(f"not applied; later: cli-ai apply {result.run_dir}/result.json")
            return result
    view.applied(applying.apply(applying.prepare_apply(result.run_dir, force=req.force)))
    return result


def load_ready_spec(path) -> TuningSpec:
    """`optimize --spec FILE`: a ready spec instead of a plan."""
    from cli_ai.spec import load_spec

    return load_spec(path)


def attachments(plan, profile) -> dict[str, Any]:
    return {"plan.json": plan.to_dict(), "profile.json": profile.to_dict()}


def write_spec(path, spec_dict: dict[str, Any]) -> None:
    import json
    from pathlib import Path

    from cli_ai.core.secrets import scrub_data

    Path(path).write_text(json.dumps(scrub_data(spec_dict), indent=2) + "\n")
