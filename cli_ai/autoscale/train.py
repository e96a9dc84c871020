"""Training loops for SARSA(λ) and the lightweight DQN, with the seed's run directory.

Both loops: a training env (phase shuffling if asked), an evaluation env (never
shuffled, fixed seeds), one line per episode in ``logs/training.log``, checkpoints every
``checkpoint_every`` episodes (each followed by ``eval_episodes`` greedy roll-outs when
that is above 0), the final model and a final evaluation, ``training_metrics.json``,
``evaluation_metrics.json`` and ``plots/training_curves.png``. Ctrl+C stops training
after saving ``models/<algo>_interrupt.<ext>`` and the metrics so far. The
result is the engine's `TuningResult` (as for `cli-ai tune`): its
`stopped_reason` is "interrupted" then, and `extra` holds the episodes
completed and planned, each training episode's summary, the checkpoint
evaluations and the final one.
Nothing here prints: progress goes to the `on_episode` callback.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from cli_ai.autoscale.episodes import evaluate, evaluation_seeds
from cli_ai.autoscale.rundir import RunDir, close_logger, format_kv
from cli_ai.autoscale.settings import build_env
from cli_ai.results import TuningResult, write_json
from cli_ai.tactician.agents.episodic_params import DQNParams, SarsaParams, make_dqn, make_sarsa
from cli_ai.tactician.envs.autoscaling_stats import AutoscalingStats
from cli_ai.tactician.episodes import EpisodeTracker


@dataclass
class TrainOptions:
    episodes: int = 100
    max_steps: int = 30
    step_duration: float = 8.0
    observation_window: float = 8.0
    initial_workers: int = 12
    min_workers: int | None = None
    max_workers: int | None = None
    scale_steps: tuple[int, ...] | None = None
    worker_weight: float | None = None  # reward weight of the worker cost (default 1.0)
    workload: str | None = None
    seed: int | None = None
    phase_shuffle: bool = False
    phase_shuffle_seed: int | None = None
    checkpoint_every: int = 0
    eval_episodes: int = 3
    output_dir: str = "runs"
    log_interval: int = 10

    def env_overrides(self) -> dict[str, Any]:
        return {
            "max_steps": self.max_steps,
            "step_duration": self.step_duration,
            "observation_window": self.observation_window,
            "initial_workers": self.initial_workers,
            "min_workers": self.min_workers,
            "max_workers": self.max_workers,
            "scale_steps": self.scale_steps,
            "reward": {"worker_weight": self.worker_weight} if self.worker_weight is not None else None,
        }


def _validate(opts: TrainOptions) -> None:
    from cli_ai.errors import BadInputError

    problems = []
    if opts.episodes < 1:
        problems.append(f"--episodes: {opts.episodes} must be at least 1")
    if opts.checkpoint_every < 0:
        problems.append(f"--checkpoint-every: {opts.checkpoint_every} must be at least 0")
    if opts.eval_episodes < 0:
        problems.append(f"--eval-episodes: {opts.eval_episodes} must be at least 0")
    if opts.log_interval < 1:
        problems.append(f"--log-interval: {opts.log_interval} must be at least 1")
    if problems:
        raise BadInputError(problems[0], problems=problems)


def _envs(opts: TrainOptions):
    train_env = build_env(
        workload=opts.workload,
        phase_shuffle=opts.phase_shuffle,
        phase_shuffle_seed=opts.phase_shuffle_seed,
        **opts.env_overrides(),
    )
    eval_env = build_env(workload=opts.workload, phase_shuffle=False, **opts.env_overrides())
    return train_env, eval_env


class _Run:
    """Shared bookkeeping of both training loops."""

    def __init__(self, algorithm: str, opts: TrainOptions, params: Any, train_env, on_episode):
        self.train_env = train_env
        self.opts = opts
        self.run = RunDir.create(opts.output_dir, algorithm)
        self.log = self.run.logger()
        self.metrics: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, Any]] = []
        self.on_episode = on_episode
        self.started = time.perf_counter()
        self.config = {
            "algorithm": algorithm,
            "options": asdict(opts),
            "params": asdict(params),
            "env": train_env.env_config(),
        }
        write_json(self.run.path / "config.json", self.config)
        self.log.info("run %s: %s", self.run.path.name, format_kv({k: v for k, v in asdict(opts).items() if v is not None}))
        self.log.info("params: %s", format_kv({k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(params).items()}))
        self.log.info("workload %s: %d phases, %.0f s; observation bounds %s", train_env.workload.name,
                      len(train_env.workload.phases), train_env.workload.duration,
                      [round(float(x), 3) for x in train_env.observation_space.high])

    def episode_done(self, summary: dict[str, Any]) -> None:
        self.metrics.append(summary)
        keys = ("total_reward", "mean_reward", "mean_qos", "final_qos", "mean_workers", "max_workers",
                "processed_tasks", "qos_violations", "unfinished_tasks", "scaling_actions", "noop_actions",
                "epsilon", "mean_loss", "steps")
        line = {"episode": f"{summary['episode']}/{self.opts.episodes}"}
        line.update({k: summary[k] for k in keys if summary.get(k) is not None})
        self.log.info(format_kv(line))
        ep = summary["episode"]
        if ep % self.opts.log_interval == 0:
            recent = self.metrics[-self.opts.log_interval:]
            avg = {k: sum(m[k] for m in recent) / len(recent) for k in ("total_reward", "mean_qos", "mean_workers")}
            self.log.info("last %d episodes: %s", len(recent), format_kv({f"avg_{k}": v for k, v in avg.items()}))
        if self.on_episode is not None:
            self.on_episode(summary)

    def evaluation(self, eval_env, agent, episode: int, model: Path, *, final: bool = False) -> None:
        seeds = evaluation_seeds(self.opts.seed, self.opts.eval_episodes)
        result = evaluate(eval_env, agent, seeds)
        entry = {"episode": episode, "checkpoint": str(model.relative_to(self.run.path)), "final": final, **result}
        self.evaluations.append(entry)
        self.log.info(
            "evaluation after episode %d (%d greedy episodes): %s", episode, len(seeds),
            format_kv({k: result[k] for k in ("reward_mean", "reward_std", "final_qos_mean", "final_qos_std",
                                               "scaling_actions_mean", "max_workers_mean")}),
        )
        write_json(self.run.evaluation_metrics, {"evaluations": self.evaluations})

    def after_episode(self, agent, ep: int, summary: dict[str, Any], eval_env) -> None:
        """Record the episode; checkpoint (and evaluate) every checkpoint_every episodes."""
        opts = self.opts
        agent.metadata["trained_episodes"] = ep
        self.episode_done(summary)
        if opts.checkpoint_every and ep % opts.checkpoint_every == 0 and ep < opts.episodes:
            path = agent.save(self.run.checkpoint(ep))
            if opts.eval_episodes > 0:
                self.evaluation(eval_env, agent, ep, path)

    def wrap_up(self, agent, eval_env, *, interrupted: bool) -> TuningResult:
        """The final model and evaluation (unless interrupted), the artefacts, closed envs."""
        if not interrupted:
            interrupted = _final(self, agent, eval_env)
        result = self.finish(agent, interrupted=interrupted)
        self.train_env.close()
        eval_env.close()
        return result

    def finish(self, agent, *, interrupted: bool) -> TuningResult:
        run = self.run
        if interrupted:
            model = agent.save(run.model("interrupt"))
            self.log.warning("interrupted: %d of %d episodes completed; saved %s", len(self.metrics),
                             self.opts.episodes, model.relative_to(run.path))
        else:
            model = run.model("final")  # saved before the final evaluation
        write_json(run.training_metrics, {
            "algorithm": run.algorithm,
            "episodes_planned": self.opts.episodes,
            "episodes_completed": len(self.metrics),
            "interrupted": interrupted,
            "config": self.config,
            "episodes": self.metrics,
        })
        plot = None
        if self.metrics:
            from cli_ai.autoscale.plot import plot_training_curves

            plot_training_curves(self.metrics, self.evaluations, run.training_plot,
                                 title=f"{run.algorithm.upper()} training ({run.path.name})")
            plot = run.training_plot
        wall = time.perf_counter() - self.started
        self.log.info("done in %.1f s: %d episodes, model %s", wall, len(self.metrics), model.relative_to(run.path))
        close_logger(self.log)
        final = self.evaluations[-1] if self.evaluations else None  # the latest checkpoint's when interrupted
        return TuningResult(
            workload=self.train_env.workload.name, target="autoscaling", applicable=False,
            metric="total_reward", direction="maximize", algorithm=run.algorithm,
            budget=self.opts.episodes, simulated=True, baseline_config={}, best_config={},
            baseline=None, best=final["reward_mean"] if final else None, improvement=None,
            evaluations=sum(int(m["steps"]) for m in self.metrics), failed_steps=0,
            stopped_reason="interrupted" if interrupted else "episodes done", success=not interrupted,
            duration_s=wall, run_dir=str(run.path), model_path=str(model), seed=self.opts.seed,
            extra={"kind": "policy", "episodes": len(self.metrics), "episodes_planned": self.opts.episodes,
                   "budget_is": "training episodes", "training_episodes": self.metrics,
                   "checkpoint_evaluations": self.evaluations, "evaluation": final,
                   "plot": str(plot) if plot else None},
        )


def _final(job: _Run, agent, eval_env) -> bool:
    """Save the final model and evaluate it; True if Ctrl+C cut the evaluation short."""
    agent.save(job.run.model("final"))
    if job.opts.eval_episodes > 0:
        try:
            job.evaluation(eval_env, agent, len(job.metrics), job.run.model("final"), final=True)
        except KeyboardInterrupt:
            return True
    return False


def _metadata(train_env, eval_env) -> dict[str, Any]:
    """What a saved model records about the env it was trained on."""
    return {"env_config": eval_env.env_config(), "observation_names": list(train_env.observation_names)}


def _train(algorithm: str, opts: TrainOptions, params: Any, on_episode) -> TuningResult:
    """The toolkit's training loop over the engine's learner (the same
    SARSA(λ) and DQN loop `cli-ai tune` drives), one logged episode at a time."""
    from cli_ai.tactician.agents.episodic import DQNLearner, SarsaLearner

    _validate(opts)
    train_env, eval_env = _envs(opts)
    metadata = _metadata(train_env, eval_env)
    if algorithm == "sarsa":
        learner = SarsaLearner(train_env, make_sarsa(train_env, params, seed=opts.seed, metadata=metadata), opts.seed)
    else:
        learner = DQNLearner(train_env, make_dqn(train_env, params, seed=opts.seed, metadata=metadata), opts.seed)
    agent = learner.agent
    job = _Run(algorithm, opts, params, train_env, on_episode)
    interrupted = False
    try:
        for ep in range(1, opts.episodes + 1):
            tracker = EpisodeTracker(stats=lambda: AutoscalingStats(train_env.noop_action))
            run = learner.run_episode(seed=opts.seed if ep == 1 else None, on_step=tracker.record)
            summary = dict(tracker.episodes[-1].details)
            summary.update(episode=ep, **run.report)
            if algorithm == "sarsa" and ep % opts.log_interval == 0:
                job.log.debug("traces after episode %d: %s (table %d states)", ep,
                              format_kv(agent.trace_summary()), agent.table_size)
            job.after_episode(agent, ep, summary, eval_env)
    except KeyboardInterrupt:
        interrupted = True
    return job.wrap_up(agent, eval_env, interrupted=interrupted)


def train_sarsa(opts: TrainOptions, params: SarsaParams | None = None, *,
                on_episode: Callable[[dict[str, Any]], None] | None = None) -> TuningResult:
    return _train("sarsa", opts, params or SarsaParams(), on_episode)


def train_dqn(opts: TrainOptions, params: DQNParams | None = None, *,
              on_episode: Callable[[dict[str, Any]], None] | None = None) -> TuningResult:
    return _train("dqn", opts, params or DQNParams(), on_episode)
