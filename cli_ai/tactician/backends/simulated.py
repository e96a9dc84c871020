"""An in-memory stand-in for the machine: dry runs and tests write here."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from cli_ai.errors import BackendWriteError
from cli_ai.core.backend import Backend, Value
from cli_ai.safety.constraints import exclusive_twin

ALWAYS_ZEROES_TWIN = ("vm.dirty_background_ratio", "vm.dirty_background_bytes")


class SimulatedBackend(Backend):
    """Keeps values in a dict. Nothing outside the process is touched.

    `refuse(name, value)` may return a reason to reject a write, so tests can
    exercise the failure paths a real kernel would take. Like the kernel, a
    write that changes one of an exclusive pair (vm.dirty_ratio and
    vm.dirty_bytes, the catalogue's "exclusive" constraints) zeroes its twin."""

    kind = "simulated"
    changes_machine = False

    def __init__(
        self,
        initial: Mapping[str, Value] | None = None,
        refuse: Callable[[str, Value], str | None] | None = None,
    ):
        self.values: dict[str, Value] = dict(initial or {})
        self.refuse = refuse
        self.writes: list[dict[str, Value]] = []

    def exists(self, name: str) -> bool:
        return name in self.values

    def read(self, names: Sequence[str]) -> dict[str, Value]:
        missing = [n for n in names if n not in self.values]
        if missing:
            raise BackendWriteError(f"{missing[0]}: unknown to the simulated system")
        return {n: self.values[n] for n in names}

    def write(self, values: Mapping[str, Value]) -> None:
        for name, value in values.items():
            reason = self.refuse(name, value) if self.refuse else None
            if reason:
                raise BackendWriteError(f"{name}: {reason}")
            twin = exclusive_twin(name)
            # mm/page-writeback.c: dirty_ratio_handler() and dirty_bytes_handler() zero
            # the twin when the value changes; the two background handlers on every write
            changed = self.values.get(name) != value
            if twin is not None and twin in self.values and (changed or name in ALWAYS_ZEROES_TWIN):
                self.values[twin] = 0
            self.values[name] = value
        self.writes.append(dict(values))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": {}}
