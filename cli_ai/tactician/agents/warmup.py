"""A space-filling warm-up for SB3's off-policy agents.

Before `learning_starts`, SB3's DDPG, TD3 and SAC draw uniform random actions
(DDPG and TD3 add their action noise on top). On a knob search of 20 to 100
evaluations, uniform draws leave gaps and clusters, and the critic is then
fitted to an uneven picture of the space. Here the warm-up actions are the
points of a scrambled Sobol sequence over the action box instead (the start-up
design `auto` uses too), without noise. After the warm-up the agent acts and
learns as SB3 does, except that every `design_every`-th action (when set)
is the design's next point: as SMAC interleaves a random configuration
between the ones its model proposes (`ModulusRandomDesign`), so that a
critic fitted to a few points keeps seeing the parts of the space its actor
does not visit. Every action, the design's too, is learned from.
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
    #: After the warm-up, every this many actions one is the design's next
    #: point (0: none, the actor's actions only).
    design_every: int = 0

    def _sample_action(self, learning_starts: int, action_noise=None, n_envs: int = 1):
        step = self.num_timesteps
        if step < learning_starts:
            index = step
        else:
            after = step - learning_starts
            every = self.design_every
            if not every or after % every != every - 1:
                return super()._sample_action(learning_starts, action_noise, n_envs)
            index = learning_starts + after // every
        action = np.asarray([self._design_point(index + i, learning_starts) for i in range(n_envs)],
                            dtype=self.action_space.dtype)
        # The action box is [-1, 1], so the action and its scaled form (the
        # one stored in the replay buffer) are the same.
        return action, action.copy()

    def _design_point(self, index: int, learning_starts: int) -> np.ndarray:
        points = self._warmup_points
        if points is None or index >= len(points):
            # The first n points of a seeded scrambled sequence do not depend
            # on how many are drawn, so growing it keeps the earlier ones.
            n = max(learning_starts, 1024, 2 * index)
            points = self._warmup_points = sobol_points(self.action_space.shape[0], n, self.seed)
        return points[index]


@functools.cache
def with_space_filling_warmup(cls: type, design_every: int = 0) -> type:
    """`cls` (DDPG, TD3, SAC, PrioritizedDDPG) with the Sobol warm-up and,
    when `design_every` is set, design points interleaved after it."""
    return type(cls.__name__, (SpaceFillingWarmup, cls), {"__doc__": cls.__doc__, "design_every": int(design_every)})
