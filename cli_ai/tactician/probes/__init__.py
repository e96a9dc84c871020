"""Capacity probes: `cli-ai bench probe --resource R --count N`.

Some knobs are limits or timers, not speed dials (vm.max_map_count,
fs.file-max, fs.inotify.max_user_watches, kernel.pid_max, kernel.sem, the TCP
keepalive timers). No throughput benchmark moves them, so a search over them
against wrk or sysbench would report noise. A probe exercises the limit
itself: it asks the kernel for `count` units of the resource and reports how
many it got (`obtained`, `fraction`), then gives everything back. The metric
moves when, and only when, the knob lets more through. The timer probes read
the timer the kernel gives a new socket and report how much of a time budget
it leaves.

What a probe takes, the whole machine shares, so a probe never goes to the
last unit: it stops a reserve below the kernel's current limit (`ceiling`),
which still moves with the knob, and says so in `stopped_by`. SIGTERM, SIGHUP
and Ctrl+C (a benchmark timeout, a stopped run) unwind the probe so that it
gives back what it holds; System V objects, which outlive a killed process,
carry keys of the probe's own and are swept by the next probe.
"""

from __future__ import annotations

import signal
import time
from dataclasses import asdict, dataclass

from cli_ai.errors import Interrupted
from cli_ai.spec.builtin import PROBE_RESOURCES
from cli_ai.tactician.probes.common import read_ints, sysv_in_use
from cli_ai.tactician.probes.files import (
    probe_dirs, probe_files, probe_inotify_instances, probe_inotify_watches, probe_maps, probe_pids, probe_pipe_size,
)
from cli_ai.tactician.probes.ipc import probe_aio, probe_msg_queue, probe_semaphores, probe_shm_segments
from cli_ai.tactician.probes.net import probe_connect_timeout, probe_dead_peer, probe_keepalive, probe_udp_burst

RESOURCES = tuple(PROBE_RESOURCES)

PROBES = {
    "maps": probe_maps,
    "files": probe_files,
    "inotify-watches": probe_inotify_watches,
    "inotify-instances": probe_inotify_instances,
    "pids": probe_pids,
    "keepalive": probe_keepalive,
    "dirs": probe_dirs,
    "semaphores": probe_semaphores,
    "shm-segments": probe_shm_segments,
    "msg-queue": probe_msg_queue,
    "aio": probe_aio,
    "udp-burst": probe_udp_burst,
    "connect-timeout": probe_connect_timeout,
    "dead-peer": probe_dead_peer,
    "pipe-size": probe_pipe_size,
}

# Units left for everything else on the machine.
RESERVE = {"pids": 2048, "files": 65536, "semaphores": 32, "shm-segments": 32, "aio": 8192,
           "inotify-instances": 16, "inotify-watches": 8192}


def _limit_and_use(name: str) -> tuple[int, int] | None:
    """(the kernel's current limit, units in use) for a probe of a shared
    resource; None for a private one (a process's own maps, a queue of its
    own, a socket's timers)."""
    if name == "pids":
        limits = read_ints("/proc/sys/kernel/pid_max") + read_ints("/proc/sys/kernel/threads-max")
        try:
            with open("/proc/loadavg") as f:
                in_use = int(f.read().split()[3].split("/")[1])
        except (OSError, ValueError, IndexError):
            in_use = 0
        return (min(limits), in_use) if limits else None
    if name == "files":
        nr = read_ints("/proc/sys/fs/file-nr")  # allocated, free, max
        return (nr[2], nr[0]) if len(nr) == 3 else None
    if name == "semaphores":
        sem = read_ints("/proc/sys/kernel/sem")  # SEMMSL, SEMMNS, SEMOPM, SEMMNI
        if len(sem) != 4:
            return None
        sets, sems = sysv_in_use("sem")
        return min(sem[3], sem[1] // 17), max(sets, sems // 17)
    if name == "shm-segments":
        mni = read_ints("/proc/sys/kernel/shmmni")
        return (mni[0], sysv_in_use("shm")[0]) if mni else None
    if name == "aio":
        mx, nr = read_ints("/proc/sys/fs/aio-max-nr"), read_ints("/proc/sys/fs/aio-nr")
        return (mx[0], nr[0]) if mx and nr else None
    if name in ("inotify-instances", "inotify-watches"):
        what = "max_user_instances" if name == "inotify-instances" else "max_user_watches"
        mx = read_ints(f"/proc/sys/fs/inotify/{what}")
        return (mx[0], 0) if mx else None  # the user's own use is not cheap to count
    return None


def ceiling(name: str) -> tuple[int, int] | None:
    """(the most units this probe may take now, the reserve it leaves): the
    kernel's current limit less what is in use less a reserve (RESERVE, at
    most a twentieth of the limit); None for a probe of a private resource."""
    found = _limit_and_use(name)
    if found is None:
        return None
    limit, in_use = found
    reserve = min(RESERVE.get(name, 0), limit // 20)
    return max(0, limit - in_use - reserve), reserve


@dataclass
class ProbeResult:
    resource: str
    requested: int
    obtained: int
    fraction: float
    seconds: float
    stopped_by: str  # "" when everything requested was granted, else the errno name / reason

    def lines(self) -> list[str]:
        return [f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in asdict(self).items()]


def _stop(signum, _frame):
    raise Interrupted(signum)


def run_probe(name: str, count: int) -> ProbeResult:
    """Run one probe; `count` must lie inside the resource's bounds (spec.builtin)."""
    if name not in PROBES:
        raise ValueError(f"--resource: {name!r} is not one of {', '.join(RESOURCES)}")
    r = PROBE_RESOURCES[name]
    if not r.min_count <= count <= r.max_count:
        raise ValueError(f"--count: {count} is outside {r.min_count}..{r.max_count} for {name} ({r.unit})")
    cap = ceiling(name)
    ask = count if cap is None else min(count, cap[0])
    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    t0 = time.perf_counter()
    try:
        obtained, why = PROBES[name](ask) if ask else (0, "")
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    seconds = time.perf_counter() - t0
    if cap is not None and ask < count and not why:
        why = f"reserve: stopped at {ask}, {cap[1]} below the current limit, for other programs"
    if name == "dirs":  # a rate, not a count of units
        return ProbeResult(name, count, obtained, 1.0, seconds, why)
    return ProbeResult(name, count, obtained, round(obtained / count, 6), seconds, why)


__all__ = ["RESOURCES", "ProbeResult", "run_probe", "ceiling", "PROBES"]
