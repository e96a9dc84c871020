"""Rules between knobs, from the catalogue (`constraints` in catalog.json):
`vm.dirty_background_ratio` below `vm.dirty_ratio` (else the kernel silently
uses half of dirty_ratio), `vm.min_free_kbytes` at most a fraction of the
machine's memory, at most one of `vm.dirty_ratio` / `vm.dirty_bytes` (and of
the background pair) tuned by one spec, since writing one makes the kernel
zero the other. Vector element order (tcp_rmem, ip_local_port_range) is a
rule of one knob, kept by the knob mapping and `values.type_problem`.

`restore_order(originals)` is how the Guard and rollback put an exclusive
pair back: only the member that was non-zero is written (the kernel zeroes
its twin, and refuses 0 for `vm.dirty_bytes`), then both are verified.

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
from typing import Iterable, Mapping

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


@dataclass(frozen=True)
class Exclusive:
    """At most one of `params` is set: the kernel zeroes one when the other is
    written, and 0 reads as "not set, the twin is in effect". The first of
    the pair is the one that accepts 0 (a ratio; the kernel refuses 0 bytes)."""

    params: tuple[str, str]
    why: str
    source: str


Constraint = Below | MemoryFraction | Exclusive


@lru_cache(maxsize=1)
def load_constraints() -> tuple[Constraint, ...]:
    raw = json.loads(CATALOG_FILE.read_text(encoding="utf-8")).get("constraints", [])
    out: list[Constraint] = []
    for c in raw:
        if c["kind"] == "below":
            out.append(Below(c["low"], c["high"], c["why"], c["source"]))
        elif c["kind"] == "memory_fraction":
            out.append(MemoryFraction(c["param"], float(c["max_fraction"]), c["why"], c["source"]))
        elif c["kind"] == "exclusive":
            first, second = c["params"]
            out.append(Exclusive((first, second), c["why"], c["source"]))
        else:
            raise ValueError(f"catalog.json: constraints: unknown kind {c['kind']!r}")
    return tuple(out)


def exclusive_twin(name: str) -> str | None:
    """The param the kernel zeroes when `name` is written, if any."""
    for c in load_constraints():
        if isinstance(c, Exclusive) and name in c.params:
            return c.params[1] if name == c.params[0] else c.params[0]
    return None


def restore_order(originals: Mapping[str, Value]) -> tuple[list[str], list[str]]:
    """(names to write back, in order; names only to verify afterwards): of an
    exclusive pair whose both members are in `originals`, the one that was 0
    is not written (the kernel zeroes it when its twin is written back, and
    refuses 0 for a bytes param); when both were 0, the first (the ratio,
    which accepts 0) is written."""
    implied = set()
    for c in load_constraints():
        if isinstance(c, Exclusive) and all(p in originals for p in c.params):
            first, second = c.params
            if _number(originals[first]) == 0 and _number(originals[second]) != 0:
                implied.add(first)
            elif _number(originals[second]) == 0:
                implied.add(second)
    return [n for n in originals if n not in implied], [n for n in originals if n in implied]


def _unset(name: str, value: float) -> bool:
    """0 of an exclusive pair's member: its twin is in effect, so a rule on
    it (dirty_background_ratio below dirty_ratio) does not apply."""
    return value == 0 and exclusive_twin(name) is not None


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
            if low is not None and high is not None and not low < high \
                    and not (_unset(c.low, low) or _unset(c.high, high)):
                out.append(f"{c.low}={values[c.low]} is not below {c.high}={values[c.high]}: {c.why}")
        elif isinstance(c, Exclusive):
            first, second = c.params
            if first in values and second in values:
                out.append(f"{first} and {second} are set together: {c.why}; keep only one of the pair")
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
            if low is None or high is None or low < high or _unset(c.low, low) or _unset(c.high, high):
                continue
            if c.low in out and c.low in bounds and high - 1 >= bounds[c.low][0]:
                out[c.low] = int(high - 1) if isinstance(out[c.low], int) else high - 1
            elif c.high in out and c.high in bounds and low + 1 <= bounds[c.high][1]:
                out[c.high] = int(low + 1) if isinstance(out[c.high], int) else low + 1
            seen.update(out)
        elif isinstance(c, Exclusive):
            continue  # a spec tuning both is refused (spec_problems): nothing to repair
        elif c.param in out and mem_kib:
            v = _number(out[c.param])
            cap = int(c.max_fraction * mem_kib)
            if v is not None and v > cap and c.param in bounds and cap >= bounds[c.param][0]:
                out[c.param] = cap
                seen.update(out)
    return out


def spec_problems(ranges: Mapping[str, tuple[float, float]], *, fixed: Mapping[str, Value] | None = None,
                  mem_kib: int | None = None, names: Iterable[str] | None = None) -> tuple[list[str], list[str]]:
    """(errors, notes) for a spec's knob ranges (`names`: every param the
    spec tunes, by default those of `ranges`): a rule that no configuration
    within them can keep is an error; one that some could break is a note
    saying the search keeps it."""
    errors, notes = [], []
    fixed = fixed or {}
    tuned = set(ranges if names is None else names)
    for c in load_constraints():
        if isinstance(c, Exclusive):
            first, second = c.params
            if first in tuned and second in tuned:
                errors.append(f"{first} and {second}: a spec may tune at most one of the pair ({c.why}); "
                              f"drop one of them from action_space")
            continue
        if isinstance(c, Below):
            lo_range = ranges.get(c.low) or ((_number(fixed.get(c.low)),) * 2 if c.low in fixed else None)
            hi_range = ranges.get(c.high) or ((_number(fixed.get(c.high)),) * 2 if c.high in fixed else None)
            if lo_range is None or hi_range is None or None in lo_range or None in hi_range:
                continue
            if c.low not in ranges and c.high not in ranges:
                continue
            if (c.low not in ranges and _unset(c.low, lo_range[0])) or \
                    (c.high not in ranges and _unset(c.high, hi_range[0])):
                continue  # the kernel uses the bytes twin of the fixed one: this rule does not apply
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
