"""The PostgreSQL settings cli-ai may tune (`catalog.json`, each safe range
with its source in the PostgreSQL docs), sized for this machine, and the
cross-check of a spec's knobs against a server's own `pg_settings`.

Pure data and pure functions: the safety check of a dry run needs no server;
the real run adds the server's answer (`cross_check`)."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from cli_ai.safety.catalog import CatalogEntry

CATALOG_FILE = Path(__file__).with_name("catalog.json")

#: A unit's size in its family's base (bytes, microseconds). pg_settings
#: spells units as "8kB", "16MB", "kB", "ms", "s", "min"; knobs use the short ones.
_MEMORY = {"B": 1, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
_TIME = {"us": 1, "ms": 1000, "s": 1_000_000, "min": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}


def unit_factor(unit: str) -> tuple[str, float] | None:
    """("memory" | "time", size in bytes or microseconds) of a unit such as
    "8kB", "MB" or "ms"; None for a unitless setting."""
    if not unit:
        return None
    m = re.fullmatch(r"(\d*)\s*([A-Za-z]+)", unit.strip())
    if not m:
        raise ValueError(f"unknown unit {unit!r}")
    count = int(m[1]) if m[1] else 1
    if m[2] in _MEMORY:
        return "memory", count * _MEMORY[m[2]]
    if m[2] in _TIME:
        return "time", count * _TIME[m[2]]
    raise ValueError(f"unknown unit {unit!r}")


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """`value` in `from_unit` (pg_settings' unit) as a number of `to_unit`."""
    a, b = unit_factor(from_unit), unit_factor(to_unit)
    if a is None or b is None:
        if a is None and b is None:
            return value
        raise ValueError(f"cannot convert between {from_unit or 'no unit'} and {to_unit or 'no unit'}")
    if a[0] != b[0]:
        raise ValueError(f"cannot convert {from_unit} to {to_unit}")
    return value * a[1] / b[1]


@dataclass(frozen=True)
class PgSetting:
    """One catalogued setting, its safe range resolved for this machine."""

    name: str
    entry: CatalogEntry  # type, range, unit, description, source (the shared range checks use it)
    context: str  # what the docs say a change needs: postmaster = a restart
    risk: str | None = None  # a durability-reducing setting: what it risks

    @property
    def unit(self) -> str:
        return self.entry.unit

    @property
    def needs_restart(self) -> bool:
        return self.context == "postmaster"


def machine_memory_mb() -> int:
    """This machine's memory in MB (/proc/meminfo, else sysconf)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024))


def _entry(name: str, raw: Mapping[str, Any], memory_mb: int, cpus: int) -> CatalogEntry:
    lo, hi = raw.get("min"), raw.get("max")
    note = None
    if "max_memory_fraction" in raw:
        frac = float(raw["max_memory_fraction"])
        size_mb = memory_mb * frac
        hi = max(int(lo or 1), int(convert(size_mb, "MB", raw["unit"])))
        note = f"at most {frac:.0%} of this machine's {memory_mb} MB of memory"
    if "max_cpus" in raw:
        hi = max(int(lo or 0), int(cpus * float(raw["max_cpus"])))
        note = f"at most this machine's {cpus} CPUs"
    return CatalogEntry(name=name, type=raw["type"], description=raw.get("description", ""),
                        source=raw.get("source", raw.get("risk", "")), unit=raw.get("unit", ""), min=lo, max=hi,
                        values=tuple(raw["values"]) if "values" in raw else None, scale=raw.get("scale", "linear"),
                        range_note=note, default=raw.get("default"))


@lru_cache(maxsize=4)
def _load(memory_mb: int, cpus: int) -> tuple[dict[str, PgSetting], dict[str, PgSetting]]:
    data = json.loads(CATALOG_FILE.read_text())
    settings = {n: PgSetting(n, _entry(n, raw, memory_mb, cpus), raw.get("context", "user"))
                for n, raw in data["settings"].items()}
    denied = {n: PgSetting(n, _entry(n, raw, memory_mb, cpus), raw.get("context", "user"), risk=raw["risk"])
              for n, raw in data["denied"].items()}
    return settings, denied


def catalog(memory_mb: int | None = None, cpus: int | None = None) -> dict[str, PgSetting]:
    """The tunable settings, sized for this machine (or the given one)."""
    return _load(memory_mb or machine_memory_mb(), cpus or os.cpu_count() or 1)[0]


def durability_settings(memory_mb: int | None = None) -> dict[str, PgSetting]:
    """The settings that trade durability for speed (refused unless the spec
    accepts the risk by name)."""
    return _load(memory_mb or machine_memory_mb(), os.cpu_count() or 1)[1]


def lookup(name: str, *, allow_risk: bool = False) -> PgSetting | None:
    found = catalog().get(name)
    if found is None and allow_risk:
        found = durability_settings().get(name)
    return found


# ------------------------------------------------------------------ values: native <-> SQL text


def sql_text(setting: PgSetting, value: Any) -> str:
    """A knob value as PostgreSQL takes it: memory and times with their unit
    ('512MB', '300s'), bools on/off, numbers in full precision."""
    e = setting.entry
    if e.type == "bool":
        return "on" if value in (True, 1) else "off"
    if e.type == "enum":
        return str(value)
    if e.type == "int":
        return f"{int(value)}{e.unit}"
    return repr(float(value))


def display_text(setting: PgSetting, value: Any) -> str:
    """A value for people (summary, conf export): 512MB, 1GB, 300s, on."""
    e = setting.entry
    if e.type == "int" and e.unit == "MB" and int(value) >= 1024 and int(value) % 1024 == 0:
        return f"{int(value) // 1024}GB"
    if e.type == "float":
        return f"{float(value):.6g}"
    return sql_text(setting, value)


def from_pg(setting: PgSetting, raw: str, pg_unit: str | None) -> Any:
    """pg_settings' `setting` (text, in `pg_unit`) as the knob's native value."""
    e = setting.entry
    if e.type == "bool":
        return raw == "on"
    if e.type == "enum":
        return raw
    number = float(raw)
    if e.unit:
        number = convert(number, pg_unit or "", e.unit)
    if e.type == "int":
        return int(round(number))
    return number


# ------------------------------------------------------------------ the server's own view


@dataclass(frozen=True)
class ServerSetting:
    """One row of pg_settings."""

    name: str
    vartype: str  # bool, enum, integer, real, string
    unit: str | None
    context: str
    min_val: str | None
    max_val: str | None
    enumvals: tuple[str, ...] | None
    setting: str
    pending_restart: bool = False


_VARTYPE = {"int": "integer", "float": "real", "bool": "bool", "enum": "enum"}


def cross_check(knobs: list[tuple[str, str, Any, Any, tuple | None]], server: Mapping[str, ServerSetting],
                catalogue: Mapping[str, PgSetting]) -> list[str]:
    """Problems of the spec's knobs (name, type, min, max, enum values) on
    this server: a setting it lacks, another type, a range it rejects, an
    enum value it was built without."""
    problems = []
    for name, _type, lo, hi, values in knobs:
        s = server.get(name)
        setting = catalogue.get(name)
        if s is None:
            problems.append(f"{name}: this server has no such setting (not in pg_settings)")
            continue
        if setting is None:
            continue
        if _VARTYPE.get(setting.entry.type) != s.vartype:
            problems.append(f"{name}: the server's type is {s.vartype}, the catalogue's {setting.entry.type}")
            continue
        if s.vartype in ("integer", "real") and s.min_val is not None and s.max_val is not None:
            try:
                smin = convert(float(s.min_val), s.unit or "", setting.unit) if setting.unit else float(s.min_val)
                smax = convert(float(s.max_val), s.unit or "", setting.unit) if setting.unit else float(s.max_val)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                continue
            for label, v in (("min", lo), ("max", hi)):
                if v is not None and not (smin - 1e-9 <= float(v) <= smax + 1e-9):
                    problems.append(f"{name}: {label} {v} is outside what the server accepts "
                                    f"({_num(smin)}..{_num(smax)} {setting.unit})".rstrip())
        if s.vartype == "enum" and values:
            missing = [v for v in values if str(v) not in (s.enumvals or ())]
            if missing:
                problems.append(f"{name}: this server does not take {', '.join(map(str, missing))} "
                                f"(it takes {', '.join(s.enumvals or ())})")
    return problems


def _num(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and float(x).is_integer() else f"{x:g}"


__all__ = ["PgSetting", "ServerSetting", "catalog", "convert", "cross_check", "display_text",
           "durability_settings", "from_pg", "lookup", "machine_memory_mb", "sql_text", "unit_factor"]
