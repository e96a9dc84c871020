"""Rules between knobs, from the catalogue (`constraints` in catalog.json):
`vm.dirty_background_ratio` below `vm.dirty_ratio` (else the kernel silently
uses half of dirty_ratio), `vm.min_free_kbytes` at most a fraction of the
machine's memory. Vector element order (tcp_rmem, ip_local_port_range) is a
rule of one knob, kept by the knob mapping and `values.type_problem`.

`problems(values)` says which rules a whole configuration breaks (for `apply`
and a result's values, with the kernel's current values for the params the
configuration does not set); `repair(values, bounds)` moves a proposed
configuration back inside the rules (for the search, which never proposes a
violating one); `spec_problems` is what `validate` reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

from cli_ai.core.backend import Value
from cli_ai.safety.catalog import CATALOG_FILE


@dataclass(frozen=True)
class Below:
    """`low` must stay strictly below `high`."""

    low: str
    high: str
    why: str
    source: str


@dataclass(frozen=True)
class MemoryFraction:
    """`param` (KiB) at most `max_fraction` of the machine's memory."""

    param: str
    max_fraction: float
    why: str
    source: str


@lru_cache(maxsize=1)
def load_constraints() -> tuple[Below | MemoryFraction, ...]:
    raw = json.loads(CATALOG_FILE.read_text(encoding="utf-8")).get("constraints", [])
    out: list[Below | MemoryFraction] = []
    for c in raw:
        if c["kind"] == "below":
            out.append(Below(c["low"], c["high"], c["why"], c["source"]))
        elif c["kind"] == "memory_fraction":
            out.append(MemoryFraction(c["param"], float(c["max_fraction"]), c["why"], c["source"]))
    return tuple(out)


def memory_kib(meminfo: str = "/proc/meminfo") -> int | None:
    try:
        with open(meminfo, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _number(value: Value | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def problems(values: Mapping[str, Value], *, mem_kib: int | None = None) -> list[str]:
    """The rules `values` break, one line each (values a rule needs but
    `values` lacks are not judged)."""
    out = []
    for c in load_constraints():
        if isinstance(c, Below):
            low, high = _number(values.get(c.low)), _number(values.get(c.high))
            if low is not None and high is not None and not low < high:
                out.append(f"{c.low}={values[c.low]} is not below {c.high}={values[c.high]}: {c.why}")
        else:
            v = _number(values.get(c.param))
            if v is not None and mem_kib and v > c.max_fraction * mem_kib:
                out.append(f"{c.param}={values[c.param]} KiB is over {c.max_fraction:.0%} of this machine's "
                           f"{mem_kib} KiB of memory: {c.why}")
    return out


def repair(values: Mapping[str, Value], bounds: Mapping[str, tuple[float, float]], *,
           fixed: Mapping[str, Value] | None = None, mem_kib: int | None = None) -> dict[str, Value]:
    """`values` moved inside the rules, each knob within its `bounds`
    (min, max): the lower of a `Below` pair goes down (or, at its floor, the
    higher goes up); a `MemoryFraction` param is capped. `fixed` are values
    the run does not tune (the kernel's current ones), which the rules see
    but never change."""
    out = dict(values)
    seen = {**(fixed or {}), **out}
    for c in load_constraints():
        if isinstance(c, Below):
            low, high = _number(seen.get(c.low)), _number(seen.get(c.high))
            if low is None or high is None or low < high:
                continue
            if c.low in out and c.low in bounds and high - 1 >= bounds[c.low][0]:
                out[c.low] = int(high - 1) if isinstance(out[c.low], int) else high - 1
            elif c.high in out and c.high in bounds and low + 1 <= bounds[c.high][1]:
                out[c.high] = int(low + 1) if isinstance(out[c.high], int) else low + 1
            seen.update(out)
        elif c.param in out and mem_kib:
            v = _number(out[c.param])
            cap = int(c.max_fraction * mem_kib)
            if v is not None and v > cap and c.param in bounds and cap >= bounds[c.param][0]:
                out[c.param] = cap
                seen.update(out)
    return out


def spec_problems(ranges: Mapping[str, tuple[float, float]], *, fixed: Mapping[str, Value] | None = None,
                  mem_kib: int | None = None) -> tuple[list[str], list[str]]:
    """(errors, notes) for a spec's knob ranges: a rule that no configuration
    within them can keep is an error; one that some could break is a note
    saying the search keeps it."""
    errors, notes = [], []
    fixed = fixed or {}
    for c in load_constraints():
        if isinstance(c, Below):
            lo_range = ranges.get(c.low) or ((_number(fixed.get(c.low)),) * 2 if c.low in fixed else None)
            hi_range = ranges.get(c.high) or ((_number(fixed.get(c.high)),) * 2 if c.high in fixed else None)
            if lo_range is None or hi_range is None or None in lo_range or None in hi_range:
                continue
            if c.low not in ranges and c.high not in ranges:
                continue
            if lo_range[0] >= hi_range[1]:
                errors.append(f"{c.low} (from {lo_range[0]:g}) can never be below {c.high} (up to {hi_range[1]:g}): "
                              f"{c.why}; lower {c.low}'s min or raise {c.high}'s max")
            elif lo_range[1] >= hi_range[0]:
                notes.append(f"{c.low} is kept below {c.high} in every configuration the search tries ({c.source})")
        elif c.param in ranges and mem_kib:
            cap = c.max_fraction * mem_kib
            lo, hi = ranges[c.param]
            if lo > cap:
                errors.append(f"{c.param}: min {lo:g} KiB is over {c.max_fraction:.0%} of this machine's {mem_kib} "
                              f"KiB of memory: {c.why}; lower min")
            elif hi > cap:
                notes.append(f"{c.param} is kept at most {int(cap)} KiB ({c.max_fraction:.0%} of this machine's "
                             "memory) in every configuration the search tries")
    return errors, notes
