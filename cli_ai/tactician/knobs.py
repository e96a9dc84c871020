"""Knobs: the map between an agent's normalized action in [-1, 1] and native values.

Every knob type of the spec has one: int and float ranges (linear or log),
bools (the sign of the action), ints and enums (equal-width bins), and vectors (one dimension
per element that may vary; fixed elements stay put; ordering constraints such
as tcp_rmem's min <= default <= max are repaired). Results are rounded and
clamped inside the (already safety-narrowed) range, so the agent can never ask
for a value outside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from cli_ai.spec import KnobSpec
from cli_ai.core.backend import Value


def describe_range(knob: KnobSpec, kernel: bool = False) -> str:
    """The search range as text; a sysctl's (`kernel`) bool as the catalogue's "0 or 1"."""
    if knob.type == "bool":
        return "0 or 1" if kernel else "false | true"
    if knob.type == "enum":
        return " | ".join(map(str, knob.values or ()))
    if knob.type == "vector":
        return " ".join(
            str(e.min) if e.fixed else f"[{e.min}..{e.max}{' log' if e.scale == 'log' else ''}]"
            for e in knob.elements or ()
        )
    log = " (log)" if knob.scale == "log" else ""
    return f"{_fmt(knob.min)}..{_fmt(knob.max)}{log}"


def _fmt(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _unit_to_range(u: float, lo: float, hi: float, scale: str) -> float:
    """u in [-1, 1] -> a float in [lo, hi] (log scale spaces orders of magnitude evenly)."""
    t = (min(max(u, -1.0), 1.0) + 1.0) / 2.0
    if t <= 0.0:
        return lo  # exact endpoints: exp(log(x)) is not x for x near 2**63
    if t >= 1.0:
        return hi
    if scale == "log":
        return math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo)))
    return lo + t * (hi - lo)


def _range_to_unit(x: float, lo: float, hi: float, scale: str) -> float:
    if hi == lo:
        return 0.0
    if scale == "log":
        x = max(float(x), 1e-300)
        t = (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))
    else:
        t = (float(x) - lo) / (hi - lo)
    return float(min(max(2.0 * t - 1.0, -1.0), 1.0))


def _unit_to_int(u: float, lo: int, hi: int, scale: str) -> int:
    """u in [-1, 1] -> an integer in [lo, hi], every integer an equal-width
    bin of the action (in log space on a log scale): rounding a continuous
    value would give the two range ends half-width bins (a 0..2 knob would
    come out 25/50/25 % under uniform actions instead of a third each)."""
    lo, hi = int(lo), int(hi)
    t = (min(max(u, -1.0), 1.0) + 1.0) / 2.0
    if t <= 0.0 or hi <= lo:
        return lo
    if t >= 1.0:
        return hi
    if scale == "log" and lo > 0:
        # bins [v, v + 1) in log space: the value is floor of a log-uniform x in [lo, hi + 1)
        x = math.exp(math.log(lo) + t * (math.log(hi + 1) - math.log(lo)))
        return min(max(int(math.floor(x)), lo), hi)
    n = hi - lo + 1
    return min(lo + int(t * n), hi)


def _int_to_unit(v: float, lo: int, hi: int, scale: str) -> float:
    """The centre of integer v's bin (the inverse of `_unit_to_int`)."""
    lo, hi = int(lo), int(hi)
    if hi <= lo:
        return 0.0
    v = min(max(float(v), lo), hi)
    if scale == "log" and lo > 0:
        centre = 0.5 * (math.log(math.floor(v)) + math.log(math.floor(v) + 1))
        t = (centre - math.log(lo)) / (math.log(hi + 1) - math.log(lo))
    else:
        t = (math.floor(v) - lo + 0.5) / (hi - lo + 1)
    return float(min(max(2.0 * t - 1.0, -1.0), 1.0))


@dataclass(frozen=True)
class Knob:
    """One knob with its action dimensions."""

    spec: KnobSpec
    ordered: str | None = None  # "non-decreasing" | "increasing" for vectors

    @property
    def name(self) -> str:
        return self.spec.param

    @property
    def dims(self) -> int:
        if self.spec.type == "vector":
            return sum(1 for e in self.spec.elements or () if not e.fixed)
        return 1

    # ----------------------------------------------------------- action -> value
    def to_native(self, action: Sequence[float]) -> Value:
        s = self.spec
        u = float(action[0]) if len(action) else 0.0
        if s.type == "int":
            return _unit_to_int(u, s.min, s.max, s.scale)
        if s.type == "float":
            return float(min(max(_unit_to_range(u, s.min, s.max, s.scale), s.min), s.max))
        if s.type == "bool":
            return bool(u >= 0.0)
        if s.type == "enum":
            values = s.values or ()
            t = (min(max(u, -1.0), 1.0) + 1.0) / 2.0
            return values[min(int(t * len(values)), len(values) - 1)]
        return self._vector_native(action)

    def _vector_native(self, action: Sequence[float]) -> tuple[int, ...]:
        out: list[int] = []
        k = 0
        elements = self.spec.elements or ()
        for el in elements:
            if el.fixed:
                out.append(el.min)
            else:
                out.append(_unit_to_int(float(action[k]), el.min, el.max, el.scale))
                k += 1
        return tuple(repair_order(out, [(e.min, e.max) for e in elements], self.ordered))

    # ----------------------------------------------------------- value -> action
    def to_action(self, value: Value) -> np.ndarray:
        """The normalized position of a native value (clipped to [-1, 1])."""
        s = self.spec
        if s.type in ("int", "float"):
            try:
                x = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return np.zeros(1, dtype=np.float64)
            if not math.isfinite(x):
                return np.zeros(1, dtype=np.float64)
            if s.type == "int":
                return np.array([_int_to_unit(x, s.min, s.max, s.scale)], dtype=np.float64)
            return np.array([_range_to_unit(x, s.min, s.max, s.scale)], dtype=np.float64)
        if s.type == "bool":
            on = value not in (0, "0", False, "false", "off", None)
            return np.array([0.5 if on else -0.5], dtype=np.float64)
        if s.type == "enum":
            values = [str(v) for v in s.values or ()]
            if str(value) not in values:
                return np.zeros(1, dtype=np.float64)
            i = values.index(str(value))
            return np.array([-1.0 + (2 * i + 1) / len(values)], dtype=np.float64)
        vals = list(value) if isinstance(value, (tuple, list)) else []
        out = []
        for j, el in enumerate(s.elements or ()):
            if el.fixed:
                continue
            x = vals[j] if j < len(vals) else el.min
            out.append(_int_to_unit(float(x), el.min, el.max, el.scale))
        return np.array(out, dtype=np.float64)

    def default_value(self) -> Value:
        """The spec's default, else the middle of the range."""
        if self.spec.default is not None:
            return self.spec.default
        return self.to_native(np.zeros(self.dims))


def repair_order(values: list[int], bounds: list[tuple[int, int]], ordered: str | None) -> list[int]:
    """Make a vector respect its ordering, staying inside each element's bounds."""
    if not ordered or len(values) < 2:
        return values
    gap = 1 if ordered == "increasing" else 0
    v = list(values)
    for i in range(1, len(v)):
        v[i] = min(max(v[i], v[i - 1] + gap), bounds[i][1])
    for i in range(len(v) - 2, -1, -1):
        v[i] = max(min(v[i], v[i + 1] - gap), bounds[i][0])
    return v


class KnobSpace:
    """All knobs of a spec as one flat action vector."""

    def __init__(self, knobs: Sequence[Knob]):
        self.knobs = list(knobs)
        # Rules between knobs (safety.constraints), set by the target: every
        # configuration the env evaluates goes through `repair` first.
        self.rules: Callable[[dict[str, Value]], dict[str, Value]] | None = None
        self.slices: list[slice] = []
        start = 0
        for knob in self.knobs:
            self.slices.append(slice(start, start + knob.dims))
            start += knob.dims
        self.dims = start

    @classmethod
    def from_specs(cls, specs: Sequence[KnobSpec], ordered: Mapping[str, str | None] | None = None) -> "KnobSpace":
        ordered = ordered or {}
        return cls([Knob(s, ordered.get(s.param)) for s in specs])

    @property
    def names(self) -> list[str]:
        return [k.name for k in self.knobs]

    def repair(self, values: Mapping[str, Value]) -> dict[str, Value]:
        """`values` moved inside the rules between knobs (unchanged when there are none)."""
        return self.rules(dict(values)) if self.rules is not None else dict(values)

    def bounds(self) -> dict[str, tuple[float, float]]:
        """(min, max) of each int and float knob."""
        return {k.name: (float(k.spec.min), float(k.spec.max)) for k in self.knobs
                if k.spec.type in ("int", "float") and k.spec.min is not None and k.spec.max is not None}

    def to_native(self, action: Sequence[float]) -> dict[str, Value]:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.size != self.dims:
            raise ValueError(f"expected an action of {self.dims} dimensions, got {a.size}")
        return {k.name: k.to_native(a[sl]) for k, sl in zip(self.knobs, self.slices)}

    def to_action(self, values: Mapping[str, Value]) -> np.ndarray:
        parts = [k.to_action(values[k.name]) for k in self.knobs]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0, dtype=np.float64)

    def defaults(self) -> dict[str, Value]:
        return {k.name: k.default_value() for k in self.knobs}

    def clamp(self, values: Mapping[str, Value]) -> dict[str, Value]:
        """Values moved onto the grid and into the ranges of these knobs."""
        return self.to_native(self.to_action(values))
