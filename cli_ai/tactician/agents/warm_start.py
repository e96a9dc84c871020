"""Start a fresh SB3 agent at the current configuration.

A new SB3 policy proposes actions around 0 (mid-range on every knob) with a
unit standard deviation (PPO) or none at all: clipped to [-1, 1], about a
third of PPO's first proposals sit exactly on a range end. On a knob target
the run starts from a configuration that works (the current values), and a
budget of tens of evaluations leaves no room to wander the corners first. So
the policy's output layer is set to propose the current configuration, with
a small weight so that the observation barely moves it at first, and the
exploration scale is fitted to the budget (`exploration_std`).

This changes the initial weights only; the algorithms and the meaning of an
action (the whole configuration, absolute) are the seeds' own.
"""

from __future__ import annotations

import math

import numpy as np

#: Weight scale of the re-initialised output layers: near-constant at first.
OUTPUT_WEIGHT_SCALE = 0.01
#: Actions are kept this far inside [-1, 1] before atanh (tanh-squashed policies).
EDGE = 0.95


def exploration_std(steps: int) -> float:
    """The exploration scale (normalized units; the safe range is 2 wide) for a
    search of `steps` evaluations: wider when there are more evaluations to
    spend, never so wide that most proposals land on the range ends.
    Measured on bench/search.py (docs/benchmarks.md)."""
    return float(min(0.5, max(0.25, 0.1 * math.sqrt(max(steps, 1)))))


def _last_linear(module):
    import torch.nn as nn

    layers = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError(f"{type(module).__name__} has no linear layer to initialise")
    return layers[-1]


def _set_output(layer, bias: np.ndarray) -> None:
    import torch

    with torch.no_grad():
        layer.weight.mul_(OUTPUT_WEIGHT_SCALE)
        layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype))


def start_at(model, start: np.ndarray, std: float) -> None:
    """Make `model` (PPO, SAC, DDPG, TD3 or PrioritizedDDPG, freshly built)
    propose `start` (normalized actions in [-1, 1]) with exploration `std`."""
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.noise import NormalActionNoise

    start = np.clip(np.asarray(start, dtype=np.float64).reshape(-1), -1.0, 1.0)
    dims = start.size
    policy = model.policy
    if isinstance(model, PPO):
        import torch

        _set_output(policy.action_net, start)
        with torch.no_grad():
            policy.log_std.fill_(math.log(std))
        return
    squashed = np.arctanh(np.clip(start, -EDGE, EDGE))
    if isinstance(model, SAC):
        _set_output(policy.actor.mu, squashed)
        # SAC's Gaussian lives before the tanh: near the middle of the range a
        # pre-tanh std of `std` is about `std` in action units.
        _set_output(policy.actor.log_std, np.full(dims, math.log(std)))
        return
    # DDPG, TD3, PrioritizedDDPG: a deterministic actor plus Gaussian noise.
    _set_output(_last_linear(policy.actor.mu), squashed)
    policy.actor_target.load_state_dict(policy.actor.state_dict())
    model.action_noise = NormalActionNoise(np.zeros(dims), std * np.ones(dims))


__all__ = ["exploration_std", "start_at"]
