"""Experience replay: uniform, prioritized, and the sum tree under both.

Three classes with the API of seed 001 (``Experience``, ``ReplayBuffer``,
``PrioritizedReplayBuffer``, ``SumTree``), built for speed:

* Storage is a set of preallocated numpy arrays (one per field), allocated on
  the first ``push`` once the shapes are known, written in place as a ring
  (FIFO eviction). No deque of Python objects, no per-item copies at sample time
  beyond the fancy-indexed batch itself.
* The sum tree is one flat ``float64`` array in heap layout with a power-of-two
  number of leaves, so every leaf has the same depth. A batch of prefix sums
  descends the tree *level by level* for the whole batch at once (a handful of
  numpy operations per level on 256 numbers, instead of 256 x 20 Python steps
  for a million leaves), after jumping over the top ten levels with one
  ``cumsum`` + ``searchsorted``. A batch of priority updates climbs back the
  same way, recomputing each touched parent from its two children.
  Recomputing (instead of adding deltas) means duplicate indices in a batch are
  harmless and float error never accumulates in the inner nodes.
* ``save``/``load`` use ``.npz`` with ``allow_pickle=False``: a replay file is
  data, never code. A file of the wrong kind, version, capacity or shape, or a
  corrupt one, is refused with a ``ValueError`` that says which.

Dtypes are the ones PyTorch wants: states float32, rewards/dones/weights
float32, actions int64 for discrete actions. Continuous actions are accepted
too: when the first pushed action is a float (scalar or array), actions are
stored as float32 instead, so the same buffer serves DQN and DDPG-style agents.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Experience", "ReplayBuffer", "PrioritizedReplayBuffer", "SumTree"]

Experience = namedtuple("Experience", ["state", "action", "reward", "next_state", "done"])
Experience.__doc__ = "One transition: (state, action, reward, next_state, done)."

#: Bumped whenever the layout of a saved ``.npz`` changes; ``load`` refuses others.
FORMAT_VERSION = 1

#: Bit generators whose state a saved file may restore (numpy's own).
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _check_capacity(capacity: Any) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)):
        raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
    if capacity <= 0:
        raise ValueError(f"capacity must be a positive integer, got {capacity}")
    return int(capacity)


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


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
        self.capacity = _check_capacity(capacity)
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


class ReplayBuffer:
    """Fixed-size FIFO buffer of transitions with uniform sampling.

    :param capacity: Maximum number of transitions; the oldest is evicted first.
    :param seed: Seed of the buffer's own ``numpy.random.Generator`` (sampling is
        reproducible for a given seed and push sequence).
    """

    def __init__(self, capacity: int, seed: int | None = None):
        self.capacity = _check_capacity(capacity)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._pos = 0  # next slot to write
        self._size = 0
        # Allocated on the first push, when shapes and the action kind are known.
        self._states: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._rewards: np.ndarray | None = None
        self._next_states: np.ndarray | None = None
        self._dones: np.ndarray | None = None

    # -- storage ------------------------------------------------------------------
    @property
    def state_shape(self) -> tuple[int, ...] | None:
        return None if self._states is None else self._states.shape[1:]

    @property
    def action_dtype(self) -> np.dtype | None:
        """int64 (discrete actions) or float32 (continuous), fixed by the first push."""
        return None if self._actions is None else self._actions.dtype

    def _allocate(self, state_shape: tuple[int, ...], action_shape: tuple[int, ...], action_dtype: Any) -> None:
        n = self.capacity
        # np.zeros maps pages lazily: a large, mostly empty buffer costs little memory.
        self._states = np.zeros((n, *state_shape), dtype=np.float32)
        self._next_states = np.zeros((n, *state_shape), dtype=np.float32)
        self._actions = np.zeros((n, *action_shape), dtype=action_dtype)
        self._rewards = np.zeros(n, dtype=np.float32)
        self._dones = np.zeros(n, dtype=np.float32)

    def _convert(self, states: Any, actions: Any, next_states: Any, batch: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Convert to the storage dtypes, checking shapes against earlier pushes."""
        s = np.asarray(states, dtype=np.float32)
        ns = np.asarray(next_states, dtype=np.float32)
        a = np.asarray(actions)
        if self._states is None:
            # The first action fixes the kind: integers -> int64 (discrete),
            # floats -> float32 (continuous).
            if a.dtype.kind in "biu":
                action_dtype = np.int64
            elif a.dtype.kind == "f":
                action_dtype = np.float32
            else:
                raise ValueError(f"actions must be integers or floats, got dtype {a.dtype}")
            self._allocate(s.shape[1:] if batch else s.shape, a.shape[1:] if batch else a.shape, action_dtype)
        item_state = s.shape[1:] if batch else s.shape
        if item_state != self.state_shape or ns.shape != s.shape:
            raise ValueError(
                f"state shape {item_state} / next_state shape {ns.shape[1:] if batch else ns.shape} "
                f"does not match the buffer's state shape {self.state_shape}"
            )
        item_action = a.shape[1:] if batch else a.shape
        if item_action != self._actions.shape[1:]:
            raise ValueError(f"action shape {item_action} does not match the buffer's {self._actions.shape[1:]}")
        if self._actions.dtype == np.int64 and a.dtype.kind == "f":
            # A discrete buffer only takes floats that are whole numbers (e.g. 3.0).
            if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
                raise ValueError("this buffer stores discrete (int64) actions; got a non-integer action")
        elif a.dtype.kind not in "biuf":
            raise ValueError(f"actions must be integers or floats, got dtype {a.dtype}")
        return s, a, ns

    def push(self, state: Any, action: Any, reward: float, next_state: Any, done: bool) -> int:
        """Store one transition (converted to the storage dtypes); return its slot index."""
        s, a, ns = self._convert(state, action, next_state, batch=False)
        i = self._pos
        self._states[i] = s
        self._actions[i] = a
        self._rewards[i] = reward
        self._next_states[i] = ns
        self._dones[i] = float(done)
        self._pos = (i + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)
        return i

    def extend(self, states: Any, actions: Any, rewards: Any, next_states: Any, dones: Any) -> np.ndarray:
        """Store a batch of transitions (first axis = batch) in one go; return their slots.

        Equivalent to pushing them one by one, in order; when the batch is longer
        than the capacity only its last ``capacity`` items remain.
        """
        s, a, ns = self._convert(states, actions, next_states, batch=True)
        r = np.asarray(rewards, dtype=np.float32).reshape(-1)
        d = np.asarray(dones, dtype=np.float32).reshape(-1)
        n = s.shape[0]
        if not (a.shape[0] == r.shape[0] == d.shape[0] == ns.shape[0] == n):
            raise ValueError("states, actions, rewards, next_states and dones must have the same length")
        if n > self.capacity:  # only the tail survives FIFO eviction
            skip = n - self.capacity
            self._pos = (self._pos + skip) % self.capacity
            self._size = min(self.capacity, self._size + skip)
            s, a, r, ns, d = s[skip:], a[skip:], r[skip:], ns[skip:], d[skip:]
            n = self.capacity
        slots = (self._pos + np.arange(n)) % self.capacity
        self._states[slots] = s
        self._actions[slots] = a
        self._rewards[slots] = r
        self._next_states[slots] = ns
        self._dones[slots] = d
        self._pos = (self._pos + n) % self.capacity
        self._size = min(self._size + n, self.capacity)
        return slots

    def _gather(self, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        return (self._states[idx], self._actions[idx], self._rewards[idx], self._next_states[idx], self._dones[idx])

    def sample(self, batch_size: int) -> tuple[np.ndarray, ...]:
        """Draw ``batch_size`` distinct transitions uniformly.

        Returns ``(states, actions, rewards, next_states, dones)`` with shapes
        ``(B, *state_shape)``, ``(B, *action_shape)``, ``(B,)``, ``(B, *state_shape)``, ``(B,)``.
        Raises ``ValueError`` when the buffer holds fewer than ``batch_size``.
        """
        batch_size = _check_batch_size(batch_size)
        if batch_size > self._size:
            raise ValueError(f"cannot sample {batch_size} transitions from a buffer holding {self._size}")
        idx = self._rng.choice(self._size, size=batch_size, replace=False)
        return self._gather(idx)

    def __len__(self) -> int:
        return self._size

    def is_ready(self, batch_size: int) -> bool:
        """True when at least ``batch_size`` transitions are stored."""
        return self._size >= batch_size

    def clear(self) -> None:
        """Remove every transition (the next push may use new shapes)."""
        self._pos = 0
        self._size = 0
        self._states = self._actions = self._rewards = self._next_states = self._dones = None

    def __getitem__(self, index: int) -> Experience:
        """The transition in slot ``index`` (0 <= index < len)."""
        if not 0 <= index < self._size:
            raise IndexError(f"index {index} out of range for a buffer holding {self._size}")
        return Experience(
            self._states[index], self._actions[index], float(self._rewards[index]),
            self._next_states[index], bool(self._dones[index]),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(capacity={self.capacity}, size={self._size})"

    # -- persistence --------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Everything ``save`` writes; subclasses add their own fields."""
        out: dict[str, np.ndarray] = {
            "kind": np.array(type(self).__name__),
            "version": np.array(FORMAT_VERSION),
            "capacity": np.array(self.capacity),
            "size": np.array(self._size),
            "pos": np.array(self._pos),
            # The generator's state as JSON text, so a loaded buffer draws the
            # same batches the saved one would have drawn next.
            "rng_state": np.array(json.dumps(self._rng.bit_generator.state)),
            "allocated": np.array(self._states is not None),
        }
        if self._states is not None:
            n = self._size  # slots [0, size) are exactly the filled ones (ring fills from 0)
            out.update(
                states=self._states[:n], actions=self._actions[:n], rewards=self._rewards[:n],
                next_states=self._next_states[:n], dones=self._dones[:n],
                state_shape=np.array(self._states.shape[1:], dtype=np.int64),
                action_shape=np.array(self._actions.shape[1:], dtype=np.int64),
                action_dtype=np.array(self._actions.dtype.name),
            )
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write the buffer to ``path`` as an uncompressed ``.npz`` (no pickle).

        The file is written next to ``path`` and renamed into place, so an
        interrupted save never leaves a half-written file under that name.
        """
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            np.savez(f, **self._state_arrays())
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike) -> None:
        """Replace this buffer's contents with the one saved at ``path``.

        Raises ``ValueError`` (and leaves the buffer unchanged) when the file is
        not a replay buffer of this kind, version and capacity, when its arrays
        have inconsistent shapes or dtypes, or when it is corrupt.
        ``FileNotFoundError`` when it does not exist.
        """
        path = Path(path)
        kind = type(self).__name__
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array
                raise ValueError("a single array, not an .npz archive")
            with loaded as z:
                fields = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
            raise ValueError(f"{path}: not a readable {kind} file ({e})") from e
        state = self._validate(fields, path)
        self._restore(state)

    def _field(self, fields: dict[str, np.ndarray], name: str, path: Path) -> np.ndarray:
        if name not in fields:
            raise ValueError(f"{path}: not a {type(self).__name__} file (missing field {name!r})")
        return fields[name]

    def _scalar(self, fields: dict[str, np.ndarray], name: str, path: Path, kind: str) -> Any:
        arr = self._field(fields, name, path)
        if arr.shape != () or arr.dtype.kind not in kind:
            raise ValueError(f"{path}: field {name!r} has the wrong type ({arr.dtype}, shape {arr.shape})")
        return arr.item()

    def _validate(self, fields: dict[str, np.ndarray], path: Path) -> dict[str, Any]:
        """Check a loaded file completely before anything in ``self`` changes."""
        kind = type(self).__name__
        file_kind = self._scalar(fields, "kind", path, "U")
        if file_kind != kind:
            raise ValueError(f"{path}: holds a {file_kind}, not a {kind}")
        version = self._scalar(fields, "version", path, "iu")
        if version != FORMAT_VERSION:
            raise ValueError(f"{path}: format version {version}, this code reads version {FORMAT_VERSION}")
        capacity = self._scalar(fields, "capacity", path, "iu")
        if capacity != self.capacity:
            raise ValueError(f"{path}: saved with capacity {capacity}, this buffer has capacity {self.capacity}")
        size = self._scalar(fields, "size", path, "iu")
        pos = self._scalar(fields, "pos", path, "iu")
        if not 0 <= size <= capacity or not 0 <= pos < capacity or (size < capacity and pos != size):
            raise ValueError(f"{path}: inconsistent size {size} / position {pos} for capacity {capacity}")
        try:
            rng_state = json.loads(self._scalar(fields, "rng_state", path, "U"))
            name = rng_state["bit_generator"]
            if name not in _BIT_GENERATORS:
                raise ValueError(f"unknown bit generator {name!r}")
            rng = np.random.Generator(getattr(np.random, name)())
            rng.bit_generator.state = rng_state
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{path}: unreadable random generator state ({e})") from e
        state: dict[str, Any] = {"size": size, "pos": pos, "rng": rng, "arrays": None}
        allocated = self._scalar(fields, "allocated", path, "b")
        if not allocated:
            if size:
                raise ValueError(f"{path}: claims {size} transitions but stores no arrays")
            return state
        state_shape = tuple(int(x) for x in self._field(fields, "state_shape", path))
        action_shape = tuple(int(x) for x in self._field(fields, "action_shape", path))
        action_dtype = self._scalar(fields, "action_dtype", path, "U")
        if action_dtype not in ("int64", "float32"):
            raise ValueError(f"{path}: action dtype {action_dtype!r} is neither int64 nor float32")
        expected = {
            "states": ((size, *state_shape), "float32"),
            "next_states": ((size, *state_shape), "float32"),
            "actions": ((size, *action_shape), action_dtype),
            "rewards": ((size,), "float32"),
            "dones": ((size,), "float32"),
        }
        arrays = {}
        for name, (shape, dtype) in expected.items():
            arr = self._field(fields, name, path)
            if arr.shape != shape or arr.dtype.name != dtype:
                raise ValueError(
                    f"{path}: field {name!r} is {arr.dtype.name}{list(arr.shape)}, expected {dtype}{list(shape)}"
                )
            arrays[name] = arr
        state["arrays"] = arrays
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        self.clear()
        arrays = state["arrays"]
        if arrays is not None:
            self._allocate(arrays["states"].shape[1:], arrays["actions"].shape[1:], arrays["actions"].dtype)
            n = state["size"]
            self._states[:n] = arrays["states"]
            self._actions[:n] = arrays["actions"]
            self._rewards[:n] = arrays["rewards"]
            self._next_states[:n] = arrays["next_states"]
            self._dones[:n] = arrays["dones"]
        self._size = state["size"]
        self._pos = state["pos"]
        self._rng = state["rng"]


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
        batch_size = _check_batch_size(batch_size)
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
