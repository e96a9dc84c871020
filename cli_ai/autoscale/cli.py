"""`cli-ai autoscale …`: the autoscaling toolkit's commands (seed 002).

    cli-ai autoscale train-sarsa --episodes 100 --max-steps 30 --bins 4 30 4 40 16 18 18 15 20 …
    cli-ai autoscale train-dqn   --episodes 120 --hidden-layers 64 64 --target-tau 0.01 …
    cli-ai autoscale test        --model runs/sarsa_run_<ts>/models/sarsa_final.pkl [--platform local]
    cli-ai autoscale compare     --model … --dqn-model … --agents sarsa dqn reactiveaverage reactivemaximum
    cli-ai autoscale plot        runs/sarsa_run_<ts>/training_metrics.json

Parsing only: the work happens in `cli_ai.autoscale.{train,evaluate,compare,plot}` and
the output in `cli_ai.console.autoscale`. ``--hidden-layers`` and ``--agents`` take
several values after one flag (as in the seed) or a comma-separated list.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import typer

from cli_ai.cli_support import handled, make_console

autoscale_app = typer.Typer(
    name="autoscale",
    help="Autoscaling toolkit: train SARSA(λ) and DQN policies, test them (simulated or on "
    "real local worker processes), compare them with reactive baselines, plot training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# extra values after a multi-value flag (`--agents sarsa dqn`) arrive as extra arguments
_VARIADIC = {"allow_extra_args": True, "ignore_unknown_options": False, "help_option_names": ["-h", "--help"]}


def _console(json_mode: bool = False):
    return make_console(json_mode=json_mode)


def _many(first: Optional[str], extra: List[str], flag: str) -> Optional[List[str]]:
    """Values of a multi-value flag: `--flag a b c` or `--flag a,b,c`."""
    from cli_ai.errors import BadInputError

    if first is None:
        if extra:
            raise BadInputError(f"unexpected argument(s) {' '.join(extra)}; did you mean {flag} {' '.join(extra)}?")
        return None
    values = []
    for item in [first, *extra]:
        values += [v for v in item.replace(",", " ").split() if v]
    return values


def _ints(values: Optional[List[str]], flag: str) -> Optional[List[int]]:
    from cli_ai.errors import BadInputError

    if values is None:
        return None
    try:
        return [int(v) for v in values]
    except ValueError:
        raise BadInputError(f"{flag}: expected whole numbers, got {' '.join(values)}") from None


# ---------------------------------------------------------------------------------- options

EPISODES_HELP = "Number of training episodes."
WORKLOAD = typer.Option(None, "--workload", help="Workload YAML (phases of arrivals); default: the built-in multi-phase workload.")
SEED = typer.Option(None, "--seed", help="Seed of the episodes, the agent and evaluation.")
OUTPUT_DIR = typer.Option(Path("runs"), "--output-dir", help="Base directory of run directories.")
JSON = typer.Option(False, "--json", help="Print the result as one JSON object.")
Bins = Tuple[int, int, int, int, int, int, int, int, int]


def _train_options(**kw):
    from cli_ai.autoscale.train import TrainOptions

    steps = _ints(_many(kw.pop("scale_steps"), [], "--scale-steps"), "--scale-steps")
    workload = kw.pop("workload")
    output_dir = kw.pop("output_dir")
    return TrainOptions(
        scale_steps=tuple(steps) if steps else None,
        workload=str(workload) if workload else None,
        output_dir=str(output_dir),
        **kw,
    )


def _finish_training(console, result) -> None:
    from cli_ai.console.autoscale import training_result
    from cli_ai.errors import EXIT_INTERRUPTED

    training_result(console, result)
    if result.stopped_reason == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


@autoscale_app.command("train-sarsa")
@handled
def train_sarsa_cmd(
    episodes: int = typer.Option(100, "--episodes", help=EPISODES_HELP),
    max_steps: int = typer.Option(30, "--max-steps", help="Cap on steps per episode (episodes end earlier when the workload drains)."),
    step_duration: float = typer.Option(8.0, "--step-duration", help="Simulated seconds per step."),
    observation_window: float = typer.Option(8.0, "--observation-window", help="Seconds of history behind the windowed observations."),
    initial_workers: int = typer.Option(12, "--initial-workers", help="Workers at the start of each episode."),
    min_workers: Optional[int] = typer.Option(None, "--min-workers", help="Fewest workers (default 1)."),
    max_workers: Optional[int] = typer.Option(None, "--max-workers", help="Most workers (default 32)."),
    scale_steps: Optional[str] = typer.Option(None, "--scale-steps", help="Scaling step sizes, e.g. 1 (3 actions) or 1,2 (5 actions)."),
    worker_weight: Optional[float] = typer.Option(None, "--worker-weight", help="Reward weight of the worker cost (default 1.0; a worker costs weight/max-workers per step)."),
    bins: Bins = typer.Option((4, 1, 1, 3, 16, 1, 1, 8, 1), "--bins", help="Nine integers: bins per observation element (1 ignores it)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Learning rate (default 0.03 with traces, 0.1 without)."),
    gamma: float = typer.Option(0.99, "--gamma", help="Discount factor."),
    epsilon: float = typer.Option(1.0, "--epsilon", help="Initial exploration rate."),
    epsilon_min: float = typer.Option(0.05, "--epsilon-min", help="Lowest exploration rate."),
    epsilon_decay: float = typer.Option(0.97, "--epsilon-decay", help="Exploration decay per episode."),
    trace_lambda: float = typer.Option(0.6, "--trace-lambda", help="Eligibility trace decay λ (0 = one-step SARSA)."),
    trace_threshold: float = typer.Option(1e-3, "--trace-threshold", help="Traces below this are pruned."),
    checkpoint_every: int = typer.Option(25, "--checkpoint-every", help="Save (and evaluate) a checkpoint every N episodes; 0 = never."),
    eval_episodes: int = typer.Option(3, "--eval-episodes", help="Greedy evaluation episodes per checkpoint and after training."),
    output_dir: Path = OUTPUT_DIR,
    phase_shuffle: bool = typer.Option(False, "--phase-shuffle", help="Shuffle the phase order each training episode."),
    phase_shuffle_seed: Optional[int] = typer.Option(None, "--phase-shuffle-seed", help="Seed of the phase shuffling."),
    log_interval: int = typer.Option(10, "--log-interval", help="Episodes between summary and trace lines in the log."),
    workload: Optional[Path] = WORKLOAD,
    seed: Optional[int] = SEED,
    json_out: bool = JSON,
) -> None:
    """Train a tabular SARSA(λ) agent; writes <output-dir>/sarsa_run_<timestamp>/."""
    from cli_ai.autoscale.train import SarsaParams, train_sarsa
    from cli_ai.console.autoscale import training_progress

    console = _console(json_out)
    opts = _train_options(
        episodes=episodes, max_steps=max_steps, step_duration=step_duration, observation_window=observation_window,
        initial_workers=initial_workers, min_workers=min_workers, max_workers=max_workers, scale_steps=scale_steps, worker_weight=worker_weight,
        workload=workload, seed=seed, phase_shuffle=phase_shuffle, phase_shuffle_seed=phase_shuffle_seed,
        checkpoint_every=checkpoint_every, eval_episodes=eval_episodes, output_dir=output_dir, log_interval=log_interval,
    )
    params = SarsaParams(
        bins=tuple(bins), alpha=alpha, gamma=gamma, epsilon=epsilon, epsilon_min=epsilon_min,
        epsilon_decay=epsilon_decay, trace_lambda=trace_lambda, trace_threshold=trace_threshold,
    )
    with training_progress(console, episodes, "SARSA(λ)") as progress:
        result = train_sarsa(opts, params, on_episode=progress)
    _finish_training(console, result)


@autoscale_app.command("train-dqn", context_settings=_VARIADIC)
@handled
def train_dqn_cmd(
    ctx: typer.Context,
    episodes: int = typer.Option(120, "--episodes", help=EPISODES_HELP),
    max_steps: int = typer.Option(30, "--max-steps", help="Cap on steps per episode."),
    step_duration: float = typer.Option(8.0, "--step-duration", help="Simulated seconds per step."),
    observation_window: float = typer.Option(8.0, "--observation-window", help="Seconds of history behind the windowed observations."),
    initial_workers: int = typer.Option(12, "--initial-workers", help="Workers at the start of each episode."),
    min_workers: Optional[int] = typer.Option(None, "--min-workers", help="Fewest workers (default 1)."),
    max_workers: Optional[int] = typer.Option(None, "--max-workers", help="Most workers (default 32)."),
    scale_steps: Optional[str] = typer.Option(None, "--scale-steps", help="Scaling step sizes, e.g. 1 or 1,2."),
    worker_weight: Optional[float] = typer.Option(None, "--worker-weight", help="Reward weight of the worker cost (default 1.0; a worker costs weight/max-workers per step)."),
    hidden_layers: Optional[str] = typer.Option(None, "--hidden-layers", help="Hidden layer widths: --hidden-layers 64 64 (default) or 128,128."),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", help="Adam learning rate."),
    gamma: float = typer.Option(0.99, "--gamma", help="Discount factor."),
    replay_capacity: int = typer.Option(50_000, "--replay-capacity", help="Replay buffer size."),
    batch_size: int = typer.Option(64, "--batch-size", help="Minibatch size."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Transitions stored before learning starts (default max(batch, 500))."),
    target_update: int = typer.Option(1, "--target-update", help="Learning steps between target network updates."),
    target_tau: float = typer.Option(0.01, "--target-tau", help="Polyak factor of a target update (1 = hard copy)."),
    grad_clip: float = typer.Option(10.0, "--grad-clip", help="Clip gradients to this global norm (0 = off)."),
    epsilon_start: float = typer.Option(1.0, "--epsilon-start", help="Initial exploration rate."),
    epsilon_end: float = typer.Option(0.05, "--epsilon-end", help="Lowest exploration rate."),
    epsilon_decay: float = typer.Option(0.98, "--epsilon-decay", help="Exploration decay per episode."),
    checkpoint_every: int = typer.Option(25, "--checkpoint-every", help="Save (and evaluate) a checkpoint every N episodes; 0 = never."),
    eval_episodes: int = typer.Option(3, "--eval-episodes", help="Greedy evaluation episodes per checkpoint and after training."),
    output_dir: Path = OUTPUT_DIR,
    phase_shuffle: bool = typer.Option(False, "--phase-shuffle", help="Shuffle the phase order each training episode."),
    phase_shuffle_seed: Optional[int] = typer.Option(None, "--phase-shuffle-seed", help="Seed of the phase shuffling."),
    log_interval: int = typer.Option(10, "--log-interval", help="Episodes between summary lines in the log."),
    workload: Optional[Path] = WORKLOAD,
    seed: Optional[int] = SEED,
    json_out: bool = JSON,
) -> None:
    """Train the lightweight DQN (Double DQN, Polyak targets); writes <output-dir>/dqn_run_<timestamp>/."""
    from cli_ai.autoscale.train import DQNParams, train_dqn
    from cli_ai.console.autoscale import training_progress

    console = _console(json_out)
    hidden = _ints(_many(hidden_layers, list(ctx.args), "--hidden-layers"), "--hidden-layers") or [64, 64]
    opts = _train_options(
        episodes=episodes, max_steps=max_steps, step_duration=step_duration, observation_window=observation_window,
        initial_workers=initial_workers, min_workers=min_workers, max_workers=max_workers, scale_steps=scale_steps, worker_weight=worker_weight,
        workload=workload, seed=seed, phase_shuffle=phase_shuffle, phase_shuffle_seed=phase_shuffle_seed,
        checkpoint_every=checkpoint_every, eval_episodes=eval_episodes, output_dir=output_dir, log_interval=log_interval,
    )
    params = DQNParams(
        hidden_layers=tuple(hidden), learning_rate=learning_rate, gamma=gamma, batch_size=batch_size,
        replay_capacity=replay_capacity, warmup=warmup, target_update=target_update, target_tau=target_tau,
        grad_clip=grad_clip or None, epsilon_start=epsilon_start, epsilon_end=epsilon_end, epsilon_decay=epsilon_decay,
    )
    with training_progress(console, episodes, "DQN") as progress:
        result = train_dqn(opts, params, on_episode=progress)
    _finish_training(console, result)


@autoscale_app.command("test")
@handled
def test_cmd(
    model: str = typer.Option(..., "--model", help="A SARSA .pkl or DQN .pt model (or reactiveaverage / reactivemaximum)."),
    episodes: int = typer.Option(5, "--episodes", help="Greedy episodes to run."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Default: as in training."),
    step_duration: Optional[float] = typer.Option(None, "--step-duration", help="Default: as in training."),
    observation_window: Optional[float] = typer.Option(None, "--observation-window", help="Default: as in training."),
    initial_workers: Optional[int] = typer.Option(None, "--initial-workers", help="Default: as in training."),
    platform: str = typer.Option("simulated", "--platform", help="simulated, or local: real worker processes on this machine."),
    time_scale: Optional[float] = typer.Option(None, "--time-scale", help="local: wall seconds per workload second (default 0.1)."),
    workload: Optional[Path] = typer.Option(None, "--workload", help="Workload YAML; default: the one the model was trained on."),
    seed: int = typer.Option(0, "--seed", help="Episode i uses seed + i."),
    output: Optional[Path] = typer.Option(None, "--output", help="JSON report (default runs/eval_results.json, runs/dqn_eval_results.json for DQN; _1, _2, ... rather than over an earlier one)."),
    json_out: bool = JSON,
) -> None:
    """Greedy roll-outs of a trained model: per-episode summaries and a JSON report."""
    from cli_ai.autoscale.evaluate import run_test
    from cli_ai.console.autoscale import episodes_progress, test_report

    console = _console(json_out)
    env_options = {"max_steps": max_steps, "step_duration": step_duration,
                   "observation_window": observation_window, "initial_workers": initial_workers}
    with episodes_progress(console, episodes, f"test on {platform}") as progress:
        result = run_test(model, episodes=episodes, seed=seed, workload=str(workload) if workload else None,
                          env_options=env_options, platform=platform, time_scale=time_scale,
                          output=output, on_episode=progress)
    test_report(console, result)


@autoscale_app.command("compare", context_settings=_VARIADIC)
@handled
def compare_cmd(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(None, "--model", help="Trained SARSA model (.pkl)."),
    dqn_model: Optional[str] = typer.Option(None, "--dqn-model", help="Trained DQN model (.pt)."),
    agents: Optional[str] = typer.Option(None, "--agents", help="Policies: sarsa dqn reactiveaverage reactivemaximum (default: those available)."),
    episodes: int = typer.Option(1, "--episodes", help="Seeded episodes per policy (episode i uses seed + i)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first episode."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Default: as the models were trained."),
    step_duration: Optional[float] = typer.Option(None, "--step-duration", help="Default: as the models were trained."),
    observation_window: Optional[float] = typer.Option(None, "--observation-window", help="Default: as the models were trained."),
    initial_workers: Optional[int] = typer.Option(None, "--initial-workers", help="Default: as the models were trained."),
    workload: Optional[Path] = typer.Option(None, "--workload", help="Workload YAML; default: the models' (or the built-in one)."),
    output_dir: Path = OUTPUT_DIR,
    baseline_cache: Optional[Path] = typer.Option(None, "--baseline-cache", help="An earlier compare_<timestamp> directory whose baseline results to reuse."),
    plot_only: bool = typer.Option(False, "--plot-only", help="Only redraw the plot of --input-dir (no simulation)."),
    input_dir: Optional[Path] = typer.Option(None, "--input-dir", help="With --plot-only: the compare_<timestamp> directory."),
    json_out: bool = JSON,
) -> None:
    """Run SARSA, DQN and the reactive baselines on the same seeded episodes; tables, logs, one plot."""
    from cli_ai.autoscale import compare
    from cli_ai.console.autoscale import compare_report, comparison_table, episodes_progress, plot_written
    from cli_ai.errors import BadInputError

    console = _console(json_out)
    names = _many(agents, list(ctx.args), "--agents")
    if plot_only:
        if input_dir is None:
            raise BadInputError("--plot-only needs --input-dir DIR (a compare_<timestamp> directory)")
        path = compare.draw(input_dir, names)
        data = compare.load_results(input_dir)
        chosen = names or data["agents"]
        if not console.json_mode:
            comparison_table(console, {n: data["results"][n] for n in compare.check_agents(chosen)},
                             title=f"policy comparison ({input_dir})")
        plot_written(console, path)
        return
    if input_dir is not None:
        raise BadInputError("--input-dir is for --plot-only; to reuse baselines use --baseline-cache DIR")
    planned = compare.check_agents(names) if names else compare.default_agents(model, dqn_model)
    env_options = {"max_steps": max_steps, "step_duration": step_duration,
                   "observation_window": observation_window, "initial_workers": initial_workers}
    with episodes_progress(console, episodes * len(planned), "compare") as progress:
        result = compare.run_compare(
            agents=planned, model=model, dqn_model=dqn_model, episodes=episodes, seed=seed, output_dir=output_dir,
            baseline_cache=baseline_cache, workload=str(workload) if workload else None, env_options=env_options,
            on_episode=progress,
        )
    compare_report(console, result)


@autoscale_app.command("plot")
@handled
def plot_cmd(
    metrics: Path = typer.Argument(..., help="training_metrics.json or logs/training.log of a run (or the run directory)."),
    output: Optional[Path] = typer.Option(None, "--output", help="PNG to write (default: <run>/plots/training_curves.png)."),
    evaluation: Optional[Path] = typer.Option(None, "--evaluation", help="evaluation_metrics.json to overlay (default: the run's, if present)."),
    json_out: bool = JSON,
) -> None:
    """Redraw training curves, with the checkpoint evaluations' mean ± 1σ overlaid."""
    from cli_ai.autoscale.plot import (
        default_evaluation_path,
        default_plot_path,
        load_evaluations,
        load_training_metrics,
        plot_training_curves,
    )
    from cli_ai.console.autoscale import plot_written

    console = _console(json_out)
    episodes = load_training_metrics(metrics)
    evals = load_evaluations(evaluation if evaluation is not None else default_evaluation_path(metrics))
    out = output or default_plot_path(metrics)
    plot_training_curves(episodes, evals, out, title=f"training curves ({metrics})")
    plot_written(console, out)
