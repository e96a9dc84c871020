"""A crash-safe record of original values, on disk before the first write.

The file is written to a temporary name, fsynced, renamed over the journal and
the directory fsynced, so that after a power cut or `kill -9` the journal is
either the old complete one or the new complete one. `cli-ai rollback` reads it.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cli_ai.core.backend import Value, from_json_value, to_json_value

JOURNAL_NAME = "journal.json"
# What `cli-ai apply` left in place on purpose: undone by `cli-ai rollback`.
APPLIED_NAME = "applied.json"
JOURNAL_VERSION = 1


def state_dir() -> Path:
    """$CLI_AI_STATE_DIR, else $XDG_STATE_HOME/cli-ai, else ~/.local/state/cli-ai."""
    explicit = os.environ.get("CLI_AI_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "cli-ai"
    return Path.home() / ".local" / "state" / "cli-ai"


def ensure_state_dir(path: Path | None = None) -> Path:
    d = path or state_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def current_netns() -> int | None:
    """The inode of this process's network namespace (net.* sysctls live there)."""
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None


@dataclass
class JournalRecord:
    """What a run may change and the values it found before changing anything."""

    backend: dict[str, Any]
    originals: dict[str, Value]
    pid: int = field(default_factory=os.getpid)
    created: float = field(default_factory=time.time)
    hostname: str = field(default_factory=socket.gethostname)
    netns: int | None = field(default_factory=current_netns)
    netns_params: list[str] = field(default_factory=list)
    workload: str | None = None
    # Files written besides the backend's values, e.g. a persisted sysctl.d file:
    # [{"path": ..., "backup": ... or None}]
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JOURNAL_VERSION,
            "pid": self.pid,
            "created": self.created,
            "hostname": self.hostname,
            "netns": self.netns,
            "netns_params": self.netns_params,
            "workload": self.workload,
            "backend": self.backend,
            "originals": {k: to_json_value(v) for k, v in self.originals.items()},
            "files": self.files,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "JournalRecord":
        if data.get("version") != JOURNAL_VERSION:
            raise ValueError(f"unsupported journal version {data.get('version')!r}")
        return cls(
            backend=dict(data["backend"]),
            originals={k: from_json_value(v) for k, v in data["originals"].items()},
            pid=int(data["pid"]),
            created=float(data["created"]),
            hostname=str(data.get("hostname", "")),
            netns=data.get("netns"),
            netns_params=list(data.get("netns_params", [])),
            workload=data.get("workload"),
            files=list(data.get("files", [])),
        )


class Journal:
    """The journal file in the state directory."""

    def __init__(self, directory: Path | None = None, name: str = JOURNAL_NAME):
        self.directory = directory or state_dir()
        self.path = self.directory / name

    def exists(self) -> bool:
        return self.path.exists()

    def write(self, record: JournalRecord) -> None:
        ensure_state_dir(self.directory)
        payload = json.dumps(record.to_json(), indent=2, sort_keys=True).encode()
        fd, tmp = tempfile.mkstemp(prefix=".journal-", dir=self.directory)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise
        _fsync_dir(self.directory)

    def read(self) -> JournalRecord | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            return JournalRecord.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"journal {self.path} is unreadable ({exc}); inspect it and remove it by hand") from None

    def delete(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(self.directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
