"""One native value against its catalogue entry: typed, inside the safe range,
vectors of the right length and order. Pure functions, shared by everything
that writes a value it did not choose itself (apply and export of a result
file; a journal's originals before rollback).

`type_problem` is about the value's shape (malformed input, exit 2);
`range_problem` about a well-formed value outside the safe range (refused by
safety, exit 3); `value_problem` is either."""

from __future__ import annotations

from typing import Any

from cli_ai.safety.catalog import CatalogEntry


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def type_problem(entry: CatalogEntry, value: Any) -> str | None:
    """Why `value` does not have the shape `entry`'s param takes, or None.

    Strict: an int param takes an int (not 1500.5, "1500" or true), a bool
    param 0, 1, true or false, an enum a string, a vector a list or tuple of
    ints of the right length, ordered as the kernel requires (tcp_rmem's
    min <= default <= max; ip_local_port_range's low < high)."""
    if entry.type == "vector":
        elements = entry.elements or ()
        if not isinstance(value, (tuple, list)) or len(value) != len(elements):
            return f"expected a list of {len(elements)} integers, got {_shown(value)}"
        for j, x in enumerate(value):
            if not _is_int(x):
                return f"element {j} is {_shown(x)}, not an integer"
        if entry.ordered in ("non-decreasing", "increasing"):
            strict = entry.ordered == "increasing"
            for j in range(1, len(value)):
                if value[j] < value[j - 1] or (strict and value[j] == value[j - 1]):
                    return f"its elements must be {entry.ordered} ({' '.join(map(str, value))} is not)"
        return None
    if entry.type == "enum":
        return None if isinstance(value, str) else f"{_shown(value)} is not a string ({entry.range_text()})"
    if entry.type == "bool":
        ok = isinstance(value, bool) or (_is_int(value) and value in (0, 1))
        return None if ok else f"{_shown(value)} is not 0 or 1"
    if entry.type == "int":
        return None if _is_int(value) else f"{_shown(value)} is not an integer"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{_shown(value)} is not a number"
    return None


def range_problem(entry: CatalogEntry, value: Any) -> str | None:
    """Why a well-typed `value` is outside `entry`'s safe range, or None."""
    if entry.type == "vector":
        for j, (x, el) in enumerate(zip(value, entry.elements or ())):
            if not el.min <= x <= el.max:
                return f"element {j} = {x} is outside the safe range {el.min}..{el.max}"
        return None
    if entry.type == "enum":
        return None if value in (entry.values or ()) else f"{_shown(value)} is not one of {entry.range_text()}"
    if entry.type == "bool":
        return None
    lo, hi = entry.safe_min, entry.safe_max
    # NaN compares false both ways, so it is refused here too.
    return None if lo <= value <= hi else f"{value} is outside the safe range {entry.range_text()}"


def value_problem(entry: CatalogEntry, value: Any) -> str | None:
    """Why `value` may not be written to `entry`'s param, or None."""
    return type_problem(entry, value) or range_problem(entry, value)


def _shown(value: Any) -> str:
    """A short, one-line repr for messages (the value may be huge or hostile)."""
    try:
        text = " ".join(repr(value).split())
    except ValueError:  # an int too long to print (Python's digit limit)
        text = "a huge number"
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["range_problem", "type_problem", "value_problem"]
