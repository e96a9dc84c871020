"""The one small interface every place where knobs live implements.

Backends read and write values and describe themselves; they never decide
what is safe (the safety checks and the Guard do that).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Mapping, Sequence, Union

# A knob's native value: an int or float, a string (enum), or a tuple of ints
# (multi-value sysctls such as net.ipv4.tcp_rmem).
Value = Union[int, float, str, tuple]


class Backend(ABC):
    """Where knob values live."""

    kind: str = "abstract"
    #: Whether writes change the machine: such backends are journaled and locked.
    changes_machine: bool = True

    @abstractmethod
    def read(self, names: Sequence[str]) -> dict[str, Value]:
        """Current values of `names`."""

    @abstractmethod
    def write(self, values: Mapping[str, Value]) -> None:
        """Apply `values`; raise BackendWriteError naming the first one not taken."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able `{"kind": ..., "config": {...}}`, enough to rebuild the
        backend for `cli-ai rollback` after a crash."""

    def exists(self, name: str) -> bool:
        """Whether `name` exists on this target."""
        return True

    def close(self) -> None:
        """Release what the backend holds (processes, files)."""

    def managed_files(self) -> list[tuple[str, str]]:
        """(file, backup) pairs this backend writes besides its values: the
        only files, with cli-ai's sysctl.d file, that `cli-ai rollback` puts
        back when a journal names them."""
        return []

    def finish_rollback(self, restored: bool) -> None:
        """After `cli-ai rollback` restored through this backend (`restored`:
        every value is back): release what only a crashed run held (a managed
        PostgreSQL cluster whose cli-ai was killed is stopped and removed)."""

    def rollback_notes(self) -> list[str]:
        """What the person still has to do after `cli-ai rollback` restored
        through this backend (say, reload a service: no command is ever taken
        from a journal)."""
        return []


def to_json_value(value: Value) -> Any:
    return list(value) if isinstance(value, tuple) else value


def from_json_value(value: Any) -> Value:
    return tuple(value) if isinstance(value, list) else value


def same_value(a: Value, b: Value) -> bool:
    """Compare values the way the kernel reports them (tuples vs lists, 1 vs True)."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)
    if isinstance(a, str) or isinstance(b, str):
        return " ".join(str(a).split()) == " ".join(str(b).split())
    return a == b


def format_sysctl_value(value: Value) -> str:
    """A value as /proc/sys and sysctl.d files spell it (vectors tab-separated)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (tuple, list)):
        return "\t".join(str(int(v)) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
