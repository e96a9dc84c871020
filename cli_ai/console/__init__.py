"""Rich rendering: the only package that prints.

Everything else hands plain data (dataclasses, dicts, events) to a `Console`.
stdout carries results (tables, summaries, or one JSON object with --json);
stderr carries errors, warnings and progress.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

from rich.console import Console as RichConsole
from cli_ai.console.text import escape, numeric_bools
from rich.table import Table


class Console:
    def __init__(self, *, json_mode: bool = False, quiet: bool = False, debug: bool = False):
        self.json_mode = json_mode
        self.quiet = quiet
        self.debug = debug
        self.out = RichConsole(highlight=False, soft_wrap=False)
        self.err = RichConsole(stderr=True, highlight=False)

    # ------------------------------------------------------------------ basics
    def error(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.err.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)

    def warn(self, line: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)

    def note(self, line: str) -> None:
        if not self.quiet:
            self.err.print(f"[cyan]note:[/] {escape(line)}", soft_wrap=True)

    def info(self, line: str) -> None:
        """A plain result line on stdout (suppressed in --json mode)."""
        if not self.json_mode:
            self.out.print(escape(line), soft_wrap=True)

    def success(self, line: str) -> None:
        if not self.json_mode:
            self.out.print(f"[green]✓[/] {escape(line)}", soft_wrap=True)

    def raw(self, text: str) -> None:
        """Text as given (exports), without Rich markup processing; only secrets are scrubbed."""
        from cli_ai.core.secrets import scrub_text

        sys.stdout.write(scrub_text(text))
        sys.stdout.flush()

    def traceback(self) -> None:
        self.err.print_exception(show_locals=False)

    def json(self, payload: Any) -> None:
        """One JSON object on stdout and nothing else there."""
        from cli_ai.core.secrets import scrub_data

        sys.stdout.write(json.dumps(scrub_data(payload), indent=2, default=str) + "\n")
        sys.stdout.flush()

    def bench_result(self, result: Any, *, json_out: bool) -> None:
        """A built-in benchmark's result (`cli-ai bench ...`): `name: value`
        lines, which the generic parser reads back, or one JSON object."""
        if json_out:
            self.json(result.__dict__)
        else:
            for line in result.lines():
                self.info(line)

    def confirm(self, question: str) -> bool:
        from rich.prompt import Confirm

        return Confirm.ask(question, console=self.err, default=False)

    def show_command(self, title: str, text: str) -> None:
        self.err.print(f"[bold]{escape(title)}[/]")
        self.err.print(f"  [magenta]{escape(text)}[/]", soft_wrap=True)

    def strategist_used(self, plan) -> None:
        """Say which strategist planned (and which template or model)."""
        if plan.provider == "offline":
            self.note(f"planned by the offline strategist, template {plan.template!r}")
        else:
            self.note(f"planned by the LLM {plan.model} at {plan.base_url}")

    # ------------------------------------------------------------------ validate
    def spec_summary(self, spec, report, command_text: str | None) -> None:
        if self.json_mode:
            return
        from cli_ai.tactician.knobs import describe_range

        title = f"{escape(spec.workload_name)}  [dim]({escape(spec.source or 'spec')})[/]"
        from cli_ai.console.tables import knob_table, show_table

        rows = [(escape(knob.param), escape(knob.type), escape(describe_range(knob, numeric_bools(spec.target))),
                 escape(report.entries[knob.param].range_text()) if knob.param in report.entries else "-")
                for knob in report.knobs]
        show_table(self.out, knob_table(title, ("type", "search range", "safe range"), rows), rows)
        self.out.print(f"target: {escape(spec.target)}   metric: {escape(spec.reward_metric or '-')} "
                       f"({escape(spec.metric_direction)})")
        if command_text:
            self.out.print(f"benchmark: {escape(command_text)}", soft_wrap=True)
        tc = spec.training_config
        budget = tc.budget if tc.budget is not None else "from total_timesteps"
        self.out.print(f"algorithm: {escape(tc.algorithm)}   budget: {escape(budget)}   "
                       f"failure limit: {escape(spec.safety.max_consecutive_failures)}")
        for note in report.notes:
            self.note(note)
        for warning in report.warnings:
            self.warn(warning)

    # ------------------------------------------------------------------ examples
    def examples_table(self, examples: Sequence[Any], where: Any) -> None:
        if self.json_mode:
            self.json([{"name": e.name, "target": e.target, "workload": e.workload, "path": str(e.path)}
                       for e in examples])
            return
        from cli_ai.console.tables import knob_table, show_table

        if not examples:
            self.info("no example specs found (an installation without cli_ai/examples)")
            return
        rows = [(escape(e.name), escape(e.target), escape(e.workload)) for e in examples]
        show_table(self.out, knob_table("Example specs", ("target", "workload"), rows, first="name"), rows)
        self.out.print(f"[dim]in {escape(str(where))}; copy one out with: cli-ai examples copy NAME [DIR][/]",
                       soft_wrap=True)

    # ------------------------------------------------------------------ params
    def params_table(self, rows: Sequence[dict[str, Any]]) -> None:
        if self.json_mode:
            self.json(list(rows))
            return
        from cli_ai.console.tables import fits, vertical

        table = Table(show_lines=False)
        table.add_column("name", no_wrap=True)
        table.add_column("current", overflow="fold")
        table.add_column("safe range", overflow="fold")
        table.add_column("unit", style="dim")
        table.add_column("netns", justify="center")
        table.add_column("description", min_width=30, ratio=1)
        cells = []
        for row in rows:
            current = row["current"]
            shown = "[dim]missing[/]" if current is None else escape(str(current))
            cells.append((escape(row["name"]), shown, escape(row["safe_range"]), escape(row["unit"]),
                          "✓" if row["netns"] else "", escape(row["description"])))
            table.add_row(*cells[-1])
        if fits(self.out, table):
            self.out.print(table)
        else:  # narrow terminal: one block per param, the description whole
            self.out.print(vertical(["name", "current", "safe range", "unit", "netns", "description"], cells))
        self.out.print(f"[dim]{len(rows)} params. 'netns' marks params that are private to a network namespace.[/]")

    # ------------------------------------------------------------------ rollback
    def rollback_report(self, outcome) -> None:
        if getattr(outcome, "discarded", False):
            self.info("journal discarded without restoring")
            return
        if outcome.record is None:
            where = getattr(outcome, "state_dir", None)
            self.info("nothing to roll back: no journal of changed values was found"
                      + (f" in {where} (the state directory; CLI_AI_STATE_DIR sets another)" if where else ""))
            return
        what = "what `cli-ai apply` applied" if outcome.kind == "applied" else "an interrupted run's changes"
        self.info(f"rolling back {what} (PID {outcome.record.pid})")
        for name, (before, original) in outcome.restored.items():
            self.success(f"{name}: {_show(before)} -> {_show(original)}")
        for line in getattr(outcome, "files", []):
            self.success(escape(line))
        if not outcome.failures and not outcome.restored:
            self.info("journal discarded without restoring")
        elif not outcome.failures:
            self.info(f"restored {len(outcome.restored)} value(s); journal removed")
        for line in getattr(outcome, "notes", ()):
            self.note(line)

    # ------------------------------------------------------------------ doctor
    def doctor_report(self, checks: Sequence[tuple[str, bool | None, str]], profile: dict | None = None) -> None:
        if self.json_mode:
            self.json({"checks": [{"check": c, "ok": ok, "detail": d} for c, ok, d in checks], "profile": profile})
            return
        table = Table(show_header=True)
        table.add_column("check")
        table.add_column("", justify="center")
        table.add_column("detail")
        for check, ok, detail in checks:
            mark = "[green]✓[/]" if ok else ("[dim]-[/]" if ok is None else "[red]✗[/]")
            table.add_row(escape(check), mark, escape(detail))
        self.out.print(table)
        if profile:
            self.system_profile(profile)

    def system_profile(self, profile: dict) -> None:
        table = Table(title="system profile", title_justify="left", show_header=False)
        table.add_column("key", style="bold")
        table.add_column("value")
        for key, value in profile.items():
            if isinstance(value, (list, dict)):
                value = json.dumps(value, default=str)
            table.add_row(escape(key), escape(str(value)))
        self.out.print(table)


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    return str(value)
