"""Backends: where knob values live (kernel, memory, broker config, a program's flags)."""

from __future__ import annotations

from typing import Any

from cli_ai.core.backend import Backend, Value
from cli_ai.tactician.backends.simulated import SimulatedBackend
from cli_ai.tactician.backends.sysctl import SysctlBackend


def backend_from_description(desc: dict[str, Any]) -> Backend:
    """Rebuild a backend from `Backend.describe()` (as stored in a journal)."""
    kind = desc.get("kind")
    config = desc.get("config", {})
    if kind == "sysctl":
        return SysctlBackend(**config)
    if kind == "mosquitto":
        from cli_ai.broker.backend import MosquittoBackend

        return MosquittoBackend.from_description(config)
    raise ValueError(f"the journal names an unknown backend kind {kind!r}")


__all__ = ["Backend", "Value", "SimulatedBackend", "SysctlBackend", "backend_from_description"]
