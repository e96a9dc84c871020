"""Capacity probes: `cli-ai bench probe --resource R --count N`.

Some knobs are limits or timers, not speed dials (vm.max_map_count,
fs.file-max, fs.inotify.max_user_watches, kernel.pid_max, the TCP keepalive
timers, the dentry cache). No throughput benchmark moves them, so a search over
them against wrk or sysbench would report noise. A probe exercises the limit
itself: it asks the kernel for `count` units of the resource and reports how
many it got (`obtained`, `fraction`), then releases everything before it exits.
The metric moves when, and only when, the knob lets more through. The timer
probes (keepalive, connect-timeout) read the timer the kernel gives a new
socket and report how much of a time budget it leaves.

Each probe runs in the benchmark's own process, so the limits are those of the
namespace cli-ai tunes; every probe gives back what it took on every path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import resource
import shutil
import socket
import tempfile
import time
from dataclasses import asdict, dataclass

RESOURCES = ("maps", "files", "inotify-watches", "inotify-instances", "pids", "keepalive", "dirs",
             "semaphores", "shm-segments", "msg-queue", "aio", "udp-burst", "connect-timeout", "dead-peer",
             "pipe-size")
MAX_COUNT = 4_194_304  # the catalogue's highest limit; a probe never asks for more


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


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _errname(err: int) -> str:
    return errno.errorcode.get(err, str(err))


class _Refused(Exception):
    """The kernel refused one more unit; the message is the errno's name."""


def _check(ret: int) -> int:
    """A libc call's result, or _Refused with its errno."""
    if ret < 0:
        raise _Refused(_errname(ctypes.get_errno()))
    return ret


def _hold(count: int, acquire, release) -> tuple[int, str]:
    """Take up to `count` units (`acquire(i)` returns a handle, or raises
    _Refused / OSError when the kernel says no), then give every one back.
    Returns (units obtained, why it stopped: "" when all were granted)."""
    held: list = []
    why = ""
    try:
        for i in range(count):
            try:
                held.append(acquire(i))
            except _Refused as exc:
                why = str(exc)
                break
            except OSError as exc:
                why = _errname(exc.errno or 0)
                break
    finally:
        for handle in held:
            release(handle)
    return len(held), why


def probe_maps(count: int) -> tuple[int, str]:
    """Map `count` one-page areas; neighbours alternate protections so the
    kernel cannot merge them into one area (each counts against vm.max_map_count)."""
    libc = _libc()
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    page = os.sysconf("SC_PAGE_SIZE")
    prot_r, prot_rw = 0x1, 0x3
    flags = 0x02 | 0x20  # MAP_PRIVATE | MAP_ANONYMOUS
    failed = ctypes.c_void_p(-1).value

    def acquire(i: int) -> int:
        addr = libc.mmap(None, page, prot_r if i % 2 else prot_rw, flags, -1, 0)
        if addr in (None, failed):
            raise _Refused(_errname(ctypes.get_errno()))
        return addr

    return _hold(count, acquire, lambda addr: libc.munmap(addr, page))


def probe_files(count: int) -> tuple[int, str]:
    """Open /dev/null `count` times. The soft and hard RLIMIT_NOFILE are raised
    towards `count` first (capped by fs.nr_open), so what stops the probe is
    the kernel's limit: fs.nr_open per process, fs.file-max for the system."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 64
    for limit in (want, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard) if limit <= hard else limit))
            break
        except (ValueError, OSError):
            continue
    try:
        return _hold(count, lambda _: os.open(os.devnull, os.O_RDONLY), os.close)
    finally:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        except (ValueError, OSError):
            pass


def _tree(root: str, count: int, per_dir: int = 1000) -> list[str]:
    """`count` empty files under `root`, `per_dir` to a directory."""
    paths = []
    for i in range(count):
        d = os.path.join(root, f"d{i // per_dir}")
        if i % per_dir == 0:
            os.mkdir(d)
        p = os.path.join(d, f"f{i % per_dir}")
        with open(p, "wb"):
            pass
        paths.append(p)
    return paths


def probe_inotify_watches(count: int) -> tuple[int, str]:
    """Add one inotify watch per file of a fresh tree (a watch is per inode, so
    the files must be distinct): fs.inotify.max_user_watches caps it."""
    libc = _libc()
    fd = libc.inotify_init1(0o2000000)  # IN_CLOEXEC
    if fd < 0:
        return 0, _errname(ctypes.get_errno())
    root = tempfile.mkdtemp(prefix="cli-ai-probe-")
    obtained, why = 0, ""
    try:
        for p in _tree(root, count):
            if libc.inotify_add_watch(fd, p.encode(), 0x2) < 0:  # IN_MODIFY
                why = _errname(ctypes.get_errno())
                break
            obtained += 1
    finally:
        os.close(fd)
        shutil.rmtree(root, ignore_errors=True)
    return obtained, why


def probe_inotify_instances(count: int) -> tuple[int, str]:
    """Create `count` inotify instances: fs.inotify.max_user_instances caps it."""
    libc = _libc()
    return _hold(count, lambda _: _check(libc.inotify_init1(0o2000000)), os.close)


def probe_pids(count: int) -> tuple[int, str]:
    """Start `count` native threads that sleep in pause() (each takes a PID):
    kernel.pid_max caps it. Native threads start a hundred times faster than
    Python ones and need no interpreter; all are cancelled and joined before
    the probe returns."""
    libc = _libc()
    pthread = ctypes.CDLL(ctypes.util.find_library("pthread") or "libc.so.6", use_errno=True)
    start = ctypes.cast(libc.pause, ctypes.c_void_p)
    attr = ctypes.create_string_buffer(128)  # pthread_attr_t is 56 bytes on x86_64 and 64 on aarch64
    pthread.pthread_attr_init(attr)
    pthread.pthread_attr_setstacksize(attr, ctypes.c_size_t(64 * 1024))
    tids: list[ctypes.c_ulong] = []
    why = ""
    try:
        for _ in range(count):
            tid = ctypes.c_ulong()
            rc = pthread.pthread_create(ctypes.byref(tid), attr, start, None)
            if rc != 0:
                why = _errname(rc)
                break
            tids.append(tid)
    finally:
        for tid in tids:
            pthread.pthread_cancel(tid)
        for tid in tids:
            pthread.pthread_join(tid, None)
        pthread.pthread_attr_destroy(attr)
    return len(tids), why


def probe_keepalive(count: int) -> tuple[int, str]:
    """`count` is the idle timeout (seconds) of the firewall or NAT in the path:
    obtained is how many of those seconds the first keepalive probe leaves
    spare (0 when the connection would already have been dropped)."""
    with socket.socket() as srv, socket.socket() as cli:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        cli.connect(srv.getsockname())
        idle = cli.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        srv.accept()[0].close()
    spare = max(0, count - idle)
    return spare, "" if spare else f"first keepalive probe after {idle} s, past the {count} s idle timeout"


def probe_dirs(count: int, rounds: int = 3) -> tuple[int, str]:
    """Stat every file of a `count`-file tree, `rounds` times; obtained is the
    stat calls per second of the last round (the dentry and inode caches at work,
    which vm.vfs_cache_pressure decides how long to keep)."""
    root = tempfile.mkdtemp(prefix="cli-ai-probe-")
    try:
        paths = _tree(root, count)
        rate = 0.0
        for _ in range(rounds):
            t0 = time.perf_counter()
            for d in {os.path.dirname(p) for p in paths}:
                for entry in os.scandir(d):
                    entry.stat()
            rate = count / max(time.perf_counter() - t0, 1e-9)
        return int(rate), ""
    finally:
        shutil.rmtree(root, ignore_errors=True)


IPC_PRIVATE, IPC_CREAT, IPC_NOWAIT, IPC_RMID = 0, 0o1000, 0o4000, 0


def probe_semaphores(count: int, per_set: int = 17) -> tuple[int, str]:
    """Create `count` System V semaphore sets of 17 (PostgreSQL's size):
    kernel.sem's SEMMNI (sets) and SEMMNS (semaphores) cap it."""
    libc = _libc()
    return _hold(count, lambda _: _check(libc.semget(IPC_PRIVATE, per_set, IPC_CREAT | 0o600)),
                 lambda sid: libc.semctl(sid, 0, IPC_RMID))


def probe_shm_segments(count: int) -> tuple[int, str]:
    """Create `count` one-page System V shared memory segments: kernel.shmmni caps it."""
    libc = _libc()
    return _hold(count, lambda _: _check(libc.shmget(IPC_PRIVATE, ctypes.c_size_t(4096), IPC_CREAT | 0o600)),
                 lambda sid: libc.shmctl(sid, IPC_RMID, None))


def probe_msg_queue(count: int, size: int = 1024) -> tuple[int, str]:
    """Queue `count` messages of 1 KiB on one System V message queue that
    nobody reads: kernel.msgmnb (the queue's bytes) caps it."""
    libc = _libc()
    qid = libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o600)
    if qid < 0:
        return 0, _errname(ctypes.get_errno())
    buf = ctypes.create_string_buffer(ctypes.sizeof(ctypes.c_long) + size)
    ctypes.c_long.from_buffer(buf).value = 1  # mtype
    sent, why = 0, ""
    try:
        for _ in range(count):
            if libc.msgsnd(qid, buf, ctypes.c_size_t(size), IPC_NOWAIT) < 0:
                why = _errname(ctypes.get_errno())
                break
            sent += 1
    finally:
        libc.msgctl(qid, IPC_RMID, None)
    return sent, why


_AIO_SYSCALLS = {"x86_64": (206, 207), "aarch64": (0, 1)}  # io_setup, io_destroy


def probe_aio(count: int, per_context: int = 4096) -> tuple[int, str]:
    """Ask for `count` asynchronous I/O events in contexts of 4096 (io_setup):
    fs.aio-max-nr caps the events of the whole system."""
    import platform

    numbers = _AIO_SYSCALLS.get(platform.machine())
    if numbers is None:
        return 0, f"io_setup's syscall number is not known for {platform.machine()}"
    setup, destroy = numbers
    libc = _libc()
    contexts: list[ctypes.c_ulong] = []
    why = ""
    try:
        while len(contexts) * per_context < count:
            ctx = ctypes.c_ulong(0)
            if libc.syscall(setup, per_context, ctypes.byref(ctx)) < 0:
                why = _errname(ctypes.get_errno())
                break
            contexts.append(ctx)
    finally:
        for ctx in contexts:
            libc.syscall(destroy, ctx)
    return min(count, len(contexts) * per_context), why


def probe_udp_burst(count: int, size: int = 1024) -> tuple[int, str]:
    """Send `count` 1 KiB datagrams over loopback to a socket that reads them
    only afterwards (as a busy syslog collector does): the datagrams that fit
    its default receive buffer (net.core.rmem_default) arrive, the rest drop."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        addr = rx.getsockname()
        payload = b"x" * size
        for _ in range(count):
            try:
                tx.sendto(payload, addr)
            except OSError:  # the sender's own buffer: try again later
                time.sleep(0.001)
        rx.setblocking(False)
        got = 0
        while True:
            try:
                rx.recv(size)
            except BlockingIOError:
                break
            got += 1
    return got, "" if got >= count else "datagrams dropped: the receive buffer was full"


def probe_connect_timeout(count: int) -> tuple[int, str]:
    """`count` is how many seconds a client may wait for a connection to a
    host that is down: obtained is the seconds of that budget the kernel's SYN
    retries leave spare (initial RTO 1 s, doubling: 2^(retries+1) - 1 s),
    read from a new socket's TCP_SYNCNT, which net.ipv4.tcp_syn_retries sets."""
    with socket.socket() as s:
        retries = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT)
    waits = 2 ** (retries + 1) - 1
    spare = max(0, count - waits)
    return spare, "" if spare else f"a connect to a dead host takes {waits} s ({retries} SYN retries)"



def probe_dead_peer(count: int) -> tuple[int, str]:
    """`count` is how many seconds an idle connection to a dead peer may go
    unnoticed: obtained is the seconds of that budget the kernel's keepalive
    timers leave spare (tcp_keepalive_time + intvl * probes, read from a new
    socket that asked for keepalive)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        idle = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        intvl = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)
        cnt = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
    detect = idle + intvl * cnt
    spare = max(0, count - detect)
    return spare, "" if spare else f"a dead peer is noticed after {detect} s ({idle} + {intvl} x {cnt})"


def probe_pipe_size(count: int) -> tuple[int, str]:
    """Largest pipe buffer (KiB, up to `count` KiB) an unprivileged process gets
    with F_SETPIPE_SZ: fs.pipe-max-size caps it (root is exempt, so the probe
    asks from a child that has dropped to the user nobody)."""
    import fcntl

    setsz = getattr(fcntl, "F_SETPIPE_SZ", 1031)
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: unprivileged, report the largest size granted through the exit status's pipe
        got = 0
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            size = 4
            while size <= count:
                a, b = os.pipe()
                try:
                    fcntl.fcntl(a, setsz, size * 1024)
                    got = size
                except OSError:
                    break
                finally:
                    os.close(a)
                    os.close(b)
                size *= 2
        finally:
            os.write(wr, str(got).encode())
            os._exit(0)
    os.close(wr)
    data = os.read(rd, 64)
    os.close(rd)
    os.waitpid(pid, 0)
    got = int(data or b"0")
    return got, "" if got * 2 > count else "EPERM"


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


def run_probe(name: str, count: int) -> ProbeResult:
    """Run one probe; `count` is bounded so a probe cannot exhaust the machine."""
    if name not in PROBES:
        raise ValueError(f"--resource: {name!r} is not one of {', '.join(RESOURCES)}")
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"--count: {count} is outside 1..{MAX_COUNT}")
    t0 = time.perf_counter()
    obtained, why = PROBES[name](count)
    seconds = time.perf_counter() - t0
    requested = count
    if name == "dirs":  # a rate, not a count of units
        return ProbeResult(name, requested, obtained, 1.0, seconds, why)
    return ProbeResult(name, requested, obtained, round(obtained / requested, 6), seconds, why)


__all__ = ["RESOURCES", "ProbeResult", "run_probe"]
