"""`cli-ai tune` for simulated targets (scheduler, autoscaling): train a policy.

These targets change nothing on the machine: the env is a simulation, one
step is one decision (route a request, scale workers), and the budget counts
steps, not benchmark runs. The run directory is the same as a knob run's:
spec.json, trajectory.csv (every step with its reward breakdown), the model,
result.json and a progress plot. The result compares the trained policy with
the same policy untrained and with the target's best heuristic (reactive
autoscaling, least-outstanding routing, ...), all three deterministic on the
same seeded evaluation episodes, so only the policies differ.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from cli_ai.errors import BadInputError, CliAiError, Interrupted
from cli_ai.events import Event, EventSink, null_sink
from cli_ai.results import RunDirectory, TuningResult
from cli_ai.spec import TuningSpec
from cli_ai.tactician.episodes import EpisodeSummary, EpisodeTracker
from cli_ai.tactician.loop import improvement_pct

EVAL_EPISODES = 5


class _Recording(gym.Wrapper):
    def __init__(self, env: gym.Env, tracker: EpisodeTracker):
        super().__init__(env)
        self.tracker = tracker

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.tracker.record(action, reward, terminated, truncated, info)
        return obs, reward, terminated, truncated, info


class UniformPolicy:
    """Uniform random actions from a seeded stream (the same stream each
    episode): what `--algo random` evaluates (it learns nothing, so its
    trained and untrained selves agree)."""

    def __init__(self, action_space: gym.Space, seed: int):
        import copy

        self.space = copy.deepcopy(action_space)  # its own sampler: the training env's stays untouched
        self.seed = seed

    def reset(self) -> None:
        self.space.seed(self.seed)

    def act(self, obs, greedy: bool = True) -> int:
        return int(self.space.sample())


def evaluate_policy(policy: Any, spec: TuningSpec, seeds: list[int]) -> dict[str, Any]:
    """Deterministic roll-outs of `policy` on fresh envs, episode i on seed
    seeds[i] (the same traffic for every policy evaluated so: common random
    numbers): each episode's metric (its `episode_metric`, else the mean of
    its steps) and reward, and their means."""
    from cli_ai.tactician.compare import rollout
    from cli_ai.targets import get_target

    target = get_target(spec.target)
    metrics, rewards = [], []
    for seed in seeds:
        env = target.policy_env(spec, seed=seed)
        try:
            episode = rollout(env, policy, seed=seed)
        finally:
            env.close()
        metrics.append(episode.mean_metric)
        rewards.append(episode.reward)
    return {"episodes": len(seeds), "seed": seeds[0], "mean_metric": float(np.mean(metrics)),
            "std_metric": float(np.std(metrics)), "mean_reward": float(np.mean(rewards)),
            "std_reward": float(np.std(rewards)), "per_episode_metric": metrics, "per_episode_reward": rewards}


def best_heuristic(spec: TuningSpec, seeds: list[int]) -> dict[str, Any] | None:
    """The target's heuristic baselines on the same episodes; the one with the
    best mean metric (by the spec's direction), or None if the target has none."""
    from cli_ai.targets import get_target

    target = get_target(spec.target)
    env = target.policy_env(spec, seed=seeds[0])
    try:
        heuristics = target.heuristic_policies(env)
    finally:
        env.close()
    scored = {name: evaluate_policy(policy, spec, seeds) for name, policy in heuristics.items()}
    if not scored:
        return None
    pick = min if spec.metric_direction == "minimize" else max
    name = pick(scored, key=lambda n: scored[n]["mean_metric"])
    return {"name": name, **scored[name], "all": {n: e["mean_metric"] for n, e in scored.items()}}


def train_policy(spec: TuningSpec, options, *, sink: EventSink = null_sink) -> TuningResult:
    from cli_ai.tactician.agents.factory import build_agent, plan_agent
    from cli_ai.targets import get_target
    from cli_ai.tactician.loop import sb3_callbacks
    from cli_ai.tuning import tensorboard_dir

    spec = spec.with_overrides(budget=options.budget, algorithm=options.algorithm, seed=options.seed)
    tc = spec.training_config
    algorithm = tc.algorithm
    auto_note = []
    if algorithm == "auto":
        algorithm = "ppo"
        auto_note = [f"algorithm auto -> ppo: the {spec.target} target is sequential (one step is one decision), "
                     "where a reinforcement-learning policy is the natural search"]
    problem = get_target(spec.target).algorithm_problem(algorithm)
    if problem is not None:
        raise BadInputError(problem)
    from cli_ai.tuning import check_flags

    check_flags(spec, options, algorithm)
    budget = tc.budget if tc.budget is not None else tc.total_timesteps
    seed = tc.seed if tc.seed is not None else 0
    started = time.monotonic()
    rundir = RunDirectory(options.output_dir)
    rundir.flush_every = 500
    rundir.write_json("spec.json", spec.to_dict())
    for name, payload in options.attachments.items():
        rundir.write_json(name, payload)
    tracker = EpisodeTracker(budget=budget, sink=sink, rows=rundir)
    env = _Recording(get_target(spec.target).policy_env(spec, seed=seed), tracker)
    plan = plan_agent(algorithm, tc, budget, obs_dims=env.observation_space.shape[0])
    plan.notes[:0] = auto_note
    sink(Event("policy_started", {"spec": spec, "budget": budget, "agent": plan, "run_dir": str(rundir.path),
                                  "notes": plan.notes}))
    stopped, error, model_path, evaluation, untrained, heuristic = "budget spent", None, None, None, None, None
    eval_seeds = [seed + 10_000 + i for i in range(EVAL_EPISODES)]
    try:
        agent = build_agent(plan, env, seed=seed, verbose=options.verbose, tensorboard_log=tensorboard_dir(options))
        evaluated = agent if hasattr(agent, "predict") else UniformPolicy(env.action_space, seed)
        # The references are evaluated before training, on the same seeded
        # episodes as the trained policy (a deterministic roll-out draws
        # nothing from the agent's own random stream).
        untrained = evaluate_policy(evaluated, spec, eval_seeds)
        heuristic = best_heuristic(spec, eval_seeds)
        if hasattr(agent, "policy"):  # SB3
            agent.learn(total_timesteps=budget, callback=sb3_callbacks(tracker, breakdown=options.tensorboard is not None),
                        progress_bar=False)
            model_path = str(rundir.path / "model.zip")
            agent.save(model_path)
        else:  # random search, SARSA(lambda), the lightweight DQN
            agent.learn(budget, callback=lambda info: not tracker.exhausted)
            saved = agent.save(rundir.path / "model")
            model_path = str(saved) if saved else None
        evaluation = evaluate_policy(evaluated, spec, eval_seeds)
    except (Interrupted, KeyboardInterrupt) as exc:
        stopped, error = "interrupted", exc
    except CliAiError as exc:
        stopped, error = f"error: {exc}", exc
    rundir.close()
    first = untrained["mean_metric"] if untrained else None
    best = evaluation["mean_metric"] if evaluation else None
    improvement = improvement_pct(best, first, spec.metric_direction) if first is not None and best is not None else None
    if heuristic is not None and best is not None:
        heuristic["improvement_pct"] = improvement_pct(best, heuristic["mean_metric"], spec.metric_direction)
    result = TuningResult(
        workload=spec.workload_name, target=spec.target, applicable=get_target(spec.target).applicable, metric=spec.reward_metric, direction=spec.metric_direction,
        algorithm=algorithm, budget=budget, simulated=True, baseline_config={}, best_config={},
        baseline=first, best=best, improvement=improvement, evaluations=tracker.steps, failed_steps=0,
        stopped_reason=stopped, success=error is None, duration_s=time.monotonic() - started,
        run_dir=str(rundir.path), model_path=model_path, seed=seed, notes=list(plan.notes),
        extra={"kind": "policy", "episodes": len(tracker.episodes), "evaluation": evaluation,
               "untrained": untrained, "heuristic": heuristic,
               "baseline_is": f"mean metric of the untrained policy over the same {EVAL_EPISODES} seeded "
                              "deterministic episodes as the trained one",
               "best_is": f"mean metric of {EVAL_EPISODES} deterministic evaluation episodes of the trained policy"},
    )
    rundir.write_json("result.json", result.to_json())
    _plot_episodes(tracker.episodes, rundir.path / "plots" / "progress.png", spec, evaluation)
    sink(Event("policy_finished", {"result": result}))
    if error is not None:
        raise error
    return result


def _plot_episodes(episodes: list[EpisodeSummary], path: Path, spec: TuningSpec, evaluation) -> None:
    if not episodes:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    xs = [e.index for e in episodes]
    ax1.plot(xs, [e.reward for e in episodes], color="#4c72b0", label="episode reward")
    ax1.set_xlabel("training episode")
    ax1.set_ylabel("total reward")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(xs, [e.mean_metric for e in episodes], color="#dd8452", label=f"mean {spec.reward_metric} (training)")
    if evaluation:
        ax2.axhline(evaluation["mean_metric"], color="#55a868", linestyle="--", label="trained policy (evaluation)")
    ax2.set_xlabel("training episode")
    ax2.set_ylabel(f"{spec.reward_metric} ({'lower' if spec.metric_direction == 'minimize' else 'higher'} is better)")
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.suptitle(f"{spec.workload_name}: policy training (simulated {spec.target})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
