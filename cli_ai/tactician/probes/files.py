"""Probes of memory maps, file handles, inotify, PIDs, the dentry cache and
pipe buffers."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import shutil
import tempfile
import time

from cli_ai.tactician.probes.common import Refused, check, errname, files_of_tree, hold, libc

NOBODY = 65534


def probe_maps(count: int) -> tuple[int, str]:
    """Map `count` one-page areas; neighbours alternate protections so the
    kernel cannot merge them into one area (each counts against vm.max_map_count)."""
    c = libc()
    c.mmap.restype = ctypes.c_void_p
    c.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    c.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    page = os.sysconf("SC_PAGE_SIZE")
    prot_r, prot_rw = 0x1, 0x3
    flags = 0x02 | 0x20  # MAP_PRIVATE | MAP_ANONYMOUS
    failed = ctypes.c_void_p(-1).value

    def acquire(i: int) -> int:
        addr = c.mmap(None, page, prot_r if i % 2 else prot_rw, flags, -1, 0)
        if addr in (None, failed):
            raise Refused(errname(ctypes.get_errno()))
        return addr

    return hold(count, acquire, lambda addr: c.munmap(addr, page))


def in_unprivileged_child(work, count: int) -> tuple[int, str]:
    """Run `work(count)` in a child that has dropped root (limits such as
    fs.file-max and fs.pipe-max-size do not bind privileged processes), and
    return its (obtained, why). The child's handles die with it, whatever
    stops it; the parent kills it if the parent is stopped first."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        result = "0 child-failed"
        try:
            os.close(rd)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            got, why = work(count)
            result = f"{got} {why}".strip()
        except BaseException as exc:  # noqa: BLE001  (report, never raise past the fork)
            result = f"0 {type(exc).__name__}"
        finally:
            os.write(wr, result.encode()[:4000])
            os._exit(0)
    os.close(wr)
    try:
        data = b""
        while chunk := os.read(rd, 4096):
            data += chunk
    finally:
        os.close(rd)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    got, _, why = data.decode(errors="replace").partition(" ")
    return (int(got) if got.isdigit() else 0), why


def probe_files(count: int) -> tuple[int, str]:
    """Open /dev/null `count` times in an unprivileged child. RLIMIT_NOFILE is
    raised towards `count` first, which fs.nr_open caps (and which needs
    CAP_SYS_RESOURCE); the unprivileged opens are then capped by fs.file-max."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    note = ""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count + 64, max(count + 64, hard)))
    except (ValueError, OSError):
        note = f"RLIMIT_NOFILE stays at {hard} (raising it needs CAP_SYS_RESOURCE)"
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    try:
        got, why = in_unprivileged_child(
            lambda n: hold(n, lambda _: os.open(os.devnull, os.O_RDONLY), os.close), count)
    finally:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        except (ValueError, OSError):
            pass
    return got, "; ".join(x for x in (why, note if why else "") if x)


def probe_inotify_watches(count: int) -> tuple[int, str]:
    """Add one inotify watch per file of a fresh tree (a watch is per inode, so
    the files must be distinct): fs.inotify.max_user_watches caps it."""
    c = libc()
    fd = c.inotify_init1(0o2000000)  # IN_CLOEXEC
    if fd < 0:
        return 0, errname(ctypes.get_errno())
    root = tempfile.mkdtemp(prefix="cli-ai-probe-")
    obtained, why = 0, ""
    try:
        for p in files_of_tree(root, count):
            if c.inotify_add_watch(fd, p.encode(), 0x2) < 0:  # IN_MODIFY
                why = errname(ctypes.get_errno())
                break
            obtained += 1
    finally:
        os.close(fd)
        shutil.rmtree(root, ignore_errors=True)
    return obtained, why


def probe_inotify_instances(count: int) -> tuple[int, str]:
    """Create `count` inotify instances: fs.inotify.max_user_instances caps it."""
    c = libc()
    return hold(count, lambda _: check(c.inotify_init1(0o2000000)), os.close)


def probe_pids(count: int) -> tuple[int, str]:
    """Start `count` native threads that sleep in pause() (each takes a PID):
    kernel.pid_max caps it. Native threads start a hundred times faster than
    Python ones and need no interpreter; all are cancelled and joined before
    the probe returns."""
    c = libc()
    pthread = ctypes.CDLL(ctypes.util.find_library("pthread") or "libc.so.6", use_errno=True)
    start = ctypes.cast(c.pause, ctypes.c_void_p)
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
                why = errname(rc)
                break
            tids.append(tid)
    finally:
        for tid in tids:
            pthread.pthread_cancel(tid)
        for tid in tids:
            pthread.pthread_join(tid, None)
        pthread.pthread_attr_destroy(attr)
    return len(tids), why


def probe_dirs(count: int, rounds: int = 3) -> tuple[int, str]:
    """Stat every file of a `count`-file tree, `rounds` times; obtained is the
    stat calls per second of the last round (the dentry and inode caches at work,
    which vm.vfs_cache_pressure decides how long to keep under memory pressure)."""
    root = tempfile.mkdtemp(prefix="cli-ai-probe-")
    try:
        dirs = sorted({os.path.dirname(p) for p in files_of_tree(root, count)})
        rate = 0.0
        for _ in range(rounds):
            t0 = time.perf_counter()
            for d in dirs:
                for entry in os.scandir(d):
                    entry.stat()
            rate = count / max(time.perf_counter() - t0, 1e-9)
        return int(rate), ""
    finally:
        shutil.rmtree(root, ignore_errors=True)


def probe_pipe_size(count: int) -> tuple[int, str]:
    """The largest pipe buffer (KiB, a power of two up to `count`) an
    unprivileged process gets with F_SETPIPE_SZ: fs.pipe-max-size caps it
    (root is exempt, so an unprivileged child asks)."""
    import fcntl

    setsz = getattr(fcntl, "F_SETPIPE_SZ", 1031)

    def work(limit: int) -> tuple[int, str]:
        got, size = 0, 4
        while size <= limit:
            a, b = os.pipe()
            try:
                fcntl.fcntl(a, setsz, size * 1024)
            except OSError as exc:
                return got, errname(exc.errno or 0)
            finally:
                os.close(a)
                os.close(b)
            got, size = size, size * 2
        return got, ""

    return in_unprivileged_child(work, count)
