"""Untrusted text: control characters out before it reaches a terminal or a file.

Workload names, metrics, error messages and values can come from a spec, an
LLM answer or a result file; an ANSI escape sequence, an OSC title, a carriage
return or a bell in them must not restyle the output or rewrite the screen.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, and the C1 range.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: object) -> str:
    """`text` as a string without control characters (tab and newline kept)."""
    return _CONTROL.sub("", str(text))


# Every control character, newline and tab included: for one-line values.
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_controls(text: object) -> bool:
    """Whether `text` holds any control character (newline and tab included)."""
    return _ANY_CONTROL.search(str(text)) is not None


def one_line(text: object) -> str:
    """`text` on one line, whitespace runs collapsed, control characters removed."""
    return " ".join(strip_controls(text).split())


def csv_safe(row: dict) -> dict:
    """A CSV row whose texts (column names included) are each one line without
    control characters or secrets: a benchmark's error message or a metric
    name can hold newlines and escape codes, which would show up raw in
    `cat trajectory.csv`, or an API key the benchmark printed."""
    from cli_ai.core.secrets import Scrubber

    scrub = Scrubber(from_env=True)
    return {one_line(scrub(k)) if isinstance(k, str) else k: one_line(scrub(v)) if isinstance(v, str) else v
            for k, v in row.items()}


__all__ = ["csv_safe", "has_controls", "one_line", "strip_controls"]
