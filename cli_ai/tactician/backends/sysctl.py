"""Kernel parameters through /proc/sys, read back after every write."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from cli_ai.errors import BackendWriteError, SafetyError
from cli_ai.core.backend import Backend, Value, format_sysctl_value, same_value  # noqa: F401  (re-exported)

PROC_SYS = "/proc/sys"


def parse_sysctl_text(text: str) -> Value:
    """'4096\\t131072\\t6291456' -> (4096, 131072, 6291456); '60' -> 60; 'bbr' -> 'bbr'."""
    fields = text.split()
    try:
        numbers = [int(f) for f in fields]
    except ValueError:
        return " ".join(fields)
    if len(numbers) == 1:
        return numbers[0]
    return tuple(numbers)


class SysctlBackend(Backend):
    """Reads and writes `/proc/sys/<name with dots as slashes>` directly."""

    kind = "sysctl"

    def __init__(self, root: str | os.PathLike = PROC_SYS):
        self.root = Path(root)

    def path(self, name: str) -> Path:
        # Names are checked against the catalogue before they get here; this is
        # a second fence so that no name can ever leave /proc/sys.
        if not name or "/" in name or "\x00" in name or "\n" in name or ".." in name:
            raise SafetyError(f"{name!r} is not a valid sysctl name")
        return self.root.joinpath(*name.split("."))

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def writable(self, name: str) -> bool:
        return os.access(self.path(name), os.W_OK)

    def read(self, names: Sequence[str]) -> dict[str, Value]:
        out: dict[str, Value] = {}
        for name in names:
            p = self.path(name)
            try:
                out[name] = parse_sysctl_text(p.read_text())
            except FileNotFoundError:
                raise BackendWriteError(f"{name}: does not exist on this kernel ({p} is missing)") from None
            except PermissionError:
                raise BackendWriteError(f"{name}: permission denied reading {p}") from None
        return out

    def write(self, values: Mapping[str, Value]) -> None:
        for name, value in values.items():
            text = format_sysctl_value(value)
            p = self.path(name)
            try:
                with open(p, "w") as fh:
                    fh.write(text)
            except OSError as exc:
                raise BackendWriteError(_write_failure(name, text, p, exc)) from None
            got = parse_sysctl_text(p.read_text())
            if not same_value(got, parse_sysctl_text(text)):
                raise BackendWriteError(
                    f"{name}: the kernel did not take {text!r} (it reads back {format_sysctl_value(got)!r})"
                )

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": {"root": str(self.root)}}


def _write_failure(name: str, text: str, path: Path, exc: OSError) -> str:
    if exc.errno == errno.EINVAL:
        return f"{name}: the kernel rejected {text!r} (EINVAL: outside the range it accepts)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{name}: permission denied writing {path}; run as root (or use --dry-run)"
    if exc.errno == errno.ENOENT:
        return f"{name}: does not exist on this kernel ({path} is missing)"
    return f"{name}: writing {text!r} to {path} failed ({exc.strerror})"
