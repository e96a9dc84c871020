"""One cli-ai run at a time per state directory: flock on `<state>/lock`,
which holds the holder's PID. The file is opened without following a
symlink or a hard link someone planted (its target would be truncated)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from cli_ai.errors import LockHeldError
from cli_ai.safety.journal import ensure_state_dir, state_dir
from cli_ai.safety.state import open_or_create

LOCK_NAME = "lock"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MachineLock:
    """One cli-ai run at a time per state directory (flock + the holder's PID).

    flock is released by the kernel when its holder dies, so a lock file left by
    a dead PID is simply taken over."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or state_dir()
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None
        self.took_over_from: int | None = None

    def acquire(self) -> "MachineLock":
        ensure_state_dir(self.directory)
        # Never through a planted symlink or hard link (its target would be truncated).
        fd = open_or_create(self.path, "lock file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"PID {holder}" if holder else "another process"
            raise LockHeldError(
                f"another cli-ai run ({who}) is tuning this machine (lock {self.path}); "
                "wait for it to finish or stop it"
            ) from None
        previous = _read_pid(fd)
        if previous and previous != os.getpid() and not pid_alive(previous):
            self.took_over_from = previous
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "MachineLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None



__all__ = ["LOCK_NAME", "MachineLock", "pid_alive"]
