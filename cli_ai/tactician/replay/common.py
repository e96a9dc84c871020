"""What the replay buffers share: the transition type, the saved-file format
version, and their argument checks."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

Experience = namedtuple("Experience", ["state", "action", "reward", "next_state", "done"])
Experience.__doc__ = "One transition: (state, action, reward, next_state, done)."

#: Bumped whenever the layout of a saved ``.npz`` changes; ``load`` refuses others.
FORMAT_VERSION = 1

#: Bit generators whose state a saved file may restore (numpy's own).
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def check_capacity(capacity: Any) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)):
        raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
    if capacity <= 0:
        raise ValueError(f"capacity must be a positive integer, got {capacity}")
    return int(capacity)


def check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)
