"""What every probe shares: libc, errno names, taking units and giving every
one back, a temporary tree of files, and the reserve a probe leaves below the
kernel's current limit so that other programs keep working while it runs."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os


def libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def errname(err: int) -> str:
    return errno.errorcode.get(err, str(err))


class Refused(Exception):
    """The kernel refused one more unit; the message is the errno's name."""


def check(ret: int) -> int:
    """A libc call's result, or Refused with its errno."""
    if ret < 0:
        raise Refused(errname(ctypes.get_errno()))
    return ret


def hold(count: int, acquire, release) -> tuple[int, str]:
    """Take up to `count` units (`acquire(i)` returns a handle, or raises
    Refused / OSError when the kernel says no), then give every one back.
    Returns (units obtained, why it stopped: "" when all were granted)."""
    held: list = []
    why = ""
    try:
        for i in range(count):
            try:
                held.append(acquire(i))
            except Refused as exc:
                why = str(exc)
                break
            except OSError as exc:
                why = errname(exc.errno or 0)
                break
    finally:
        for handle in held:
            release(handle)
    return len(held), why


def files_of_tree(root: str, count: int, per_dir: int = 1000):
    """Create and yield `count` empty files under `root`, `per_dir` to a
    directory, one at a time (a probe stopped early creates no more)."""
    for i in range(count):
        d = os.path.join(root, f"d{i // per_dir}")
        if i % per_dir == 0:
            os.mkdir(d)
        p = os.path.join(d, f"f{i % per_dir}")
        with open(p, "wb"):
            pass
        yield p


def read_ints(path: str) -> list[int]:
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def sysv_in_use(kind: str) -> tuple[int, int]:
    """(ids in use, and for semaphores the semaphores in them) from /proc/sysvipc."""
    try:
        with open(f"/proc/sysvipc/{kind}") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return 0, 0
    sems = 0
    if kind == "sem":
        for row in rows:
            cols = row.split()
            if len(cols) > 3 and cols[3].isdigit():
                sems += int(cols[3])
    return len(rows), sems
