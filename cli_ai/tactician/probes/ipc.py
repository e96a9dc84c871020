"""Probes of System V IPC (semaphores, shared memory, message queues) and
asynchronous I/O.

System V objects outlive the process that made them, so the probe names its
objects with keys of its own (KEY_BASE ...) and removes any it finds left from
a probe that was killed before it could clean up."""

from __future__ import annotations

import ctypes
import platform

from cli_ai.tactician.probes.common import Refused, check, errname, hold, libc

IPC_PRIVATE, IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_RMID = 0, 0o1000, 0o2000, 0o4000, 0
KEY_BASE = 0x434C4900  # "CLI\0": probe objects use keys KEY_BASE .. KEY_BASE + 0xFFFF
KEY_SPAN = 0x10000


def _own_keys(kind: str) -> list[int]:
    """The ids of probe objects in /proc/sysvipc/<kind> (keys in our range)."""
    try:
        with open(f"/proc/sysvipc/{kind}") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return []
    ids = []
    for row in rows:
        cols = row.split()
        if len(cols) > 1 and cols[0].lstrip("-").isdigit() and cols[1].isdigit():
            if KEY_BASE <= int(cols[0]) & 0xFFFFFFFF < KEY_BASE + KEY_SPAN:
                ids.append(int(cols[1]))
    return ids


def sweep_leftovers() -> int:
    """Remove probe objects a killed probe left behind; returns how many."""
    c = libc()
    removed = 0
    for sid in _own_keys("sem"):
        removed += c.semctl(sid, 0, IPC_RMID) == 0
    for sid in _own_keys("shm"):
        removed += c.shmctl(sid, IPC_RMID, None) == 0
    for sid in _own_keys("msg"):
        removed += c.msgctl(sid, IPC_RMID, None) == 0
    return removed


def probe_semaphores(count: int, per_set: int = 17) -> tuple[int, str]:
    """Create `count` System V semaphore sets of 17 (PostgreSQL's size):
    kernel.sem's SEMMNI (sets) and SEMMNS (semaphores) cap it."""
    c = libc()
    sweep_leftovers()
    flags = IPC_CREAT | IPC_EXCL | 0o600
    return hold(min(count, KEY_SPAN), lambda i: check(c.semget(KEY_BASE + i, per_set, flags)),
                lambda sid: c.semctl(sid, 0, IPC_RMID))


def probe_shm_segments(count: int) -> tuple[int, str]:
    """Create `count` one-page System V shared memory segments: kernel.shmmni caps it."""
    c = libc()
    sweep_leftovers()
    flags = IPC_CREAT | IPC_EXCL | 0o600
    return hold(min(count, KEY_SPAN), lambda i: check(c.shmget(KEY_BASE + i, ctypes.c_size_t(4096), flags)),
                lambda sid: c.shmctl(sid, IPC_RMID, None))


def probe_msg_queue(count: int, size: int = 1024) -> tuple[int, str]:
    """Queue `count` messages of 1 KiB on one System V message queue that
    nobody reads: kernel.msgmnb (the queue's bytes) caps it."""
    c = libc()
    sweep_leftovers()
    qid = c.msgget(KEY_BASE, IPC_CREAT | IPC_EXCL | 0o600)
    if qid < 0:
        return 0, errname(ctypes.get_errno())
    buf = ctypes.create_string_buffer(ctypes.sizeof(ctypes.c_long) + size)
    ctypes.c_long.from_buffer(buf).value = 1  # mtype
    sent, why = 0, ""
    try:
        for _ in range(count):
            if c.msgsnd(qid, buf, ctypes.c_size_t(size), IPC_NOWAIT) < 0:
                why = errname(ctypes.get_errno())
                break
            sent += 1
    finally:
        c.msgctl(qid, IPC_RMID, None)
    return sent, why


_AIO_SYSCALLS = {"x86_64": (206, 207), "aarch64": (0, 1)}  # io_setup, io_destroy


def probe_aio(count: int, per_context: int = 4096) -> tuple[int, str]:
    """Ask io_setup for `count` asynchronous I/O events (contexts of up to
    4096): fs.aio-max-nr caps the events of the whole system. AIO contexts die
    with the process."""
    numbers = _AIO_SYSCALLS.get(platform.machine())
    if numbers is None:
        return 0, f"io_setup's syscall number is not known for {platform.machine()}"
    setup, destroy = numbers
    c = libc()
    sizes: list[int] = []
    left = count
    while left > 0:
        sizes.append(min(per_context, left))
        left -= sizes[-1]

    def acquire(i: int) -> tuple[ctypes.c_ulong, int]:
        ctx = ctypes.c_ulong(0)
        if c.syscall(setup, sizes[i], ctypes.byref(ctx)) < 0:
            raise Refused(errname(ctypes.get_errno()))
        return ctx, sizes[i]

    granted: list[int] = []

    def release(handle: tuple[ctypes.c_ulong, int]) -> None:
        granted.append(handle[1])
        c.syscall(destroy, handle[0])

    _, why = hold(len(sizes), acquire, release)
    return sum(granted), why
