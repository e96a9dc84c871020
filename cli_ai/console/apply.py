"""Rendering for `cli-ai apply`."""

from __future__ import annotations

from cli_ai.console.text import escape
from rich.table import Table

from cli_ai.console import Console


def _v(value, plan=None, name: str = "") -> str:
    if plan is not None and value != "-":
        from cli_ai.targets import TARGETS

        target = TARGETS.get(str(plan.result.get("target", "sysctl")))
        text = target.value_text(name, value) if target is not None else None
        if text is not None:
            return text
    return " ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def apply_screen(console: Console, plan) -> None:
    table = Table(title=f"Apply the best configuration of {escape(str(plan.result.get('workload')))}", title_justify="left")
    table.add_column("param")
    table.add_column("current")
    table.add_column("new")
    for name, value in plan.values.items():
        table.add_row(escape(name), escape(_v(plan.current.get(name, "-"), plan, name)), escape(_v(value, plan, name)))
    console.err.print(table)
    if plan.backend is not None:
        console.err.print(f"on {escape(_where(plan.backend))} (ALTER SYSTEM, journaled)")
    if plan.persist_path is not None:
        console.err.print(f"and write {escape(str(plan.persist_path))} so the values survive a reboot")


def applied(console: Console, plan) -> None:
    for name, value in plan.values.items():
        console.success(f"{name} = {_v(value, plan, name)}")
    pending = getattr(plan.backend, "pending", None)
    if pending:
        console.info(f"{', '.join(pending)}: written, and take effect when you restart the server")
    if plan.persist_path is not None:
        console.success(f"wrote {plan.persist_path}")
    console.info("undo with: cli-ai rollback")


def _where(backend) -> str:
    d = backend.describe().get("config", {})
    return " ".join(f"{k}={d[k]}" for k in ("host", "port", "user", "dbname") if d.get(k) not in (None, ""))
