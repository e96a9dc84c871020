"""What every strategist shares: the protocol, the plan it returns, its errors."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cli_ai.errors import EXIT_BAD_INPUT, EXIT_REFUSED, BadInputError, StrategistError
from cli_ai.spec import TuningSpec
from cli_ai.strategist.profile import SystemProfile


class EndpointError(StrategistError):
    """The LLM endpoint did not answer usefully: unreachable, timed out, bad key,
    unknown model, rate limited past the retries. `make_plan(provider="auto")`
    falls back to the offline strategist on this one."""


class EndpointNotConfigured(EndpointError, BadInputError):
    """No LLM endpoint is set (no key, no base URL) and the person asked for
    the LLM: a configuration to fix, so exit 2 like any bad input, not 4."""

    exit_code = EXIT_BAD_INPUT


class NoUsableAnswerError(StrategistError):
    """The LLM answered, but never with a valid spec (no JSON, schema errors)
    within the repair rounds. `auto` falls back to offline on this one."""


class UnsafeAnswerError(StrategistError):
    """The LLM proposed something the safety checks refuse and did not repair
    it. Never papered over by a fallback: the person should see what it asked.
    Exit code 3, like every other safety refusal."""

    exit_code = EXIT_REFUSED


@dataclass
class PlanResult:
    """A validated, safety-checked tuning spec and how it was reached."""

    spec_dict: dict[str, Any]
    spec: TuningSpec
    provider: str  # "openai" | "offline"
    model: str | None = None
    template: str | None = None
    reasoning: list[str] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    repairs: int = 0
    fallback_reason: str | None = None
    response_format: str | None = None
    base_url: str | None = None
    warnings: list[str] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # the LLM's rounds (transcript.Round), scrubbed

    def to_dict(self) -> dict[str, Any]:
        """Everything but the typed spec, as JSON-ready data (for runs/<stamp>/plan.json)."""
        return {
            "provider": self.provider,
            "model": self.model,
            "base_url": self.base_url,
            "template": self.template,
            "response_format": self.response_format,
            "repairs": self.repairs,
            "fallback_reason": self.fallback_reason,
            "reasoning": list(self.reasoning),
            "warnings": list(self.warnings),
            "usage": copy.deepcopy(self.usage),
            "rounds": copy.deepcopy(self.rounds),
            "spec": copy.deepcopy(self.spec_dict),
        }


@runtime_checkable
class Strategist(Protocol):
    """Turns a goal and a system profile into a PlanResult (or a StrategistError)."""

    name: str

    def plan(self, goal: str, profile: SystemProfile) -> PlanResult:  # pragma: no cover - protocol
        ...


__all__ = [
    "PlanResult",
    "Strategist",
    "StrategistError",
    "EndpointError",
    "EndpointNotConfigured",
    "NoUsableAnswerError",
    "UnsafeAnswerError",
]


# --------------------------------------------------------------------------- checks


@dataclass
class Assessment:
    """What cli-ai's checks say about a proposed spec."""

    spec: TuningSpec | None
    problems: list[str]
    unsafe: bool = False  # refused by safety or the plan policy (not a mere format error)
    checked: Any = None  # pipeline.CheckedSpec when everything passed


def assess_spec(data: Any, *, dry_run: bool = False, proc_root: str | None = None, policy: bool = True,
                goal: str = "", rules: bool = False) -> Assessment:
    """Run a proposed spec through everything a plan must pass: the schema and
    semantic checks, the safety checks (`check_loaded_spec`, without
    allow_shell), and (unless `policy` is False, for curated ready specs) the
    strategist policy on targets and benchmarks (`goal`: the person's words,
    where a remote host a benchmark may use must appear). With `rules`, also the
    prompt's rules (`plan_rules`: the param count; a benchmark that can run
    here, unless `dry_run`): problems to repair, not unsafe. All problems at once."""
    from cli_ai.errors import SafetyError
    from cli_ai.pipeline import check_benchmark_command, check_loaded_spec
    from cli_ai.safety.check import shell_syntax_in, without_clamp_hint
    from cli_ai.spec import spec_from_dict, validation_problems
    from cli_ai.strategist.policy import plan_policy_problems
    from cli_ai.tactician.backends.sysctl import PROC_SYS

    problems = validation_problems(data)
    if problems:
        return Assessment(None, problems, unsafe=False)
    spec = spec_from_dict(data)
    unsafe: list[str] = []
    checked = None
    try:
        checked = check_loaded_spec(spec, dry_run=dry_run, proc_root=proc_root or PROC_SYS)
    except SafetyError as exc:
        # a plan has no --clamp: the range itself must change
        unsafe.extend(without_clamp_hint(p) for p in exc.problems)
    # check_loaded_spec stops at the first failing stage; report the command too.
    shell = False
    b = spec.benchmark
    if b is not None:
        try:
            check_benchmark_command(spec, allow_shell=False)
        except SafetyError as exc:
            # shell syntax leaves no argv for the policy to read; an
            # interpreter's argv still gets the policy's own words on it
            shell = b.command is not None and bool(shell_syntax_in(b.command))
            unsafe.extend(p for p in exc.problems if p not in unsafe)
    if policy:
        unsafe.extend(p for p in plan_policy_problems(spec, skip_args=shell, goal=goal) if p not in unsafe)
    problems = list(unsafe)
    if rules:
        from cli_ai.strategist.plan_rules import plan_rule_problems

        problems += [p for p in plan_rule_problems(spec, runnable=not dry_run) if p not in problems]
    return Assessment(spec, problems, unsafe=bool(unsafe), checked=None if problems else checked)
