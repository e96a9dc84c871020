"""Backends: where knob values live (kernel, memory, broker config, a program's flags)."""

from __future__ import annotations

import os
from typing import Any

from cli_ai.core.backend import Backend, Value
from cli_ai.tactician.backends.simulated import SimulatedBackend
from cli_ai.tactician.backends.sysctl import PROC_SYS, SysctlBackend


def backend_from_description(desc: dict[str, Any]) -> Backend:
    """Rebuild a backend from `Backend.describe()` as a journal stored it, for
    `cli-ai rollback`. The description is untrusted: it may not move the
    backend anywhere (the sysctl root is /proc/sys) nor name a command; a
    description that tries is a ValueError (the Guard turns it into exit 2)."""
    kind = desc.get("kind")
    config = desc.get("config", {})
    if not isinstance(config, dict):
        raise ValueError("config must be an object")
    if kind == "sysctl":
        extra = sorted(set(config) - {"root"})
        if extra:
            raise ValueError(f"a sysctl backend has no setting {extra[0][:40]!r}")
        root = config.get("root", PROC_SYS)
        if not isinstance(root, str) or os.path.normpath(root) != PROC_SYS:
            raise ValueError(f"the sysctl backend's root is {PROC_SYS}, never {str(root)[:200]!r}: a journal "
                             "cannot move it")
        return SysctlBackend(PROC_SYS)
    if kind == "mosquitto":
        from cli_ai.broker.backend import MosquittoBackend

        return MosquittoBackend.from_description(config)
    if kind == "postgres":
        from cli_ai.targets.postgres.backend import PostgresBackend

        return PostgresBackend.from_description(config)
    raise ValueError(f"unknown backend kind {str(kind)[:40]!r}")


__all__ = ["Backend", "Value", "SimulatedBackend", "SysctlBackend", "backend_from_description"]
