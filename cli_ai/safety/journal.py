"""A crash-safe record of original values, on disk before the first write.

The file is written to a temporary name, fsynced, renamed over the journal and
the directory fsynced, so that after a power cut or `kill -9` the journal is
either the old complete one or the new complete one. `cli-ai rollback` reads it,
and trusts nothing in it: the directory and the file must be the user's own
(`state.py`), and the record is parsed strictly (`JournalRecord.from_json`):
any wrong type, unknown key or oversized field is a one-line error (exit 2)
before anything is restored. What the values and files may be is checked
against the catalogue by `journal_check.py`.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli_ai.core.backend import Value, from_json_value, to_json_value
from cli_ai.errors import StateError
from cli_ai.safety.state import check_state_dir, read_state_file

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
    """The state directory, created 0700 if missing; refused (StateError)
    unless it is the user's own and writable by nobody else."""
    d = path or state_dir()
    check_state_dir(d, create=True)
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
    def from_json(cls, data: Any) -> "JournalRecord":
        """Parse a journal as strictly as a spec; JournalFormatError names the field."""
        return _parse_record(data)


class JournalFormatError(ValueError):
    """A journal that is not one cli-ai wrote: `field` is where."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"{field}: {problem}")


JOURNAL_KEYS = {"version", "pid", "created", "hostname", "netns", "netns_params", "workload", "backend",
                "originals", "files"}
MAX_ENTRIES = 256  # params or files in one journal; the catalogue has fewer than 100
MAX_TEXT = 4096


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _text(field: str, x: Any, *, optional: bool = False, limit: int = MAX_TEXT, controls: bool = False) -> str | None:
    if x is None and optional:
        return None
    if not isinstance(x, str):
        raise JournalFormatError(field, f"must be a string, not {type(x).__name__}")
    if len(x) > limit:
        raise JournalFormatError(field, f"is longer than {limit} characters")
    if not controls and any(ord(c) < 32 or ord(c) == 127 for c in x):
        raise JournalFormatError(field, "contains a control character (newline, escape, NUL)")
    return x


def _json_value(field: str, v: Any) -> Value:
    """A knob value as a journal may hold it: a number, a short string, a short list of integers."""
    if isinstance(v, bool) or _is_int(v):
        if _is_int(v) and abs(v) >= 2**64:
            raise JournalFormatError(field, "is an integer beyond 64 bits")
        return v
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise JournalFormatError(field, "is not a finite number")
        return v
    if isinstance(v, str):
        return _text(field, v, limit=256)  # type: ignore[return-value]
    if isinstance(v, list):
        if not v or len(v) > 16 or not all(_is_int(x) and abs(x) < 2**64 for x in v):
            raise JournalFormatError(field, "must be a list of 1 to 16 integers")
        return from_json_value(v)
    raise JournalFormatError(field, f"must be a number, a string or a list of integers, not {type(v).__name__}")


def _parse_record(data: Any) -> JournalRecord:
    if not isinstance(data, dict):
        raise JournalFormatError("(top level)", f"must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - JOURNAL_KEYS)
    if unknown:
        raise JournalFormatError(repr(str(unknown[0])[:80]), "is not a journal field")
    if data.get("version") != JOURNAL_VERSION or isinstance(data.get("version"), bool):
        raise JournalFormatError("version", f"unsupported journal version {str(data.get('version'))[:40]!r}")
    for key in ("backend", "originals", "pid", "created"):
        if key not in data:
            raise JournalFormatError(key, "is missing")
    pid = data["pid"]
    if not _is_int(pid) or not 0 < pid < 2**31:
        raise JournalFormatError("pid", "must be a positive integer")
    created = data["created"]
    if isinstance(created, bool) or not isinstance(created, (int, float)) or created != created \
            or abs(created) > 1e12:
        raise JournalFormatError("created", "must be a time in seconds")
    netns = data.get("netns")
    if netns is not None and (not _is_int(netns) or netns < 0):
        raise JournalFormatError("netns", "must be a namespace inode number or null")
    backend = data["backend"]
    if not isinstance(backend, dict) or set(backend) - {"kind", "config"} or "kind" not in backend:
        raise JournalFormatError("backend", 'must be {"kind": ..., "config": {...}}')
    _text("backend.kind", backend["kind"], limit=64)
    config = backend.get("config", {})
    if not isinstance(config, dict):
        raise JournalFormatError("backend.config", "must be an object")
    originals = data["originals"]
    if not isinstance(originals, dict) or len(originals) > MAX_ENTRIES:
        raise JournalFormatError("originals", f"must be an object of at most {MAX_ENTRIES} values")
    values = {}
    for name, v in originals.items():
        _text(f"originals.{name[:80]!r}", name, limit=256)
        values[name] = _json_value(f"originals.{name}", v)
    netns_params = data.get("netns_params", [])
    if not isinstance(netns_params, list) or len(netns_params) > MAX_ENTRIES:
        raise JournalFormatError("netns_params", "must be a list of names")
    for i, n in enumerate(netns_params):
        _text(f"netns_params[{i}]", n, limit=256)
    files = data.get("files", [])
    if not isinstance(files, list) or len(files) > MAX_ENTRIES:
        raise JournalFormatError("files", f"must be a list of at most {MAX_ENTRIES} entries")
    entries = []
    for i, f in enumerate(files):
        if not isinstance(f, dict) or set(f) - {"path", "backup"} or "path" not in f:
            raise JournalFormatError(f"files[{i}]", 'must be {"path": ..., "backup": ... or null}')
        path = _text(f"files[{i}].path", f["path"])
        backup = _text(f"files[{i}].backup", f.get("backup"), optional=True)
        for where, p in ((f"files[{i}].path", path), (f"files[{i}].backup", backup)):
            if p is not None and not os.path.isabs(p):
                raise JournalFormatError(where, "must be an absolute path")
        entries.append({"path": path, "backup": backup})
    return JournalRecord(
        backend={"kind": backend["kind"], "config": dict(config)},
        originals=values,
        pid=pid,
        created=float(created),
        # Never acted on, only kept: free text (a workload name may hold anything).
        hostname=_text("hostname", data.get("hostname", ""), limit=255, controls=True) or "",
        netns=netns,
        netns_params=list(netns_params),
        workload=_text("workload", data.get("workload"), optional=True, controls=True),
        files=entries,
    )


class Journal:
    """The journal file in the state directory."""

    def __init__(self, directory: Path | None = None, name: str = JOURNAL_NAME):
        self.directory = directory or state_dir()
        self.path = self.directory / name

    def exists(self) -> bool:
        return os.path.lexists(self.path)

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
        """The record, None when there is none; StateError (exit 2) for a
        journal that is unsafe (owner, mode, symlink, not a file) or malformed."""
        if not check_state_dir(self.directory, create=False):
            return None
        text = read_state_file(self.path, "journal")
        if text is None:
            return None
        try:
            return JournalRecord.from_json(json.loads(text))
        except RecursionError:
            problem = "nested too deeply to be a journal"
        except JournalFormatError as exc:
            problem = str(exc)
        except ValueError as exc:  # invalid JSON
            problem = f"not valid JSON ({exc})"
        raise StateError(f"journal {self.path}: {problem}; nothing was restored. Inspect it, then remove it "
                         "(`cli-ai rollback --discard`)")

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
