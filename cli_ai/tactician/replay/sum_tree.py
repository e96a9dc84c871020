"""The sum tree under prioritized replay."""

from __future__ import annotations

from typing import Any

import numpy as np

from cli_ai.tactician.replay.common import check_capacity


def write_priorities(tree: "SumTree", indices: Any, priorities: Any, *, epsilon: float, alpha: float,
                     limit: int, what: str = "slots") -> float | None:
    """Set leaves `indices` of `tree` to (|priority| + epsilon) ** alpha, vectorized;
    a repeated index takes the last priority given for it. Returns the largest
    raw priority written (for a buffer's running maximum), None for no indices.
    Shared by the seed-001 buffer and the SB3 adapter so both validate alike."""
    idx = np.asarray(indices, dtype=np.int64).ravel()
    raw = np.abs(np.asarray(priorities, dtype=np.float64).ravel()) + epsilon
    if idx.shape != raw.shape:
        raise ValueError(f"got {idx.size} indices but {raw.size} priorities")
    if idx.size == 0:
        return None
    top = raw.max()
    if not top < np.inf:  # NaN or inf
        raise ValueError("priorities must be finite")
    leaves, values = tree.last_per_leaf(idx, raw**alpha)
    if leaves[0] < 0 or leaves[-1] >= limit:
        raise IndexError(f"indices must be {what} in [0, {limit})")
    tree.set_unique_leaves(leaves, values)
    return float(top)


class SumTree:
    """A binary tree whose every inner node holds the sum of its two children.

    Leaves hold priorities (their sum is ``total_priority``). Finding the leaf where a
    running sum crosses a value ``s`` (``get``) and changing one leaf
    (``update``) are both O(log n). Every operation also takes numpy arrays and
    then runs vectorized over the batch, one tree level at a time.

    Layout: the children of node ``i`` are ``2i`` and ``2i + 1``; leaf ``k``
    (``0 <= k < capacity``) is node ``leaf_offset + k``, ``leaf_offset`` being
    ``capacity`` rounded up to a power of two (padding leaves stay 0 and are
    never drawn). ``tree_idx`` in ``update``/``get`` means this node number, as
    in seed 001.

    The levels above ``top`` (at most 1,024 nodes wide) are not kept up to
    date: a search starts with one ``cumsum`` + ``searchsorted`` over level
    ``top`` instead of descending ten levels one numpy call at a time, and an
    update stops climbing at that level. That takes a third to a half off a
    batch search or update (docs/benchmarks/replay.md); ``total_priority`` is
    the sum of level ``top``.

    A leaf with priority 0 counts as empty: ``get`` never lands on it and
    ``min_priority`` ignores it.

    :param capacity: Number of leaves (stored items); a positive integer.
    """

    #: Widest level summed with one cumsum at search time (2**TOP_LEVEL nodes).
    #: Measured: doubling the cumsum beyond 1,024 nodes costs about as much as
    #: the binary level it saves, so 10 is where the trade-off turns.
    TOP_LEVEL = 10

    def __init__(self, capacity: int):
        self.capacity = check_capacity(capacity)
        # Power-of-two leaves: every leaf at the same depth, so a vectorized
        # descent is exactly the same number of steps for every sample.
        self.depth = (self.capacity - 1).bit_length()
        self.leaf_offset = 1 << self.depth
        self.top = min(self.depth, self.TOP_LEVEL)
        self.tree = np.zeros(2 * self.leaf_offset, dtype=np.float64)
        # Strided views: _left[i] is tree[2i], _right[i] is tree[2i+1]; one
        # gather each instead of computing 2i and 2i+1 first.
        self._left = self.tree[0::2]
        self._right = self.tree[1::2]
        # Scratch space for the exclusive prefix sums of level `top`.
        self._prefix = np.zeros((1 << self.top) + 1, dtype=np.float64)
        # Payloads of `add` (seed API); allocated on first use, so the replay
        # buffers, which keep their data in typed arrays of their own, never pay for it.
        self.data: np.ndarray | None = None
        self.write = 0
        self.n_entries = 0

    # -- seed 001 API -------------------------------------------------------------
    def add(self, priority: float, data: Any = None) -> int:
        """Store ``data`` with ``priority`` in the next slot (FIFO); return its leaf index."""
        leaf = self.write
        if data is not None:
            if self.data is None:
                self.data = np.empty(self.capacity, dtype=object)
            self.data[leaf] = data
        elif self.data is not None:
            self.data[leaf] = None
        self.update_leaves(leaf, priority)
        self.write = (self.write + 1) % self.capacity
        self.n_entries = min(self.n_entries + 1, self.capacity)
        return leaf

    def update(self, tree_idx: int | np.ndarray, priority: float | np.ndarray) -> None:
        """Set the priority of the leaf node(s) ``tree_idx`` (node numbers, see class doc)."""
        if np.ndim(tree_idx) == 0 and np.ndim(priority) == 0:
            self.update_leaves(int(tree_idx) - self.leaf_offset, priority)
        else:
            self.update_leaves(np.asarray(tree_idx, dtype=np.int64) - self.leaf_offset, priority)

    def get(self, priority_sum: float | np.ndarray) -> tuple[Any, Any, Any]:
        """Leaf where the running sum of priorities reaches ``priority_sum``.

        Returns ``(tree_idx, priority, data)``: scalars for a scalar input,
        arrays for an array input (``data`` is None when ``add`` never stored
        any payload). Values are clipped into ``[0, total_priority)``.
        """
        scalar = np.ndim(priority_sum) == 0
        leaves = self.find(np.atleast_1d(np.asarray(priority_sum, dtype=np.float64)))
        nodes = leaves + self.leaf_offset
        prios = self.tree[nodes]
        data = None if self.data is None else self.data[leaves]
        if scalar:
            return int(nodes[0]), float(prios[0]), (None if data is None else data[0])
        return nodes, prios, data

    @property
    def total_priority(self) -> float:
        """Sum of all leaves."""
        return float(self._top_nodes().sum())

    @property
    def max_priority(self) -> float:
        """Largest leaf priority (0.0 when empty). O(capacity): for logging and tests."""
        return float(self.leaves.max())

    @property
    def min_priority(self) -> float:
        """Smallest non-zero leaf priority (0.0 when empty). O(capacity)."""
        leaves = self.leaves
        positive = leaves[leaves > 0]
        return float(positive.min()) if positive.size else 0.0

    def __len__(self) -> int:
        return self.n_entries

    def __getstate__(self) -> dict[str, Any]:
        # _left/_right are views of `tree`; pickled as they are they would come
        # back as independent copies and updates would stop reaching the search.
        state = self.__dict__.copy()
        del state["_left"], state["_right"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._left = self.tree[0::2]
        self._right = self.tree[1::2]

    # -- vectorized core ----------------------------------------------------------
    @property
    def leaves(self) -> np.ndarray:
        """Read-only view of the ``capacity`` leaf priorities."""
        view = self.tree[self.leaf_offset : self.leaf_offset + self.capacity]
        view.flags.writeable = False
        return view

    def _top_nodes(self) -> np.ndarray:
        return self.tree[1 << self.top : 2 << self.top]

    def update_leaves(self, leaves: int | np.ndarray, priorities: float | np.ndarray) -> None:
        """Set leaf priorities by leaf index (0-based) and refresh their ancestors.

        Vectorized for arrays: the leaves are written at once, then each level of
        touched parents is recomputed from its two children in one numpy
        operation. Recomputing (rather than adding deltas) makes repeated
        parents harmless and keeps float error from piling up in inner nodes.
        When a leaf index repeats, the last priority given for it wins.
        """
        tree = self.tree
        levels = self.depth - self.top
        if np.ndim(leaves) == 0 and np.ndim(priorities) == 0:
            # Scalar fast path (one push): a short Python climb beats numpy's
            # per-call overhead for a single leaf.
            leaf = int(leaves)
            if not 0 <= leaf < self.capacity:
                raise IndexError(f"leaf index {leaf} out of range [0, {self.capacity})")
            p = float(priorities)
            if not (p >= 0.0 and p != float("inf")):
                raise ValueError(f"priority must be finite and >= 0, got {p}")
            node = leaf + self.leaf_offset
            tree[node] = p
            for _ in range(levels):
                node >>= 1
                tree[node] = tree[2 * node] + tree[2 * node + 1]
            return
        leaves = np.asarray(leaves, dtype=np.int64).ravel()
        prios = np.broadcast_to(np.asarray(priorities, dtype=np.float64).ravel(), leaves.shape)
        if leaves.size == 0:
            return
        # min catches negatives and NaN (it propagates), max catches +inf.
        if not (prios.min() >= 0.0 and prios.max() < np.inf):
            raise ValueError("priorities must be finite and >= 0")
        leaves, prios = self.last_per_leaf(leaves, prios)
        if leaves[0] < 0 or leaves[-1] >= self.capacity:
            raise IndexError(f"leaf indices must be in [0, {self.capacity})")
        self.set_unique_leaves(leaves, prios)

    @staticmethod
    def last_per_leaf(leaves: np.ndarray, priorities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sorted distinct ``leaves`` with the last priority given for each.

        numpy does not promise which value wins when a fancy-index assignment
        repeats an index, so the last occurrence is picked explicitly. Sorting
        also keeps the upward sweep cache-friendly.
        """
        unique, last = np.unique(leaves[::-1], return_index=True)
        return unique, priorities[::-1][last]

    def set_unique_leaves(self, leaves: np.ndarray, priorities: np.ndarray) -> None:
        """Write distinct, in-range leaves (unchecked; see :meth:`update_leaves`) and climb."""
        tree = self.tree
        nodes = leaves + self.leaf_offset
        tree[nodes] = priorities
        left, right = self._left, self._right
        for _ in range(self.depth - self.top):
            nodes >>= 1
            # Repeated parents just write the same sum twice: harmless.
            tree[nodes] = left[nodes] + right[nodes]

    def update_range(self, start: int, priorities: np.ndarray) -> None:
        """Set the contiguous leaves ``start .. start+len(priorities)-1`` (no wrap-around).

        Cheaper than :meth:`update_leaves` for a block (a batch push or the
        ``n_envs`` cells of one SB3 row): each level is a slice, not a gather.
        """
        prios = np.asarray(priorities, dtype=np.float64).ravel()
        n = prios.size
        if n == 0:
            return
        if start < 0 or start + n > self.capacity:
            raise IndexError(f"leaf range [{start}, {start + n}) not within [0, {self.capacity})")
        if not np.isfinite(prios).all() or prios.min() < 0:
            raise ValueError("priorities must be finite and >= 0")
        tree = self.tree
        lo = start + self.leaf_offset
        hi = lo + n  # exclusive
        tree[lo:hi] = prios
        for _ in range(self.depth - self.top):
            lo >>= 1
            hi = (hi + 1) >> 1
            tree[lo:hi] = self._left[lo:hi] + self._right[lo:hi]

    def clear(self) -> None:
        """Zero every priority and forget stored payloads."""
        self.tree[:] = 0.0
        self.data = None
        self.write = 0
        self.n_entries = 0

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaf indices (0-based) where the prefix sum of priorities reaches ``values``.

        For each value ``v`` returns the leaf ``k`` with
        ``sum(leaves[:k]) <= v < sum(leaves[:k+1])``: drawing ``v`` uniformly
        from ``[0, total)`` draws leaf ``k`` with probability ``leaves[k] / total``.
        Values are clipped into ``[0, total)``. Raises ``ValueError`` when the
        tree is empty.
        """
        # Level `top` in one step: exclusive prefix sums of its nodes, then
        # the node whose cumulative range holds v.
        prefix = self._prefix
        np.cumsum(self._top_nodes(), out=prefix[1:])
        total = prefix[-1]
        if not total > 0.0:
            raise ValueError("cannot sample from a sum tree whose total priority is 0")
        # np.clip costs several times two plain ufunc calls on a small array.
        values = np.minimum(np.maximum(np.asarray(values, dtype=np.float64), 0.0), np.nextafter(total, 0.0))
        j = np.searchsorted(prefix[1:], values, side="right")
        v = values - prefix[j]
        start = j + (1 << self.top)
        idx = start
        left_of = self._left
        for _ in range(self.depth - self.top):
            left = left_of[idx]
            go_right = v >= left
            v -= left * go_right
            idx = 2 * idx + go_right
        # Rounding can, very rarely, carry v just past a subtree's sum and walk
        # into an empty (zero) leaf. Redo only those, with a descent that never
        # steps into an empty subtree.
        empty = self.tree[idx] <= 0.0
        if np.count_nonzero(empty):
            idx[empty] = self._descend_guarded(start[empty], values[empty] - prefix[j[empty]])
        return idx - self.leaf_offset

    def _descend_guarded(self, idx: np.ndarray, v: np.ndarray) -> np.ndarray:
        for _ in range(self.depth - self.top):
            left = self._left[idx]
            right = self._right[idx]
            go_right = ((v >= left) & (right > 0.0)) | (left <= 0.0)
            v = v - left * go_right
            idx = 2 * idx + go_right
        # Starting from a non-empty node and never entering an empty child,
        # the leaf reached is non-empty.
        return idx
