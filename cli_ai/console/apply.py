"""Rendering for `cli-ai apply`."""

from __future__ import annotations

from cli_ai.console.text import escape
from rich.table import Table

from cli_ai.console import Console


def _v(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def apply_screen(console: Console, plan) -> None:
    table = Table(title=f"Apply the best configuration of {escape(str(plan.result.get('workload')))}", title_justify="left")
    table.add_column("param")
    table.add_column("current")
    table.add_column("new")
    for name, value in plan.values.items():
        table.add_row(escape(name), escape(_v(plan.current.get(name, "-"))), escape(_v(value)))
    console.err.print(table)
    if plan.persist_path is not None:
        console.err.print(f"and write {escape(str(plan.persist_path))} so the values survive a reboot")


def applied(console: Console, plan) -> None:
    for name, value in plan.values.items():
        console.success(f"{name} = {_v(value)}")
    if plan.persist_path is not None:
        console.success(f"wrote {plan.persist_path}")
    console.info("undo with: cli-ai rollback")
