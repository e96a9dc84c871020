"""A cache of what the offline planner derives from its data files.

Building the retrieval index (stemming every catalogue entry and template,
then BM25 over them with bm25s, which pulls in numpy and scipy) and loading
pyspellchecker's English word list take most of an offline `cli-ai plan`.
Both depend only on files cli-ai ships, so their results are kept as JSON in
the cache directory: `CLI_AI_CACHE_DIR`, else `$XDG_CACHE_HOME/cli-ai`, else
`~/.cache/cli-ai`. A file is named by a hash of everything it was derived
from, so a changed catalogue never meets a stale index.

What is read back is untrusted: the directory must pass the state
directory's ownership checks (owned by this user, not writable by others,
no symlink, no parent another user can replace), a file is opened without
following a symlink, and its shape is checked by the caller; any doubt
means the cache is ignored and the data is derived again. Writes go to a
temporary file renamed into place, so a reader never sees half a file.
Nothing here ever fails a plan.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable

MAX_CACHE_FILE_BYTES = 16 * 1024 * 1024


def cache_dir() -> Path:
    explicit = os.environ.get("CLI_AI_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cli-ai"


def key_of(parts: Iterable[bytes | str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _trusted_dir(create: bool) -> Path | None:
    from cli_ai.errors import StateError
    from cli_ai.safety.state import check_state_dir

    path = cache_dir()
    try:
        return path if check_state_dir(path, create=create) else None
    except (StateError, OSError):
        return None


def load_json(name: str) -> Any | None:
    """The JSON document cached as `name`, or None (absent, untrusted, unreadable)."""
    d = _trusted_dir(create=False)
    if d is None:
        return None
    try:
        fd = os.open(d / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022 \
                or st.st_size > MAX_CACHE_FILE_BYTES:
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return json.loads(f.read())
    except (OSError, ValueError):
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def store_json(name: str, data: Any, *, prefix: str | None = None) -> None:
    """Cache `data` as `name` (best effort); with `prefix`, remove this cache's
    older files of that kind (`prefix*.json` other than `name`)."""
    d = _trusted_dir(create=True)
    if d is None:
        return
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, d / name)
    except (OSError, TypeError, ValueError):
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return
    if prefix:
        for old in d.glob(f"{prefix}*.json"):
            if old.name != name and not old.is_symlink():
                try:
                    old.unlink()
                except OSError:
                    pass


__all__ = ["cache_dir", "key_of", "load_json", "store_json"]
