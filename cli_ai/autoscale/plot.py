"""Plots of the autoscaling toolkit: training curves and policy comparisons.

Figures are built with `matplotlib.figure.Figure` directly (no pyplot, no global
state, no display needed) and saved as PNG; the functions return the Figure so tests
can inspect axes, labels and legends.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from cli_ai.errors import BadInputError

_KV = re.compile(r"(\w+)=(\S+)")


# --------------------------------------------------------------------------- loading


def load_training_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Episode metrics from ``training_metrics.json`` or ``logs/training.log``."""
    from cli_ai.results import read_json

    p = Path(path)
    if p.is_dir():
        for candidate in (p / "training_metrics.json", p / "logs" / "training.log"):
            if candidate.exists():
                p = candidate
                break
        else:
            raise BadInputError(f"{path}: holds neither training_metrics.json nor logs/training.log")
    if not p.exists():
        raise BadInputError(f"{p}: no such file; give training_metrics.json or logs/training.log of a run")
    if p.suffix == ".json":
        data = read_json(p)
        episodes = data.get("episodes") if isinstance(data, Mapping) else data
        if not isinstance(episodes, list):
            raise BadInputError(f"{p}: expected an 'episodes' list of episode metrics")
        return [e for e in episodes if isinstance(e, Mapping) and "total_reward" in e]
    episodes = []
    from cli_ai.core.files import read_untrusted_text

    for line in read_untrusted_text(p, "training log").splitlines():
        if " episode=" not in line or "total_reward=" not in line:
            continue
        row: dict[str, Any] = {}
        for key, value in _KV.findall(line):
            if key == "episode":
                value = value.split("/")[0]
            try:
                row[key] = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                row[key] = value
        episodes.append(row)
    if not episodes:
        raise BadInputError(f"{p}: no episode lines (episode=… total_reward=…) found")
    return episodes


def load_evaluations(path: str | Path | None) -> list[dict[str, Any]]:
    if path is None:
        return []
    from cli_ai.results import read_json

    data = read_json(Path(path))
    evals = data.get("evaluations") if isinstance(data, Mapping) else data
    if not isinstance(evals, list):
        raise BadInputError(f"{path}: expected an 'evaluations' list")
    return [e for e in evals if isinstance(e, Mapping) and "episode" in e]


def default_evaluation_path(metrics_path: str | Path) -> Path | None:
    """evaluation_metrics.json of the run that `metrics_path` belongs to, if present."""
    p = Path(metrics_path)
    run = p if p.is_dir() else (p.parent.parent if p.parent.name == "logs" else p.parent)
    candidate = run / "evaluation_metrics.json"
    return candidate if candidate.exists() else None


def default_plot_path(metrics_path: str | Path) -> Path:
    p = Path(metrics_path)
    run = p if p.is_dir() else (p.parent.parent if p.parent.name == "logs" else p.parent)
    return run / "plots" / "training_curves.png"


# --------------------------------------------------------------------------- helpers


def _figure(rows: int, cols: int, size: tuple[float, float]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    # fixed spacing: constrained layout costs seconds per figure
    fig.subplots_adjust(left=0.07, right=0.93, bottom=0.07, top=0.92, wspace=0.32, hspace=0.42)
    return fig, axes


def _moving_average(values: Sequence[float], window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return v
    window = max(1, min(window, v.size))
    kernel = np.ones(window) / window
    head = np.array([v[: i + 1].mean() for i in range(window - 1)])
    body = np.convolve(v, kernel, mode="valid")
    return np.concatenate([head, body]) if head.size else body


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i, r in enumerate(rows):
        v = r.get(key)
        if v is None:
            continue
        xs.append(r.get("episode", i + 1))
        ys.append(float(v))
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def _save(fig, output: str | Path) -> Path:
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


# --------------------------------------------------------------------------- training curves


def plot_training_curves(
    episodes: Sequence[Mapping[str, Any]],
    evaluations: Sequence[Mapping[str, Any]] = (),
    output: str | Path | None = None,
    *,
    title: str | None = None,
):
    """Reward, QoS, workers and exploration per episode; checkpoint evaluations (mean ± 1σ)
    overlaid on the reward and QoS panels. Saves a PNG when `output` is given."""
    if not episodes:
        raise BadInputError("no episodes to plot")
    fig, axes = _figure(2, 2, (12, 8))
    window = max(1, min(10, len(episodes) // 5 or 1))
    evals = [e for e in evaluations if e.get("reward_mean") is not None]

    ax = axes[0][0]
    x, y = _series(episodes, "total_reward")
    ax.plot(x, y, color="tab:blue", alpha=0.35, label="episode reward")
    ax.plot(x, _moving_average(y, window), color="tab:blue", label=f"moving average ({window})")
    if evals:
        ex = [e["episode"] for e in evals]
        ax.errorbar(ex, [e["reward_mean"] for e in evals], yerr=[e.get("reward_std", 0.0) for e in evals],
                    fmt="o", color="tab:red", capsize=4, label="evaluation mean ± 1σ")
    ax.set_xlabel("episode")
    ax.set_ylabel("total reward")
    ax.set_title("reward")
    ax.legend(loc="best", fontsize="small")

    ax = axes[0][1]
    for key, color, label in (("mean_qos", "tab:green", "mean QoS (per step)"), ("final_qos", "tab:olive", "final QoS (all tasks)")):
        x, y = _series(episodes, key)
        if y.size:
            ax.plot(x, y, color=color, alpha=0.8, label=label)
    if evals and any(e.get("final_qos_mean") is not None for e in evals):
        ex = [e["episode"] for e in evals if e.get("final_qos_mean") is not None]
        ax.errorbar(ex, [e["final_qos_mean"] for e in evals if e.get("final_qos_mean") is not None],
                    yerr=[e.get("final_qos_std", 0.0) for e in evals if e.get("final_qos_mean") is not None],
                    fmt="s", color="tab:red", capsize=4, label="evaluation final QoS ± 1σ")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("episode")
    ax.set_ylabel("QoS (on-time share)")
    ax.set_title("quality of service")
    ax.legend(loc="best", fontsize="small")

    ax = axes[1][0]
    for key, color, label in (("mean_workers", "tab:purple", "mean workers"), ("max_workers", "tab:gray", "max workers")):
        x, y = _series(episodes, key)
        if y.size:
            ax.plot(x, y, color=color, label=label)
    ax.set_xlabel("episode")
    ax.set_ylabel("workers")
    ax.set_title("workers")
    ax.legend(loc="best", fontsize="small")

    ax = axes[1][1]
    x, y = _series(episodes, "epsilon")
    handles = []
    if y.size:
        handles += ax.plot(x, y, color="tab:orange", label="epsilon")
    ax.set_xlabel("episode")
    ax.set_ylabel("epsilon")
    x2, y2 = _series(episodes, "mean_loss")
    if y2.size:
        twin = ax.twinx()
        handles += twin.plot(x2, y2, color="tab:brown", alpha=0.7, label="mean loss")
        twin.set_ylabel("mean TD loss")
        ax.set_title("exploration and loss")
    else:
        xs, ys = _series(episodes, "scaling_actions")
        if ys.size:
            twin = ax.twinx()
            handles += twin.plot(xs, ys, color="tab:cyan", alpha=0.7, label="scaling actions")
            twin.set_ylabel("scaling actions per episode")
        ax.set_title("exploration and scaling")
    if handles:
        ax.legend(handles, [h.get_label() for h in handles], loc="best", fontsize="small")
    if title:
        fig.suptitle(title)
    if output is not None:
        _save(fig, output)
    return fig


# --------------------------------------------------------------------------- comparison

_COLORS = {"sarsa": "tab:blue", "dqn": "tab:orange", "reactiveaverage": "tab:green", "reactivemaximum": "tab:red"}


def plot_comparison(
    traces: Mapping[str, Sequence[Mapping[str, Any]]],
    aggregates: Mapping[str, Mapping[str, Any]],
    output: str | Path | None = None,
    *,
    title: str | None = None,
):
    """One shared figure: per-step workers, QoS, queue and arrival rate of one episode for
    every policy, and mean ± std of total reward and QoS per worker over all episodes."""
    if not traces and not aggregates:
        raise BadInputError("nothing to plot: no agents")
    fig, axes = _figure(3, 2, (13, 11))
    panels = (
        (axes[0][0], "workers", "workers", "workers per step"),
        (axes[0][1], "qos", "QoS of the step", "QoS per step"),
        (axes[1][0], "queued", "queued tasks", "queue length"),
        (axes[1][1], "arrival_rate", "tasks / s", "observed arrival rate"),
    )
    for ax, key, ylabel, label in panels:
        for name, rows in traces.items():
            xs = [r["time"] for r in rows]
            ys = [r[key] for r in rows]
            if key == "arrival_rate":  # the workload's, identical for every policy on the same seed
                ax.plot(xs, ys, "--", color="black", label="arrival rate (same seed for every policy)")
                break
            ax.plot(xs, ys, color=_COLORS.get(name), label=name, drawstyle="steps-post" if key == "workers" else "default")
        ax.set_xlabel("time (s)")
        ax.set_ylabel(ylabel)
        ax.set_title(label + " (first episode)")
        if traces:
            ax.legend(loc="best", fontsize="small")
    names = list(aggregates)
    for ax, key, ylabel in ((axes[2][0], "total_reward", "total reward"), (axes[2][1], "qos_per_worker", "mean QoS per worker")):
        means = [aggregates[n].get(f"{key}_mean", np.nan) for n in names]
        stds = [aggregates[n].get(f"{key}_std", 0.0) for n in names]
        bars = ax.bar(range(len(names)), means, yerr=stds, capsize=5,
                      color=[_COLORS.get(n, "tab:gray") for n in names], label="mean ± std")
        ax.set_xticks(range(len(names)), names, rotation=15)
        ax.set_xlabel("policy")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel} over all episodes")
        ax.legend(handles=[bars], loc="best", fontsize="small")
    if title:
        fig.suptitle(title)
    if output is not None:
        _save(fig, output)
    return fig
