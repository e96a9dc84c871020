"""`PrioritizedReplayBuffer`: proportional prioritized replay over a `SumTree`
(seed 001's API), with importance-sampling weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cli_ai.tactician.replay.buffer import ReplayBuffer
from cli_ai.tactician.replay.common import check_batch_size
from cli_ai.tactician.replay.sum_tree import SumTree, write_priorities


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al., 2016) over a :class:`SumTree`.

    A transition ``i`` with priority ``p_i = |delta_i| + epsilon`` is drawn with
    probability ``P(i) = p_i^alpha / sum_k p_k^alpha``; each batch is
    *stratified*: the total is cut into ``batch_size`` equal segments and one
    value is drawn in each, which lowers the variance of the batch composition
    without changing ``P(i)``. The bias this introduces is corrected by the
    importance-sampling weights ``w_i = (N * P(i))^-beta``, divided by the
    largest weight in the batch so that the largest is exactly 1 (weights only
    ever scale the loss down).

    ``beta`` anneals linearly from ``beta_start`` to ``beta_end`` over
    ``beta_frames`` calls of :meth:`sample` (the frame counter). New
    transitions get the largest priority seen so far (1.0 before any update),
    so each is replayed at least once soon; that running maximum never
    decreases, as in the paper and OpenAI Baselines.

    :param capacity: Maximum number of transitions (FIFO eviction).
    :param alpha: How much prioritization is used, 0 (uniform) to 1 (fully proportional).
    :param beta_start: Importance-sampling exponent at the first sample.
    :param beta_end: Importance-sampling exponent after ``beta_frames`` samples.
    :param beta_frames: Number of ``sample`` calls over which beta anneals.
    :param epsilon: Added to ``|delta|`` so no transition's priority is ever 0.
    :param seed: Seed of the buffer's own ``numpy.random.Generator``.
    """

    def __init__(
        self,
        capacity: int,
        alpha: float = 0.6,
        beta_start: float = 0.4,
        beta_end: float = 1.0,
        beta_frames: int = 100000,
        epsilon: float = 1e-6,
        seed: int | None = None,
    ):
        super().__init__(capacity, seed=seed)
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if not (0 <= beta_start <= 1 and 0 <= beta_end <= 1):
            raise ValueError(f"beta_start and beta_end must be in [0, 1], got {beta_start}, {beta_end}")
        if isinstance(beta_frames, bool) or not isinstance(beta_frames, (int, np.integer)) or beta_frames <= 0:
            raise ValueError(f"beta_frames must be a positive integer, got {beta_frames!r}")
        if not epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.alpha = float(alpha)
        self.beta_start = float(beta_start)
        self.beta_end = float(beta_end)
        self.beta_frames = int(beta_frames)
        self.epsilon = float(epsilon)
        self.frame = 0  # sample() calls so far; drives beta
        self.max_priority = 1.0  # largest |delta| + epsilon seen (before the alpha power)
        self.tree = SumTree(self.capacity)

    @property
    def beta(self) -> float:
        """Current importance-sampling exponent (linear in ``frame``, capped at ``beta_end``)."""
        fraction = min(1.0, self.frame / self.beta_frames)
        return self.beta_start + fraction * (self.beta_end - self.beta_start)

    def _to_tree(self, priorities: np.ndarray | float) -> np.ndarray | float:
        """|priority| + epsilon, raised to alpha: the value a leaf holds."""
        return (np.abs(priorities) + self.epsilon) ** self.alpha

    def push(
        self, state: Any, action: Any, reward: float, next_state: Any, done: bool, priority: float | None = None
    ) -> int:
        """Store one transition with ``priority`` (a TD error), or the max priority if None."""
        if priority is not None and not np.isfinite(priority):
            raise ValueError(f"priority must be finite, got {priority}")
        slot = super().push(state, action, reward, next_state, done)
        if priority is None:
            self.tree.update_leaves(slot, self.max_priority**self.alpha)
        else:
            self.max_priority = max(self.max_priority, abs(float(priority)) + self.epsilon)
            self.tree.update_leaves(slot, float(self._to_tree(float(priority))))
        return slot

    def extend(self, states: Any, actions: Any, rewards: Any, next_states: Any, dones: Any) -> np.ndarray:
        """Store a batch of transitions, all at the current max priority; return their slots."""
        slots = super().extend(states, actions, rewards, next_states, dones)
        leaf = self.max_priority**self.alpha
        # Slots are contiguous modulo capacity: at most two slice updates.
        start, n = int(slots[0]), len(slots)
        first = min(n, self.capacity - start)
        self.tree.update_range(start, np.full(first, leaf))
        if n > first:
            self.tree.update_range(0, np.full(n - first, leaf))
        return slots

    def sample(self, batch_size: int) -> tuple[np.ndarray, ...]:
        """Draw a stratified, prioritized batch (with replacement).

        Returns ``(states, actions, rewards, next_states, dones, weights, indices)``:
        ``weights`` float32 ``(B,)`` with max 1, ``indices`` int64 ``(B,)`` slot
        numbers to pass back to :meth:`update_priorities`. Advances ``frame``.
        Raises ``ValueError`` when the buffer holds fewer than ``batch_size``.
        """
        batch_size = check_batch_size(batch_size)
        if batch_size > self._size:
            raise ValueError(f"cannot sample {batch_size} transitions from a buffer holding {self._size}")
        total = self.tree.total_priority
        segment = total / batch_size
        values = (np.arange(batch_size) + self._rng.random(batch_size)) * segment
        idx = self.tree.find(values)
        prios = self.tree.tree[idx + self.tree.leaf_offset]
        # w_i = (N * p_i / total)^-beta, then / max: the max weight belongs to the
        # smallest priority in the batch, so only that one needs computing twice.
        beta = self.beta
        weights = (prios * (self._size / total)) ** (-beta)
        weights /= weights.max()
        self.frame += 1
        return (*self._gather(idx), weights.astype(np.float32), idx)

    def update_priorities(self, indices: Any, priorities: Any) -> None:
        """Set new priorities (e.g. ``|TD error|``) for the slots returned by :meth:`sample`.

        Vectorized; a slot repeated in ``indices`` takes the last priority given for it.
        """
        top = write_priorities(self.tree, indices, priorities, epsilon=self.epsilon, alpha=self.alpha,
                               limit=self._size, what="slots")
        if top is not None:
            self.max_priority = max(self.max_priority, top)

    def priorities(self) -> np.ndarray:
        """Stored sampling priorities ``p_i^alpha`` of the filled slots (a read-only view)."""
        return self.tree.leaves[: self._size]

    def clear(self) -> None:
        """Remove every transition and priority; ``frame`` (training progress) is kept."""
        super().clear()
        self.tree.clear()
        self.max_priority = 1.0

    # -- persistence --------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        out = super()._state_arrays()
        out.update(
            priorities=np.array(self.tree.leaves[: self._size]),
            alpha=np.array(self.alpha),
            epsilon=np.array(self.epsilon),
            beta_start=np.array(self.beta_start),
            beta_end=np.array(self.beta_end),
            beta_frames=np.array(self.beta_frames),
            frame=np.array(self.frame),
            max_priority=np.array(self.max_priority),
        )
        return out

    def _validate(self, fields: dict[str, np.ndarray], path: Path) -> dict[str, Any]:
        state = super()._validate(fields, path)
        alpha = self._scalar(fields, "alpha", path, "f")
        if alpha != self.alpha:
            # Leaves hold p^alpha: reading them with another alpha would silently
            # change every sampling probability.
            raise ValueError(f"{path}: saved with alpha={alpha}, this buffer has alpha={self.alpha}")
        prios = self._field(fields, "priorities", path)
        if prios.shape != (state["size"],) or prios.dtype != np.float64:
            raise ValueError(f"{path}: field 'priorities' is {prios.dtype.name}{list(prios.shape)}, "
                             f"expected float64[{state['size']}]")
        if not np.all(np.isfinite(prios)) or (prios.size and prios.min() <= 0):
            raise ValueError(f"{path}: priorities must be finite and > 0")
        frame = self._scalar(fields, "frame", path, "iu")
        max_priority = self._scalar(fields, "max_priority", path, "f")
        if frame < 0 or not (np.isfinite(max_priority) and max_priority > 0):
            raise ValueError(f"{path}: invalid frame {frame} or max_priority {max_priority}")
        state.update(priorities=prios, frame=frame, max_priority=max_priority)
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        frame = state["frame"]
        super()._restore(state)  # calls self.clear(), which resets the tree
        if state["size"]:
            self.tree.update_range(0, state["priorities"])
        self.max_priority = float(state["max_priority"])
        self.frame = int(frame)
