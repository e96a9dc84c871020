"""Settings of the episodic learners (SARSA(λ), DQN), with the autoscaling
toolkit's defaults, and the one place that builds each agent from them:
`cli-ai autoscale train-*` and `cli-ai tune --algo sarsa|dqn` both call
`make_sarsa` / `make_dqn`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

# queued, running, completed, missed, workers, avg/max processing time, arrival rate, QoS:
# the queue, recent misses, the worker count and the arrival rate carry the decision;
# one bin ignores an element (see docs/benchmarks/autoscaling.md for the comparison)
DEFAULT_BINS = (4, 1, 1, 3, 16, 1, 1, 8, 1)


@dataclass
class SarsaParams:
    bins: Sequence[int] = DEFAULT_BINS
    alpha: float | None = None
    gamma: float = 0.99
    epsilon: float = 1.0
    epsilon_min: float = 0.05
    epsilon_decay: float = 0.97
    trace_lambda: float = 0.6
    trace_threshold: float = 1e-3


@dataclass
class DQNParams:
    hidden_layers: Sequence[int] = (64, 64)
    learning_rate: float = 1e-3
    gamma: float = 0.99
    batch_size: int = 64
    replay_capacity: int = 50_000
    warmup: int | None = None
    target_update: int = 1
    target_tau: float = 0.01
    grad_clip: float | None = 10.0
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay: float = 0.98


def make_sarsa(env, params: SarsaParams, *, seed: int | None = None, metadata: Mapping[str, Any] | None = None):
    """A `SarsaAgent` on `env` (Box observations, Discrete actions) with `params`."""
    from cli_ai.tactician.agents.sarsa import SarsaAgent

    return SarsaAgent.from_env(
        env, params.bins, alpha=params.alpha, gamma=params.gamma, epsilon=params.epsilon,
        epsilon_min=params.epsilon_min, epsilon_decay=params.epsilon_decay, trace_lambda=params.trace_lambda,
        trace_threshold=params.trace_threshold, seed=seed, **({"metadata": dict(metadata)} if metadata else {}),
    )


def make_dqn(env, params: DQNParams, *, seed: int | None = None, metadata: Mapping[str, Any] | None = None):
    """A `DQNAgent` on `env` with `params` (torch with one intra-op thread)."""
    from cli_ai.tactician.agents.dqn import DQNAgent
    from cli_ai.tactician.agents.factory import configure_torch

    configure_torch()
    return DQNAgent.from_env(
        env, hidden_layers=params.hidden_layers, learning_rate=params.learning_rate, gamma=params.gamma,
        batch_size=params.batch_size, replay_capacity=params.replay_capacity, warmup=params.warmup,
        target_update=params.target_update, target_tau=params.target_tau, grad_clip=params.grad_clip,
        epsilon_start=params.epsilon_start, epsilon_end=params.epsilon_end, epsilon_decay=params.epsilon_decay,
        seed=seed, **({"metadata": dict(metadata)} if metadata else {}),
    )


# ε falls linearly from its start to its floor over this share of a `cli-ai
# tune` budget (SB3's exploration_fraction, 0.1 there: a tune budget is a few
# episodes, so half of it explores). The toolkit's per-episode decay is for
# runs of hundreds of episodes.
EXPLORATION_FRACTION = 0.5


@dataclass
class EpisodicPlan:
    """SARSA(λ) or DQN settings fitted to a step budget, and what changed."""

    params: SarsaParams | DQNParams
    #: linear ε schedule over steps: (start, end, steps), applied by the learner per step
    epsilon_schedule: tuple[float, float, int]
    notes: list[str]


def fit_episodic(algorithm: str, tc: Any, steps: int, obs_dims: int | None = None) -> EpisodicPlan:
    """The toolkit's defaults fitted to `steps` env steps of `cli-ai tune`: ε
    per step instead of per episode; for the DQN a warm-up and a batch that
    leave most of the budget for learning (the toolkit's warm-up of 500
    transitions is more than a tune budget of 150); the spec's learning_rate
    and gamma when it sets them."""
    steps = max(1, int(steps))
    explore = max(1, int(steps * EXPLORATION_FRACTION))
    notes: list[str] = []
    gamma = {"gamma": tc.gamma} if tc.given("gamma") else {}
    if algorithm == "sarsa":
        p = replace(SarsaParams(), epsilon_decay=1.0, **gamma)
        if obs_dims is not None and len(p.bins) != obs_dims:
            p = replace(p, bins=[6] * obs_dims)
            notes.append(f"SARSA bins: 6 per dimension over {obs_dims} observation dimensions")
        schedule = (p.epsilon, p.epsilon_min, explore)
        notes.append(f"SARSA epsilon {p.epsilon:g} -> {p.epsilon_min:g} linearly over its first {explore} of "
                     f"{steps} steps (per-episode decay {SarsaParams.epsilon_decay:g} is for hundreds of episodes)")
        return EpisodicPlan(p, schedule, notes)
    if algorithm == "dqn":
        defaults = DQNParams()
        # At most a fifth of the budget per batch, and a warm-up of a tenth (at
        # least one batch, at most half), so that most of the budget learns.
        cap = max(8, steps // 5)
        wanted = tc.batch_size if tc.given("batch_size") else max(8, min(defaults.batch_size, steps // 10))
        batch = min(wanted, cap)
        warmup = min(max(batch, min(500, steps // 10)), max(batch, steps // 2))
        lr = {"learning_rate": tc.learning_rate} if tc.given("learning_rate") else {}
        p = replace(defaults, batch_size=batch, warmup=warmup, epsilon_decay=1.0, **gamma, **lr)
        if tc.given("batch_size"):
            if batch != wanted:
                notes.append(f"DQN batch_size: the spec's {wanted} -> {batch}, at most a fifth of {steps} steps")
            else:
                notes.append(f"DQN batch_size {batch}: the spec's")
        elif batch != defaults.batch_size:
            notes.append(f"DQN batch_size {defaults.batch_size} -> {batch} for a budget of {steps} steps")
        notes.append(f"DQN warm-up {max(defaults.batch_size, 500)} -> {warmup} transitions, so that it learns "
                     f"from step {warmup} of {steps} on")
        schedule = (p.epsilon_start, p.epsilon_end, explore)
        notes.append(f"DQN epsilon {p.epsilon_start:g} -> {p.epsilon_end:g} linearly over its first {explore} of "
                     f"{steps} steps (per-episode decay {defaults.epsilon_decay:g} is for hundreds of episodes)")
        return EpisodicPlan(p, schedule, notes)
    raise ValueError(f"{algorithm!r} is not an episodic algorithm (sarsa, dqn)")
