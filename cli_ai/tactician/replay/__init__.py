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

from cli_ai.tactician.replay.buffer import ReplayBuffer
from cli_ai.tactician.replay.prioritized import PrioritizedReplayBuffer
from cli_ai.tactician.replay.common import Experience
from cli_ai.tactician.replay.sum_tree import SumTree, write_priorities

__all__ = ["Experience", "ReplayBuffer", "PrioritizedReplayBuffer", "SumTree", "write_priorities"]
