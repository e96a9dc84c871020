"""Settings of the episodic learners (SARSA(λ), DQN), with the autoscaling
toolkit's defaults, and the one place that builds each agent from them:
`cli-ai autoscale train-*` and `cli-ai tune --algo sarsa|dqn` both call
`make_sarsa` / `make_dqn`."""

from __future__ import annotations

from dataclasses import dataclass
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
