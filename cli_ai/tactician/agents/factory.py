"""make_agent: one place that turns a spec's training_config into an agent.

SB3 provides PPO, DDPG, TD3 and SAC; `per-ddpg` is our PrioritizedDDPG; `random`
samples the action space through the same loop as a baseline. Settings are
fitted to the evaluation budget (PPO with n_steps=2048 would never update in a
50-evaluation run), and every change is reported as a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from cli_ai.spec import ALGORITHMS, TrainingConfig

SB3_ALGORITHMS = {"ppo": "PPO", "ddpg": "DDPG", "td3": "TD3", "sac": "SAC"}
# Gaussian exploration noise (std, actions in [-1, 1]) of DDPG and TD3.
ACTION_NOISE = 0.3


@dataclass
class AgentPlan:
    """What will be built: the algorithm, its keyword arguments and why."""

    algorithm: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    preset: str | None = None
    # Arguments that win even over a preset (seed 000's --replay-buffer-size).
    forced: dict[str, Any] = field(default_factory=dict)
    replay_kwargs: dict[str, Any] = field(default_factory=dict)
    training: TrainingConfig | None = None  # the spec's settings, for agents built from them directly
    # Off-policy warm-up over a scrambled Sobol design instead of uniform draws.
    space_filling_warmup: bool = False
    # After that warm-up, every this many actions one is the design's next point (0: none).
    design_every: int = 0
    # SARSA(λ) and DQN: their settings fitted to the budget (episodic_params.EpisodicPlan).
    episodic: Any = None


def _largest_divisor_at_most(n: int, cap: int) -> int:
    for d in range(min(n, cap), 0, -1):
        if n % d == 0:
            return d
    return 1


def plan_agent(algorithm: str, tc: TrainingConfig, steps: int, *, warmup_fraction: float = 0.2,
               obs_dims: int | None = None) -> AgentPlan:
    """Fit the spec's settings to `steps` agent steps (the budget minus the baseline).

    :param warmup_fraction: share of the steps an off-policy agent spends on
        exploratory actions before its first update (SB3's learning_starts,
        at most 100 unless the spec sets it)
    :param obs_dims: the env's observation size (SARSA's bins are fitted to it)
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    plan = AgentPlan(algorithm, training=tc)
    steps = max(1, steps)
    if algorithm in ("sarsa", "dqn"):
        from cli_ai.tactician.agents.episodic_params import fit_episodic

        plan.episodic = fit_episodic(algorithm, tc, steps, obs_dims)
        plan.notes.extend(plan.episodic.notes)
        return plan
    if algorithm in ("auto", "random"):
        return plan
    if algorithm != "per-ddpg" or not tc.preset:
        plan.kwargs["learning_rate"] = tc.learning_rate
    plan.kwargs["gamma"] = tc.gamma
    if algorithm == "ppo":
        n_steps = tc.n_steps
        if n_steps > steps // 2:
            n_steps = int(min(tc.n_steps, max(4, math.ceil(steps / 4))))
            plan.notes.append(
                f"PPO n_steps {tc.n_steps} -> {n_steps}, so that {steps} steps give "
                f"{max(1, steps // n_steps)} policy update(s)"
            )
        batch = _largest_divisor_at_most(n_steps, tc.batch_size)
        if batch != tc.batch_size:
            plan.notes.append(f"PPO batch_size {tc.batch_size} -> {batch} (a divisor of n_steps {n_steps})")
        plan.kwargs.update(n_steps=n_steps, batch_size=batch, n_epochs=tc.n_epochs)
        return plan
    # Off-policy algorithms: learn from the first few evaluations on.
    learning_starts = tc.learning_starts if tc.learning_starts is not None else \
        max(1, min(100, int(steps * warmup_fraction)))
    if tc.learning_starts is None and learning_starts != 100:
        plan.notes.append(f"{algorithm.upper()} learning_starts 100 -> {learning_starts} for a budget of {steps} steps")
    batch = tc.batch_size if tc.given("batch_size") else min(tc.batch_size, max(4, steps // 2))
    preset_keeps = algorithm == "per-ddpg" and bool(tc.preset)  # the preset's own batch, lr, gamma, tau, buffer run
    if batch != tc.batch_size and not preset_keeps:
        plan.notes.append(f"{algorithm.upper()} batch_size {tc.batch_size} -> {batch} for a budget of {steps} steps")
    buffer_size = tc.buffer_size or max(1000, min(1_000_000, steps * 10))
    plan.kwargs.update(learning_starts=learning_starts, batch_size=batch, buffer_size=buffer_size, train_freq=1, gradient_steps=1)
    if tc.tau is not None:
        plan.kwargs["tau"] = tc.tau
    if algorithm == "per-ddpg":
        plan.preset = tc.preset
    return plan


# Knob search is a bandit: each action is a whole configuration and its reward
# depends on that action alone, so no future reward is worth discounting for.
KNOB_SEARCH_GAMMA = 0.0
# PPO's Gaussian starts at unit std in [-1, 1]: clipped, about a third of its
# draws sit exactly on a range end. Half of that covers the range without
# piling up at its ends (bench/search.py: the PPO rows in docs/benchmarks.md).
KNOB_SEARCH_PPO_STD = 0.5
# Off-policy agents on a knob space: an MLP critic fitted to a few points
# extrapolates, and the actor follows it into a corner; half the budget spent
# on a space-filling design first gives it the whole space to fit (measured
# against the seeds' fifth of the budget on uniform draws: docs/benchmarks.md).
KNOB_SEARCH_WARMUP_FRACTION = 0.5
# ... and after it, from 30 steps up, every second action continues that
# design, as SMAC interleaves random configurations with its model's: over
# 40 to 100 evaluations the critic keeps seeing the space its actor does not
# visit. In a shorter run the actor's few steps are worth more (budget 20:
# 3 to 6 points fewer with the interleave; bench/search.py, docs/benchmarks.md).
KNOB_SEARCH_DESIGN_EVERY = 2
KNOB_SEARCH_DESIGN_MIN_STEPS = 30
OFF_POLICY = ("ddpg", "td3", "sac", "per-ddpg")


def plan_knob_agent(algorithm: str, tc: TrainingConfig, steps: int) -> AgentPlan:
    """`plan_agent`, then the settings of an agent that searches a knob space
    in `steps` evaluations (sysctl, command, mosquitto): a discount of 0;
    for PPO a narrower starting exploration; for the off-policy agents a
    warm-up over half the steps on a space-filling design, so that the critic
    first sees the whole space. What the spec set itself stays, and PER-DDPG
    with a preset (seed 000's cdbtuner) keeps the preset's settings."""
    seed_preset = algorithm == "per-ddpg" and bool(tc.preset)  # seed 000's CDBTuner settings stay as they are
    warmup = KNOB_SEARCH_WARMUP_FRACTION if algorithm in OFF_POLICY and not seed_preset else 0.2
    plan = plan_agent(algorithm, tc, steps, warmup_fraction=warmup)
    if algorithm not in ("ppo", *OFF_POLICY) or seed_preset:
        return plan
    if not tc.given("gamma"):
        plan.kwargs["gamma"] = KNOB_SEARCH_GAMMA
        plan.notes.append(
            f"{algorithm.upper()} gamma {tc.gamma} -> {KNOB_SEARCH_GAMMA:g}: knob search is a bandit "
            "(each step's reward depends on its configuration alone)"
        )
    if algorithm == "ppo":
        plan.kwargs["policy_kwargs"] = {"log_std_init": math.log(KNOB_SEARCH_PPO_STD)}
        plan.notes.append(f"PPO starting exploration std 1 -> {KNOB_SEARCH_PPO_STD:g} (actions span [-1, 1])")
    else:
        plan.space_filling_warmup = True
        if algorithm == "per-ddpg":
            # Its seed's noise (0.1) explores too little around a critic fitted
            # to a few points; DDPG and TD3 run with 0.3 here.
            plan.kwargs["action_noise"] = ACTION_NOISE
            plan.notes.append(f"PER-DDPG action noise 0.1 -> {ACTION_NOISE:g}, as DDPG and TD3")
        interleave = ""
        if steps >= KNOB_SEARCH_DESIGN_MIN_STEPS:
            plan.design_every = KNOB_SEARCH_DESIGN_EVERY
            interleave = f"; after that, one action in {KNOB_SEARCH_DESIGN_EVERY} is the design's next point"
        plan.notes.append(
            f"{algorithm.upper()} warm-up: its first {plan.kwargs['learning_starts']} actions are a scrambled "
            f"Sobol design over the whole space (uniform draws leave gaps), then it learns{interleave}"
        )
    return plan


class RandomSearch:
    """Uniform random actions through the same env and loop: the baseline every
    learner has to beat."""

    def __init__(self, env, seed: int | None = None):
        self.env = env
        self.space = env.action_space
        self.space.seed(seed)  # Box or Discrete: the space's own seeded sampler

    def learn(self, total_timesteps: int, callback: Callable[[dict], bool] | None = None) -> "RandomSearch":
        self.env.reset()
        for _ in range(total_timesteps):
            action = self.space.sample()
            _, _, terminated, truncated, info = self.env.step(action)
            if callback is not None and callback(info) is False:
                break
            if terminated or truncated:
                self.env.reset()
        return self

    def save(self, path) -> None:  # nothing learned to save
        return None


def configure_torch() -> None:
    """One intra-op thread unless CLI_AI_TORCH_THREADS says otherwise.

    The networks here are small MLPs on batches of tens: splitting their
    matrix products over threads only adds synchronisation, and when another
    process holds a core the OpenMP workers spin (measured on 2 cores: 1.9 ms
    per DDPG-sized update with one thread, 62 ms with two under load)."""
    import os

    import torch

    threads = int(os.environ.get("CLI_AI_TORCH_THREADS", "1"))
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def build_agent(plan: AgentPlan, env, *, seed: int | None = None, verbose: int = 0, tensorboard_log: str | None = None):
    """Instantiate the planned agent on `env` (imports torch / SB3 here, lazily)."""
    if plan.algorithm == "random":
        return RandomSearch(env, seed)
    if plan.algorithm in ("sarsa", "dqn"):
        from cli_ai.tactician.agents.episodic import build_episodic

        return build_episodic(plan, env, seed=seed)
    configure_torch()
    if plan.algorithm == "per-ddpg":
        from cli_ai.tactician.agents.per import build_per_ddpg

        overrides = dict(plan.kwargs)
        if plan.preset:
            # The preset's own learning rates, tau, gamma, batch and buffer win.
            for key in ("learning_rate", "gamma", "tau", "batch_size", "buffer_size"):
                overrides.pop(key, None)
        overrides.update(plan.forced)
        if tensorboard_log:
            overrides["tensorboard_log"] = tensorboard_log
        return build_per_ddpg(env, preset=plan.preset, overrides=overrides, replay_kwargs=plan.replay_kwargs or None,
                              seed=seed, verbose=verbose, warmup=plan.space_filling_warmup,
                              design_every=plan.design_every)
    import stable_baselines3 as sb3

    cls = getattr(sb3, SB3_ALGORITHMS[plan.algorithm])
    if plan.space_filling_warmup and plan.algorithm in OFF_POLICY:
        from cli_ai.tactician.agents.warmup import with_space_filling_warmup

        cls = with_space_filling_warmup(cls, plan.design_every)
    kwargs = {**plan.kwargs, **plan.forced}
    if plan.algorithm in ("ddpg", "td3"):
        from stable_baselines3.common.noise import NormalActionNoise

        dims = env.action_space.shape[0]
        kwargs["action_noise"] = NormalActionNoise(np.zeros(dims), ACTION_NOISE * np.ones(dims))
    return cls("MlpPolicy", env, seed=seed, verbose=verbose, device="cpu", tensorboard_log=tensorboard_log, **kwargs)
