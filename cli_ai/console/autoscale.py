"""Rendering of `cli-ai autoscale …`: progress bars while training, evaluating and
comparing, and tables of episode summaries and aggregated comparisons.

Every function takes a `cli_ai.console.Console`; progress goes to stderr, results to
stdout (one JSON object instead with --json)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

from cli_ai.console.text import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cli_ai.console.tables import show_table


def _progress(console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console.err,
        disable=console.quiet or console.json_mode,
        transient=False,
    )


@contextmanager
def training_progress(console, total: int, title: str) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A progress bar over training episodes; yields the per-episode callback."""
    with _progress(console) as progress:
        task = progress.add_task(title, total=total, status="")

        def update(summary: dict[str, Any]) -> None:
            status = (
                f"reward {summary['total_reward']:7.2f}  QoS {summary['final_qos']:.3f}  "
                f"workers {summary['mean_workers']:5.2f}  ε {summary.get('epsilon', 0.0):.3f}"
            )
            if summary.get("mean_loss") is not None:
                status += f"  loss {summary['mean_loss']:.4f}"
            progress.update(task, advance=1, status=status)

        yield update


@contextmanager
def episodes_progress(console, total: int, title: str) -> Iterator[Callable[..., None]]:
    """A progress bar over evaluation or comparison episodes; the callback takes an
    optional agent name and the episode summary."""
    with _progress(console) as progress:
        task = progress.add_task(title, total=total, status="")

        def update(*args) -> None:
            name, summary = (args[0], args[1]) if len(args) == 2 else (None, args[0])
            status = f"reward {summary['total_reward']:7.2f}  QoS {summary['final_qos']:.3f}"
            progress.update(task, advance=1, status=f"{name + ': ' if name else ''}{status}")

        yield update


def _pm(agg: Mapping[str, Any], key: str, fmt: str = "{:.3f}") -> str:
    mean = agg.get(f"{key}_mean")
    if mean is None:
        return "-"
    std = agg.get(f"{key}_std", 0.0) or 0.0
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


def training_result(console, result) -> None:
    """Where the run went and how the final evaluation looked (`result` is
    the `TuningResult` of a toolkit training run)."""
    extra = result.extra
    interrupted = result.stopped_reason == "interrupted"
    evaluation = extra.get("evaluation")
    if console.json_mode:
        console.json({
            "run_dir": str(result.run_dir),
            "model": str(result.model_path),
            "episodes_completed": extra["episodes"],
            "episodes_planned": extra["episodes_planned"],
            "interrupted": interrupted,
            "wall_time_s": round(result.duration_s, 2),
            "final_evaluation": {k: v for k, v in (evaluation or {}).items() if k != "per_episode"},
        })
        return
    if interrupted:
        console.warn(
            f"interrupted after {extra['episodes']} of {extra['episodes_planned']} episodes; "
            f"saved {result.model_path}"
        )
    table = Table(title=f"{result.algorithm.upper()} training", title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    table.add_row("episodes", f"{extra['episodes']} of {extra['episodes_planned']}")
    table.add_row("wall time", f"{result.duration_s:.1f} s")
    metrics = extra.get("training_episodes") or []
    if metrics:
        last = metrics[-min(10, len(metrics)):]
        mean = sum(m["total_reward"] for m in last) / len(last)
        table.add_row(f"training reward (last {len(last)})", f"{mean:.3f}")
    ev = evaluation
    if ev:
        table.add_row(f"evaluation ({ev['episodes']} greedy episodes)", "")
        table.add_row("  total reward", _pm(ev, "total_reward"))
        table.add_row("  final QoS", _pm(ev, "final_qos"))
        table.add_row("  mean workers", _pm(ev, "mean_workers", "{:.2f}"))
        table.add_row("  scaling actions", _pm(ev, "scaling_actions", "{:.1f}"))
    console.out.print(table)
    # the paths the next command needs: whole, on their own lines (a terminal wraps them, copy-paste keeps them)
    console.out.print(f"run directory: {escape(str(result.run_dir))}", soft_wrap=True)
    console.out.print(f"model: {escape(str(result.model_path))}", soft_wrap=True)
    if extra.get("plot"):
        console.out.print(f"plot: {escape(str(extra['plot']))}", soft_wrap=True)


def episode_table(console, summaries: Sequence[Mapping[str, Any]], *, title: str) -> None:
    """One row per episode with the seed's summary metrics."""
    if console.json_mode:
        return
    # two-line headers and no outer edge: ten columns of numbers fit 80 columns
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    headers = ("ep.", "seed", "total\nreward", "mean\nreward", "mean\nQoS", "final\nQoS", "mean\nworkers",
               "max\nworkers", "scale\nacts", "no-op\nacts")
    for col in headers:
        table.add_column(col, justify="right")
    rows = []
    for s in summaries:
        rows.append((
            str(s.get("episode", "")),
            str(s.get("seed", "")),
            f"{s['total_reward']:.3f}",
            f"{s['mean_reward']:.3f}",
            f"{s['mean_qos']:.3f}",
            f"{s['final_qos']:.3f}",
            f"{s['mean_workers']:.2f}",
            str(s["max_workers"]),
            str(s["scaling_actions"]),
            str(s["noop_actions"]),
        ))
        table.add_row(*rows[-1])
    show_table(console.out, table, rows)


def test_report(console, result) -> None:
    for note in result.notes:
        console.note(note)
    report = result.report
    if console.json_mode:
        console.json({k: v for k, v in report.items() if k != "env_config"} | {"output": str(result.output)})
        return
    platform = report["platform"]["platform"]
    episode_table(console, report["per_episode"], title=f"{report['algorithm']} on {platform}: greedy roll-outs")
    agg = report["aggregate"]
    console.out.print(
        f"mean ± std over {report['episodes']} episode(s): reward {_pm(agg, 'total_reward')}, "
        f"final QoS {_pm(agg, 'final_qos')}, workers {_pm(agg, 'mean_workers', '{:.2f}')}"
    )
    console.success(f"report written to {result.output}")


def comparison_table(console, results: Mapping[str, Mapping[str, Any]], *, title: str) -> None:
    """Mean ± std per policy: reward, QoS, workers, QoS per worker, scaling and no-op counts."""
    table = Table(title=title, title_justify="left")
    table.add_column("policy", no_wrap=True, min_width=max([6, *map(len, results)]))
    for col in ("total reward", "mean QoS", "final QoS", "mean workers", "QoS / worker", "scaling", "no-op"):
        table.add_column(col, justify="right")
    rows = []
    for name, res in results.items():
        agg = res["aggregate"]
        rows.append((
            escape(name),
            _pm(agg, "total_reward", "{:.2f}"),
            _pm(agg, "mean_qos"),
            _pm(agg, "final_qos"),
            _pm(agg, "mean_workers", "{:.2f}"),
            _pm(agg, "qos_per_worker", "{:.4f}"),
            _pm(agg, "scaling_actions", "{:.1f}"),
            _pm(agg, "noop_actions", "{:.1f}"),
        ))
        table.add_row(*rows[-1])
    show_table(console.out, table, rows)


def compare_report(console, result) -> None:
    if console.json_mode:
        console.json({
            "directory": str(result.directory),
            "plot": str(result.plot) if result.plot else None,
            "reused": result.reused,
            "aggregate": {n: r["aggregate"] for n, r in result.results.items()},
        })
        return
    comparison_table(console, result.results, title="policy comparison (same seeded episodes)")
    if result.reused:
        console.note(f"reused from the baseline cache: {', '.join(result.reused)}")
    console.success(f"results in {result.directory}")
    if result.plot:
        console.info(f"plot: {result.plot}")


def plot_written(console, path, *, what: str = "plot") -> None:
    if console.json_mode:
        console.json({what: str(path)})
        return
    console.success(f"{what} written to {path}")
