"""Settings of the episodic learners (SARSA(λ), DQN), with the autoscaling
toolkit's defaults: `cli-ai autoscale train-*` and `cli-ai tune --algo
sarsa|dqn` build their agents from these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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
