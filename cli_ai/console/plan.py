"""Rendering of a strategist's plan: the spec as highlighted JSON and the reasoning.

Functions take a `cli_ai.console.Console` and a `cli_ai.strategist.PlanResult`
(or its parts); nothing here decides anything.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from cli_ai.console.text import escape
from rich.syntax import Syntax


def spec_json_text(spec_dict: dict[str, Any]) -> str:
    return json.dumps(spec_dict, indent=2, ensure_ascii=False)


def render_spec(console, spec_dict: dict[str, Any], *, title: str | None = None) -> None:
    """The spec as syntax-highlighted JSON on stdout (plain JSON with --json)."""
    if console.json_mode:
        console.json(spec_dict)
        return
    text = spec_json_text(spec_dict)
    if title:
        console.out.print(f"[bold]{escape(title)}[/]", soft_wrap=True)
    if console.out.is_terminal:
        # highlighted, and no frame around it, so the JSON copies and pastes cleanly
        console.out.print(Syntax(text, "json", theme="ansi_dark", word_wrap=True, background_color="default"))
    else:  # piped: exact JSON lines, never wrapped
        console.out.print(text, markup=False, highlight=False, soft_wrap=True)


def render_reasoning(console, lines: Iterable[str], *, title: str = "why this plan") -> None:
    """The strategist's reasoning, one line each; indented lines are details."""
    if console.json_mode:
        return
    console.out.print(f"[bold]{escape(title)}[/]")
    for line in lines:
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if indent:
            console.out.print(f"{' ' * (indent + 2)}[dim]{escape(stripped)}[/]", soft_wrap=True)
        else:
            console.out.print(f"  {escape(stripped)}", soft_wrap=True)


def plan_header(plan) -> str:
    if plan.provider == "openai":
        how = f"LLM {plan.model} at {plan.base_url}"
        if plan.response_format:
            how += f", {plan.response_format}"
        if plan.repairs:
            how += f", {plan.repairs} repair round(s)"
    else:
        how = f"offline planner, template {plan.template}"
    return f"{plan.spec.workload_name}  ({how})"


def usage_line(usage: dict[str, Any]) -> str | None:
    if not usage or not usage.get("calls"):
        return None
    line = (
        f"tokens: {usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} completion = "
        f"{usage.get('total_tokens', 0)} over {len(usage['calls'])} call(s)"
    )
    if usage.get("retries"):
        line += f", {usage['retries']} retried request(s)"
    return line


def render_rounds(console, rounds: Iterable[dict[str, Any]]) -> None:
    """Every round with the LLM (--verbose), on stderr: stdout keeps the spec alone."""
    from cli_ai.strategist.transcript import round_lines

    for r in rounds:
        for line in round_lines(r):
            style = "dim" if line.startswith(" ") else "bold"
            console.err.print(f"[{style}]{escape(line)}[/]", soft_wrap=True)


def failed_plan_json(exc) -> dict[str, Any]:
    """A failed plan as one JSON object (`plan --json`): the error, its lines,
    the exit code, and, from the LLM, the failed-plan file, usage and rounds."""
    record = getattr(exc, "transcript", None) or {}
    return {
        "error": {
            "kind": type(exc).__name__,
            "message": exc.lines()[0] if exc.lines() else str(exc),
            "problems": exc.lines(),
            "exit_code": exc.exit_code,
            "failed_plan_file": getattr(exc, "failed_plan_file", None),
            "usage": getattr(exc, "usage", None) or {},
            "rounds": record.get("rounds", []),
        }
    }


def render_failed_plan(console, exc, *, verbose: bool = False) -> None:
    """What a failed plan leaves on the screen before its error lines: the
    JSON error object with --json, every round with --verbose."""
    if console.json_mode:
        console.json(failed_plan_json(exc))
    elif verbose:
        render_rounds(console, (getattr(exc, "transcript", None) or {}).get("rounds", []))


def render_plan(console, plan, *, show_spec: bool = True, show_reasoning: bool = True, verbose: bool = False) -> None:
    """A whole plan: a fallback warning, the reasoning, the spec, warnings, token usage.
    With --json: one object (plan.to_dict()) on stdout and nothing else there.
    With `verbose`: every round with the LLM first (stderr)."""
    if console.json_mode:
        console.json(plan.to_dict())
        return
    if verbose:
        render_rounds(console, plan.rounds)
    if plan.fallback_reason:
        console.note(plan.fallback_reason)
    if show_reasoning and plan.reasoning:
        render_reasoning(console, plan.reasoning)
    if show_spec:
        render_spec(console, plan.spec_dict, title=plan_header(plan))
    for warning in plan.warnings:
        console.warn(warning)
    line = usage_line(plan.usage)
    if line and not console.quiet:
        console.err.print(f"[dim]{escape(line)}[/]")


__all__ = ["render_plan", "render_failed_plan", "failed_plan_json", "render_rounds", "render_spec", "render_reasoning", "plan_header", "usage_line", "spec_json_text"]
