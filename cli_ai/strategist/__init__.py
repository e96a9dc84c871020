"""The strategist: a goal in plain words -> a validated, safety-checked tuning spec.

`make_plan(goal)` is the one entry point. With provider "auto" it asks the LLM
when one is configured (a key or a base URL, given or in OPENAI_API_KEY /
OPENAI_BASE_URL) and falls back to the offline planner when the LLM cannot be
reached or never produces a usable spec; an LLM that insists on something
unsafe is an error, never silently replaced.
"""

from __future__ import annotations

from pathlib import Path

from cli_ai.errors import BadInputError, BenchmarkCannotMeasure, GoalDeclined, StrategistError
from cli_ai.strategist.base import (
    EndpointError,
    NoUsableAnswerError,
    PlanResult,
    Strategist,
    UnsafeAnswerError,
    assess_spec,
)
from cli_ai.strategist.profile import SystemProfile, gather_profile

PROVIDERS = ("auto", "openai", "offline")


def _checked_offline(result: PlanResult, *, dry_run: bool) -> PlanResult:
    """Offline plans pass the same checks as LLM plans; a failure is a template bug
    (or a profile that does not describe this machine)."""
    from cli_ai.targets import get_target

    templated = get_target(result.spec.target).planning == "templates"
    verdict = assess_spec(result.spec_dict, dry_run=dry_run, policy=templated)
    if verdict.problems:
        headline = f"the offline plan ({result.template}) fails cli-ai's own checks on this machine"
        raise StrategistError(headline, problems=[headline + ":"] + verdict.problems)
    return result


def _checked_relevance(result: PlanResult) -> PlanResult:
    """Issue 16 item 4, for every plan: drop the knobs that cannot move the
    benchmark (with a note), refuse one whose knobs none can (BenchmarkCannotMeasure)."""
    from cli_ai.spec import spec_from_dict
    from cli_ai.strategist.relevance import check_relevance
    from cli_ai.targets import get_target

    if get_target(result.spec.target).planning != "templates":
        return result

    def describe(bid: str) -> str:
        from cli_ai.strategist.planning import load_templates

        b = load_templates()[1].get(bid)
        if b is None:
            return bid
        args = " ".join(b.get("args", []))
        return f'{{"runner": "{b["runner"]}"' + (f', "args": {b.get("args")}' if args else "") + "}"

    rel = check_relevance(result.spec_dict, describe=describe)
    if rel.dropped:
        result.spec_dict = rel.spec_dict
        result.spec = spec_from_dict(rel.spec_dict)
        result.warnings.extend(rel.notes)
    result.reasoning.extend(f"relevance: {n}" for n in rel.notes)
    if rel.benchmark and not rel.notes:
        result.reasoning.append(f"relevance: every knob can move the benchmark ({rel.benchmark})")
    result.warnings.extend(n for n in rel.notes if " only " in n)
    return result


def make_plan(
    goal: str,
    *,
    provider: str = "auto",
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    profile: SystemProfile | None = None,
    timeout: float | None = None,
    max_repairs: int = 2,
    max_retries: int = 3,
    retry_backoff: float = 0.5,
    dry_run: bool = False,
    examples_dir: str | Path | None = None,
    response_format: str | None = None,
) -> PlanResult:
    """Plan a tuning spec for `goal`.

    provider: "auto" (LLM if configured, else or on failure offline), "openai"
    (LLM only), "offline" (templates only). `dry_run` makes a param missing on
    this kernel a warning instead of a problem, as `check_loaded_spec` does.
    `timeout` None: the endpoint's default (`endpoint.wait_policy`);
    `response_format` pins one (else $CLI_AI_RESPONSE_FORMAT, else negotiated).
    Raises StrategistError (EndpointError, NoUsableAnswerError,
    UnsafeAnswerError) or BadInputError for an unknown provider.
    """
    if provider not in PROVIDERS:
        raise BadInputError(f"--provider: {provider!r} is not one of {', '.join(PROVIDERS)}")
    if profile is None:
        profile = gather_profile()

    from cli_ai.strategist.offline import OfflineStrategist

    def offline() -> PlanResult:
        return _checked_relevance(
            _checked_offline(OfflineStrategist(examples_dir=examples_dir).plan(goal, profile), dry_run=dry_run))

    def llm() -> PlanResult:
        from cli_ai.strategist.openai_strategist import OpenAIStrategist

        return _checked_relevance(OpenAIStrategist(
            model=model,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_repairs=max_repairs,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            response_format=response_format,
            dry_run=dry_run,
        ).plan(goal, profile))

    if provider == "offline":
        return offline()
    if provider == "openai":
        return llm()

    from cli_ai.strategist.openai_strategist import llm_configured

    if not llm_configured(base_url, api_key):
        result = offline()
        result.fallback_reason = "no LLM endpoint configured (OPENAI_API_KEY and OPENAI_BASE_URL are unset); planned offline"
        return result
    try:
        return llm()
    except (EndpointError, NoUsableAnswerError, BenchmarkCannotMeasure) as exc:
        result = offline()
        kept = getattr(exc, "failed_plan_file", None)
        where = f" (every round of it is in {kept})" if kept else ""
        result.fallback_reason = f"{exc.problems[0]}{where}; planned offline instead"
        result.usage = dict(getattr(exc, "usage", None) or {})
        result.rounds = list((getattr(exc, "transcript", None) or {}).get("rounds", []))
        return result


__all__ = [
    "make_plan",
    "PlanResult",
    "Strategist",
    "SystemProfile",
    "gather_profile",
    "StrategistError",
    "GoalDeclined",
    "BenchmarkCannotMeasure",
    "EndpointError",
    "NoUsableAnswerError",
    "UnsafeAnswerError",
    "PROVIDERS",
]
