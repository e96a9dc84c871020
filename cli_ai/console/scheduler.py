"""Rendering of `cli-ai scheduler compare`: one row per routing policy over the
same seeded traffic, the best p95 marked, then where the plot and files went."""

from __future__ import annotations

from typing import Any

from cli_ai.console.text import escape
from rich.table import Table

from cli_ai.console import Console


def _s(ms: float) -> str:
    return f"{ms / 1000.0:.2f}"


def scheduler_comparison(console: Console, result: dict[str, Any]) -> None:
    """The comparison table (or the whole result as JSON in --json mode)."""
    if console.json_mode:
        console.json(result)
        return
    policies = result["policies"]
    replicas = ", ".join(f"{r['name']} x{r['speed']:g}" for r in result["replicas"])
    table = Table(title=escape(result["workload"]), title_justify="left")
    table.caption = (
        f"{result['episodes']} episode(s) x {result['requests_per_episode']} requests, seed {result['seed']}; "
        "latencies in s; req/s: finished requests per second; imbal.: mean std of the replicas' drain times (s)"
    )
    table.caption_justify = "left"
    table.add_column("policy", no_wrap=True)
    for column in ("mean", "p50", "p95", "p99", "req/s", "imbal.", "return"):
        table.add_column(column, justify="right", no_wrap=True)
    best = result.get("best_p95")
    for name, row in policies.items():
        mark = "[bold green]" if name == best else ""
        end = "[/]" if mark else ""
        table.add_row(
            f"{mark}{escape(name)}{end}",
            _s(row["mean_latency_ms"]),
            _s(row["p50_latency_ms"]),
            f"{mark}{_s(row['p95_latency_ms'])}{end}",
            _s(row["p99_latency_ms"]),
            f"{row['throughput']:.2f}",
            f"{row['imbalance_s']:.2f}",
            f"{row['reward']:.1f}",
        )
    console.out.print(table)
    console.out.print(f"replicas: {escape(replicas)}")
    if best is not None:
        console.out.print(f"best p95 latency: [bold]{escape(best)}[/] ({_s(policies[best]['p95_latency_ms'])} s)")
    if result.get("model"):
        trained = f", trained here for {result['trained_steps']} steps" if result.get("trained_steps") else ""
        console.out.print(f"model: {escape(result['model'])}{trained}")
    if result.get("plot"):
        console.out.print(f"plot: {escape(result['plot'])}")
    if result.get("json"):
        console.out.print(f"result: {escape(result['json'])}")
