"""Rendering of `cli-ai scheduler compare`: one row per routing policy over the
same seeded traffic, the best p95 marked, then where the plot and files went."""

from __future__ import annotations

from typing import Any

from cli_ai.console.text import escape
from rich.table import Table

from cli_ai.console import Console


def _ms(ms: float) -> str:
    """A latency in milliseconds, the unit of the spec's metric (p95_latency_ms)."""
    return f"{ms:,.0f}" if abs(ms) >= 10 else f"{ms:.2g}"


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
        "latencies in ms; req/s: finished requests per second; imbal.: mean std of the replicas' drain times (s)"
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
            _ms(row["mean_latency_ms"]),
            _ms(row["p50_latency_ms"]),
            f"{mark}{_ms(row['p95_latency_ms'])}{end}",
            _ms(row["p99_latency_ms"]),
            f"{row['throughput']:.2f}",
            f"{row['imbalance_s']:.2f}",
            f"{row['reward']:.1f}",
        )
    console.out.print(table)
    console.out.print(f"replicas: {escape(replicas)}")
    if best is not None:
        console.out.print(f"best p95 latency: [bold]{escape(best)}[/] ({_ms(policies[best]['p95_latency_ms'])} ms)")
    if result.get("model"):
        trained = f", trained here for {result['trained_steps']} steps" if result.get("trained_steps") else ""
        console.out.print(f"model: {escape(result['model'])}{trained}")
    if result.get("plot"):
        console.out.print(f"plot: {escape(result['plot'])}")
    if result.get("json"):
        console.out.print(f"result: {escape(result['json'])}")
