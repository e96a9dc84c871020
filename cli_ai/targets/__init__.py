"""One Target per kind of thing cli-ai tunes, and the registry that maps a
spec's `target` to it (see `base.Target` for the contract)."""

from __future__ import annotations

from cli_ai.targets.base import Target, TargetSession
from cli_ai.targets.command import CommandTarget
from cli_ai.targets.mosquitto import BrokerTarget
from cli_ai.targets.postgres import PostgresTarget
from cli_ai.targets.simulated import AutoscalingTarget, SchedulerTarget
from cli_ai.targets.sysctl import SysctlTarget

TARGETS: dict[str, Target] = {
    t.name: t for t in (SysctlTarget(), CommandTarget(), BrokerTarget(), PostgresTarget(), AutoscalingTarget(),
                          SchedulerTarget())
}


def get_target(name: str) -> Target:
    """The Target of a spec's `target` (the schema allows only these names)."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"target: {name!r} is not one of {', '.join(TARGETS)}") from None


def knob_targets() -> list[str]:
    return [name for name, t in TARGETS.items() if t.search == "knobs"]


__all__ = ["Target", "TargetSession", "TARGETS", "get_target", "knob_targets"]
