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


def one_line(text: object) -> str:
    """`text` on one line, whitespace runs collapsed, control characters removed."""
    return " ".join(strip_controls(text).split())


__all__ = ["one_line", "strip_controls"]
