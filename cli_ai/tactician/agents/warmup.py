"""A space-filling warm-up for SB3's off-policy agents.

Before `learning_starts`, SB3's DDPG, TD3 and SAC draw uniform random actions
(DDPG and TD3 add their action noise on top). On a knob search of 20 to 100
evaluations, uniform draws leave gaps and clusters, and the critic is then
fitted to an uneven picture of the space. Here the warm-up actions are the
points of a scrambled Sobol sequence over the action box instead (the start-up
design `auto` uses too), without noise; after the warm-up the agent acts and
learns exactly as SB3 does.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np


def sobol_points(dims: int, n: int, seed: int | None) -> np.ndarray:
    """`n` scrambled Sobol points in [-1, 1]^dims (seeded)."""
    from scipy.stats import qmc

    with warnings.catch_warnings():
        # Sobol's balance properties hold for powers of two; the first n of
        # them still spread better than uniform draws.
        warnings.simplefilter("ignore", UserWarning)
        return qmc.Sobol(d=dims, scramble=True, seed=seed).random(max(1, n)) * 2.0 - 1.0


class SpaceFillingWarmup:
    """Mixin for an SB3 off-policy algorithm on a Box action space in [-1, 1]."""

    _warmup_points: np.ndarray | None = None

    def _sample_action(self, learning_starts: int, action_noise=None, n_envs: int = 1):
        if self.num_timesteps >= learning_starts:
            return super()._sample_action(learning_starts, action_noise, n_envs)
        if self._warmup_points is None:
            self._warmup_points = sobol_points(self.action_space.shape[0], learning_starts, self.seed)
        first = self.num_timesteps
        rows = [self._warmup_points[(first + i) % len(self._warmup_points)] for i in range(n_envs)]
        action = np.asarray(rows, dtype=self.action_space.dtype)
        # The action box is [-1, 1], so the action and its scaled form (the
        # one stored in the replay buffer) are the same.
        return action, action.copy()


@functools.cache
def with_space_filling_warmup(cls: type) -> type:
    """`cls` (DDPG, TD3, SAC, PrioritizedDDPG) with the Sobol warm-up."""
    return type(cls.__name__, (SpaceFillingWarmup, cls), {"__doc__": cls.__doc__})
