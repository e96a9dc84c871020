"""Everything a benchmark started is gone when its step ends, daemons included.

A benchmark runs in its own session (`start_new_session=True`), so killing
its process group stops its ordinary children. A daemon leaves the group and
the session (`fork`, `setsid`, `fork` again) and its parent exits, so the
kernel hands it to the nearest "child subreaper" ancestor, else to init,
where no one would ever stop it. cli-ai makes itself a subreaper
(`prctl(PR_SET_CHILD_SUBREAPER)`, for the length of a step): such orphans
become cli-ai's children, and
at the end of a step every child that was not there before the step is
killed and reaped, along with anything still in the benchmark's session.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from contextlib import contextmanager
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
# Rounds of "kill the new children, let their orphans reparent to us": each
# round goes one generation deeper (a child's children arrive once it is dead).
MAX_ROUNDS = 64


def _prctl(option: int, arg: Any) -> int:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, arg, 0, 0, 0)
    except (OSError, AttributeError):
        return -1


@contextmanager
def subreaper():
    """While inside, this process is the subreaper of its descendants: an
    orphan of a benchmark becomes our child instead of init's. Restored on
    the way out, so orphans of anything else (outside a step) still go to
    init and never linger here as zombies."""
    was = ctypes.c_int(0)
    known = _prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(was)) == 0
    set_now = _prctl(PR_SET_CHILD_SUBREAPER, 1) == 0
    try:
        yield set_now
    finally:
        if set_now and known and not was.value:
            _prctl(PR_SET_CHILD_SUBREAPER, 0)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def children(parent: int | None = None) -> set[int]:
    """The live processes whose parent is `parent` (this process by default)."""
    parent = os.getpid() if parent is None else parent
    out = set()
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields and len(fields) > 1 and fields[1] == str(parent) and fields[0] != "Z":
            out.add(pid)
    return out


def kill_session(sid: int, sig: int = signal.SIGKILL) -> None:
    """Signal every process of session `sid` (whatever its process group)."""
    try:
        os.killpg(sid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    me = os.getpid()
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields and len(fields) > 3 and fields[3] == str(sid) and pid != me:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def sweep(before: set[int], *, keep: int | None = None) -> list[int]:
    """Kill and reap this process's children that were not in `before`
    (orphans of a benchmark, handed to us as their subreaper), generation by
    generation. `keep`: a child still managed by its caller (not reaped).
    Returns the pids killed."""
    killed: list[int] = []
    for _ in range(MAX_ROUNDS):
        new = children() - before - ({keep} if keep is not None else set())
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            killed.append(pid)
        deadline = time.monotonic() + 1.0
        for pid in new:  # reap, so the next round sees their children reparented
            while time.monotonic() < deadline:
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if done:
                    break
                time.sleep(0.005)
    return killed


__all__ = ["subreaper", "children", "kill_session", "sweep"]
