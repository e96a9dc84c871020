"""mosquitto.conf as text: reading option values from it, rendering a managed
broker's whole file, and editing only the tuned lines of an attached one;
written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from cli_ai.broker.options import coerce, default_value, format_value, option, parse_value
from cli_ai.core.backend import Value, same_value
from cli_ai.core.files import write_atomic

BACKUP_SUFFIX = ".cli-ai-orig"
MANAGED_HEADER = "# Written by cli-ai for a private tuning broker; removed when the run ends.\n"
ATTACH_HEADER = "# cli-ai: tuned values (cli-ai restores the original file when the run ends, or `cli-ai rollback`)\n"


def _config_lines(text: str) -> list[tuple[int, str, str]]:
    """(line index, key, rest) of each setting line of a mosquitto.conf text."""
    out = []
    for i, line in enumerate(text.splitlines(keepends=True)):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split(None, 1)
        out.append((i, parts[0], parts[1] if len(parts) > 1 else ""))
    return out


def parse_config(text: str, names: Iterable[str]) -> dict[str, Value]:
    """The value of each option in a config text (its last occurrence), else
    mosquitto's default."""
    wanted = list(names)
    found: dict[str, Value] = {}
    for _, key, rest in _config_lines(text):
        if key in wanted:
            found[key] = parse_value(key, rest)
    return {n: found[n] if n in found else default_value(n) for n in wanted}


def _line(text: str) -> str:
    """`text` as one mosquitto.conf line: a newline or another control
    character in a value (a host, a path) would start a line of its own, such
    as `plugin /tmp/evil.so`, so it is refused, never written."""
    from cli_ai.errors import BadInputError
    from cli_ai.text import has_controls

    if has_controls(text):
        raise BadInputError(f"mosquitto.conf: {text.strip()[:80]!r} holds a control character (a newline or escape "
                            "code); give the value on one line of plain text")
    return text + "\n"


def render_managed_config(
    values: Mapping[str, Value],
    *,
    host: str,
    port: int,
    workdir: str | os.PathLike,
    fixed: Mapping[str, Value] | None = None,
) -> str:
    """The whole mosquitto.conf of a managed broker: global options, then the
    one listener and its own options. `fixed` are settings of the run that are
    not knobs (a short sys_interval for the measurement); knobs win over them.
    Options at mosquitto's own default are not written."""
    merged = {**dict(fixed or {}), **dict(values)}
    # An option at mosquitto's default is left out: some defaults are "unset"
    # sentinels mosquitto refuses when written (max_packet_size 0).
    merged = {k: v for k, v in merged.items() if not same_value(coerce(k, v), default_value(k))}
    lines = [
        MANAGED_HEADER,
        _line(f"persistence_location {Path(workdir)}/"),
        "log_dest stderr\n",
        "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n",
        "connection_messages false\n",
    ]
    listener_lines = []
    for name in sorted(merged):
        value = merged[name]
        if value is None:
            continue
        line = _line(f"{name} {format_value(name, value)}")
        (listener_lines if option(name).scope == "listener" else lines).append(line)
    lines.append(_line(f"listener {int(port)} {host}"))
    lines.append("allow_anonymous true\n")
    lines.extend(listener_lines)
    return "".join(lines)


def render_attached_config(
    original_text: str,
    values: Mapping[str, Value],
    original_values: Mapping[str, Value] | None = None,
) -> str:
    """The original file with the lines of the options whose value differs from
    the original replaced (every occurrence) or added: global options at the
    end, listener options after each `listener` line (at the top if there is
    none); an option going back to mosquitto's default has its lines commented
    out. With every value at its original, the result is the original text."""
    names = list(values)
    originals = dict(original_values) if original_values is not None else parse_config(original_text, names)
    changes = {n: v for n, v in values.items() if not same_value(coerce(n, v), originals.get(n))}
    if not changes:
        return original_text
    lines = original_text.splitlines(keepends=True)
    settings = _config_lines(original_text)
    listeners = [i for i, key, _ in settings if key == "listener"]
    after: dict[int, list[str]] = {}
    tail: list[str] = []
    head: list[str] = []
    for name, value in changes.items():
        text = _line(f"{name} {format_value(name, value)}")[:-1]
        where = [i for i, key, _ in settings if key == name]
        if same_value(coerce(name, value), default_value(name)):
            # Back to mosquitto's default: unset it (a written "unset" sentinel
            # such as max_packet_size 0 is refused).
            for i in where:
                indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
                lines[i] = f"{indent}# cli-ai: {name} unset (mosquitto's default)\n"
        elif where:
            for i in where:
                indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
                lines[i] = f"{indent}{text}\n"
        elif option(name).scope == "listener":
            if listeners:
                for i in listeners:
                    after.setdefault(i, []).append(text + "\n")
            else:
                head.append(text + "\n")
        else:
            tail.append(text + "\n")
    out: list[str] = []
    if head:
        out.append(ATTACH_HEADER)
        out.extend(head)
    for i, line in enumerate(lines):
        if i in after and not line.endswith("\n"):
            line += "\n"
        out.append(line)
        out.extend(after.get(i, []))
    if tail:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(ATTACH_HEADER)
        out.extend(tail)
    return "".join(out)


def atomic_write(path: Path, text: str, *, like: Path | None = None, mode: int = 0o644) -> None:
    """Write through a temporary file in the same directory, fsync, rename;
    keep the mode and owner of `like` (the file being replaced)."""
    write_atomic(path, text, mode, like=like)
