"""`ReplayBuffer`: uniform experience replay (seed 001's API), saved to and
loaded from one file."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cli_ai.tactician.replay.common import BIT_GENERATORS, FORMAT_VERSION, Experience, check_batch_size, check_capacity


class ReplayBuffer:
    """Fixed-size FIFO buffer of transitions with uniform sampling.

    :param capacity: Maximum number of transitions; the oldest is evicted first.
    :param seed: Seed of the buffer's own ``numpy.random.Generator`` (sampling is
        reproducible for a given seed and push sequence).
    """

    def __init__(self, capacity: int, seed: int | None = None):
        self.capacity = check_capacity(capacity)
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
        batch_size = check_batch_size(batch_size)
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
            if name not in BIT_GENERATORS:
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
