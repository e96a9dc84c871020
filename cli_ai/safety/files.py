"""Files cli-ai writes besides knob values, and putting them back.

The only ones: the sysctl.d file `cli-ai apply --persist` writes (and its
backups of the file it replaced), and the files a backend names in
`Backend.managed_files()` (an attached broker's config and its backup). A
journal that names any other file is refused (`journal_check.py`), so
`cli-ai rollback` can never be made to unlink or replace a file of the
person's choosing, and a backup is moved back only when it is a regular file
of the user's own that nobody else can write (never through a symlink).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

PERSIST_FILE = "99-cli-ai.conf"
_BACKUP_NAME = re.compile(r"[A-Za-z0-9._-]+")


def sysctl_d_dir() -> Path:
    """/etc/sysctl.d, or $CLI_AI_SYSCTL_DIR (tests and packaging)."""
    return Path(os.environ.get("CLI_AI_SYSCTL_DIR", "/etc/sysctl.d"))


def persist_path() -> Path:
    return sysctl_d_dir() / PERSIST_FILE


def is_persist_backup(path: str) -> bool:
    """Whether `path` is a backup `apply --persist` makes of the sysctl.d file:
    in the same directory, named `99-cli-ai.conf.bak-...`."""
    p = Path(path)
    return (os.path.normpath(p.parent) == os.path.normpath(sysctl_d_dir())
            and p.name.startswith(f"{PERSIST_FILE}.bak") and bool(_BACKUP_NAME.fullmatch(p.name)))


def is_persist_entry(path: str, backup: str | None) -> bool:
    """A journal entry for the sysctl.d file: the file itself, with no backup
    (it is removed) or one of its backups (moved back over it)."""
    return os.path.normpath(path) == os.path.normpath(persist_path()) and (backup is None or is_persist_backup(backup))


def backup_problem(backup: str) -> str | None:
    """Why a backup named by a journal must not be moved over a file."""
    try:
        st = os.lstat(backup)
    except FileNotFoundError:
        return f"the backup {backup} is missing"
    except OSError as exc:
        return f"the backup {backup}: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"the backup {backup} is not a regular file (a symlink?); cli-ai does not move it"
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        return f"the backup {backup} is not yours alone (owner uid {st.st_uid}, mode {oct(st.st_mode & 0o7777)})"
    if st.st_nlink != 1:
        return f"the backup {backup} has {st.st_nlink} hard links"
    return None


def restore_files(files: list[dict], *, trusted: bool = True, done: list[str] | None = None) -> list[str]:
    """Put back files a run wrote: the backup over the file, or remove it.
    `trusted=False` (a journal read from disk): each backup is checked first.
    Returns the failures; `done` (if given) gets one line per file put back."""
    failures = []
    for entry in reversed(files):
        path, backup = entry["path"], entry.get("backup")
        if backup and not trusted:
            problem = backup_problem(backup)
            if problem:
                failures.append(f"{path}: {problem}")
                continue
        try:
            if backup:
                os.replace(backup, path)
                if done is not None:
                    done.append(f"{path}: the file from before cli-ai's first apply is back (from {backup})")
            elif os.path.lexists(path):
                os.unlink(path)
                if done is not None:
                    done.append(f"{path}: removed (cli-ai wrote it; there was no file before)")
        except OSError as exc:
            failures.append(f"{path}: {exc.strerror}")
    return failures


__all__ = ["PERSIST_FILE", "sysctl_d_dir", "persist_path", "is_persist_backup", "is_persist_entry",
           "backup_problem", "restore_files"]
