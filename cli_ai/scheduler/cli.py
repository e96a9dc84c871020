"""`cli-ai scheduler ...`: parse the arguments and delegate to
`cli_ai.scheduler.compare`; the console renders. Heavy imports happen inside
the command so that `cli-ai --help` stays instant.

The main app mounts it with `app.add_typer(scheduler_app, name="scheduler")`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from cli_ai.cli_support import handled, make_console

scheduler_app = typer.Typer(
    help="The request-scheduling target: compare routing policies (PPO and baselines) on seeded traffic.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@scheduler_app.callback()
def _group() -> None:
    """The request-scheduling target: compare routing policies (PPO and baselines) on seeded traffic."""


@scheduler_app.command("compare")
@handled
def compare(
    spec: Optional[Path] = typer.Argument(
        None, help="A scheduler spec (target \"scheduler\"); default: examples/scheduler.json.", show_default=False
    ),
    model: Optional[Path] = typer.Option(None, "--model", help="A trained PPO model (.zip) to compare with the baselines."),
    episodes: int = typer.Option(5, "--episodes", min=1, help="Episodes of seeded traffic per policy."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the traffic (episode e uses seed + e); training uses the spec's training_config.seed, else this."),
    output_dir: Optional[Path] = typer.Option(
        None, "--output-dir", help="Where the plot, the JSON result and a trained model go (default runs/scheduler-compare-<time>)."
    ),
    train_steps: int = typer.Option(
        0, "--train-steps", min=0, help="Without --model, train PPO for this many steps first (0: baselines only)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Round-robin, least-outstanding, least-work, random (and PPO) on the same traffic:
    mean/p95 latency, throughput, imbalance, plus a plot."""
    from cli_ai.console.scheduler import scheduler_comparison
    from cli_ai.scheduler.compare import compare_schedulers

    console = make_console(json_mode=json_out)
    if output_dir is None:
        output_dir = Path("runs") / time.strftime("scheduler-compare-%Y%m%d-%H%M%S")
    result = compare_schedulers(
        spec, model, episodes, seed, output_dir=output_dir, train_steps=train_steps, note=console.note
    )
    scheduler_comparison(console, result)
