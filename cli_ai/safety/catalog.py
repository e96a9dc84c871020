"""The safety catalogue: which sysctls cli-ai may touch and within which ranges.

The ranges are data (`catalog.json`), each with its source in the kernel
documentation; this module only loads and queries them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).with_name("catalog.json")


@dataclass(frozen=True)
class ElementRange:
    min: int
    max: int
    scale: str = "linear"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    type: str
    description: str
    source: str
    unit: str = ""
    netns: bool = False
    min: float | None = None
    max: float | None = None
    values: tuple[Any, ...] | None = None
    elements: tuple[ElementRange, ...] | None = None
    ordered: str | None = None  # "non-decreasing" | "increasing" for vectors
    scale: str = "linear"
    default: Any = None
    range_note: str | None = None
    removed_in: str | None = None

    def range_text(self) -> str:
        """The safe range as a short human string."""
        if self.type == "bool":
            return "0 or 1"
        if self.type == "enum":
            return " | ".join(map(str, self.values or ()))
        if self.type == "vector":
            return " ".join(f"[{e.min}..{e.max}]" for e in self.elements or ())
        return f"{_fmt(self.min)}..{_fmt(self.max)}"

    @property
    def safe_min(self) -> float:
        return 0 if self.type == "bool" else self.min  # type: ignore[return-value]

    @property
    def safe_max(self) -> float:
        return 1 if self.type == "bool" else self.max  # type: ignore[return-value]


def _fmt(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return str(x)


def _entry(name: str, raw: dict[str, Any]) -> CatalogEntry:
    elements = raw.get("elements")
    return CatalogEntry(
        name=name,
        type=raw["type"],
        description=raw["description"],
        source=raw["source"],
        unit=raw.get("unit", ""),
        netns=bool(raw.get("netns", False)),
        min=raw.get("min"),
        max=raw.get("max"),
        values=tuple(raw["values"]) if "values" in raw else None,
        elements=tuple(ElementRange(e["min"], e["max"], e.get("scale", "linear")) for e in elements)
        if elements
        else None,
        ordered=raw.get("ordered"),
        scale=raw.get("scale", "linear"),
        default=tuple(raw["default"]) if isinstance(raw.get("default"), list) else raw.get("default"),
        range_note=raw.get("range_note"),
        removed_in=raw.get("removed_in"),
    )


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, CatalogEntry]:
    """All sysctl entries by name."""
    data = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    return {name: _entry(name, raw) for name, raw in data["sysctl"].items()}


def lookup(name: str) -> CatalogEntry | None:
    return load_catalog().get(name)


def search(term: str | None = None) -> list[CatalogEntry]:
    """Entries whose name or description contains `term` (case-insensitive)."""
    entries = sorted(load_catalog().values(), key=lambda e: e.name)
    if not term:
        return entries
    t = term.lower()
    return [e for e in entries if t in e.name.lower() or t in e.description.lower()]


# --------------------------------------------------------------------------- mosquitto

#: How a mosquitto option takes effect (the catalogue's "reload" field, from
#: mosquitto.conf(5) of mosquitto 2.0):
#:   "reload"          - re-read on SIGHUP and applied to every client;
#:   "new-connections" - re-read on SIGHUP but used only when a client connects
#:                       (set_tcp_nodelay, max_keepalive): a managed broker
#:                       restarts so that the workload's long-lived clients see it;
#:   "restart"         - not reloaded (listener options such as max_connections):
#:                       only a restart applies it.
MOSQUITTO_RELOAD_KINDS = ("reload", "new-connections", "restart")


@dataclass(frozen=True)
class MosquittoOption:
    """One mosquitto.conf option cli-ai may tune: its safe range (`entry`, the
    same shape as a sysctl's, so the same range checks apply), how it takes
    effect (`reload`) and whether it belongs to a listener (`scope`)."""

    entry: CatalogEntry
    reload: str = "reload"
    scope: str = "global"  # "global" | "listener"

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def type(self) -> str:
        return self.entry.type

    @property
    def default(self) -> Any:
        return self.entry.default


@lru_cache(maxsize=1)
def load_mosquitto_catalog() -> dict[str, MosquittoOption]:
    """All mosquitto options by name (the catalogue's "mosquitto" section)."""
    data = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    out: dict[str, MosquittoOption] = {}
    for name, raw in data.get("mosquitto", {}).items():
        reload = raw.get("reload", "reload")
        if reload not in MOSQUITTO_RELOAD_KINDS:
            raise ValueError(f"catalog.json: mosquitto.{name}.reload {reload!r} is not one of {MOSQUITTO_RELOAD_KINDS}")
        out[name] = MosquittoOption(_entry(name, raw), reload, raw.get("scope", "global"))
    return out


