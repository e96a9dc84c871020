"""Untrusted text on its way to the terminal: secrets scrubbed
(`cli_ai.core.secrets`), Rich markup escaped and control characters dropped
(`cli_ai.text`), so it prints literally."""

from __future__ import annotations

from rich.markup import escape as _escape_markup

from cli_ai.core.secrets import scrub_text
from cli_ai.text import strip_controls


def numeric_bools(target: str) -> bool:
    """Whether a target's bools show as 1/0 (sysctl, as /proc/sys spells them)."""
    from cli_ai.targets import TARGETS

    t = TARGETS.get(target)
    return bool(t is not None and t.numeric_bools)


def escape(text: object) -> str:
    """`text` as Rich markup that prints literally, control characters and secrets removed."""
    return _escape_markup(strip_controls(scrub_text(text)))


__all__ = ["escape"]
