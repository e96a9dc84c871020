"""Running one benchmark process: its own session and process group, a
private working directory, an environment without secrets, a timeout, and
the whole session stopped on any way out; daemons it left behind are killed
too (`reaper`)."""

from __future__ import annotations

import math
import os
import select
import selectors
import shlex
import signal
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

from cli_ai.errors import BenchmarkError
from cli_ai.tactician.benchmarks.common import quoted_tail
from cli_ai.tactician.benchmarks.reaper import children, kill_session, subreaper, sweep


OUTPUT_CAP_BYTES = 16 * 1024 * 1024
DEFAULT_KILL_GRACE_S = 1.0
# After the benchmark's main process exited, how long to keep reading output
# that a left-over descendant may still hold open.
DRAIN_AFTER_EXIT_S = 2.0


@dataclass(frozen=True)
class Completed:
    """One finished process: its output and how it ended."""

    output: str
    returncode: int
    duration_s: float




# What a benchmark inherits from cli-ai's environment: where programs are,
# the locale, the database it is pointed at. Nothing else (no API keys such
# as OPENAI_API_KEY, no tokens, no LD_PRELOAD): the benchmark runs as root.
INHERITED_ENV = frozenset(
    """PATH HOME USER LOGNAME LANG LANGUAGE TZ TERM TMPDIR PYTHONPATH
    PGHOST PGPORT PGUSER PGDATABASE PGSSLMODE PGPASSFILE PGSERVICE PGSERVICEFILE""".split()
)
INHERITED_PREFIXES = ("LC_",)


def benchmark_env(extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a benchmark: the allow-listed part of the inherited
    one (INHERITED_ENV), with numbers printed the C way (LC_NUMERIC=C, so a
    German locale's '1431,47' cannot break the parsers), then the caller's
    `extra` on top. An inherited LC_ALL would override LC_NUMERIC, so it is
    demoted to LANG."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if k in INHERITED_ENV or k.startswith(INHERITED_PREFIXES)}
    if "LC_ALL" in env and not (extra and "LC_ALL" in extra):
        env["LANG"] = env.pop("LC_ALL")
    env["LC_NUMERIC"] = "C"
    if extra:
        env.update(extra)
    return env


def absolute_paths(argv: Sequence[str], base: str) -> list[str]:
    """argv with the relative paths the person wrote made absolute against
    `base` (cli-ai's working directory), since the benchmark runs in a private
    one: the program when it has a '/', and an operand naming an existing
    file there (`prog.py`, `./bench.sh`). Options and bare names are left as
    they are, so nothing is looked up in `base` that was not written."""
    out = []
    for i, arg in enumerate(argv):
        if os.path.isabs(arg) or arg.startswith("-") or not arg:
            out.append(arg)
            continue
        path = os.path.join(base, arg)
        if (i == 0 and "/" in arg) or (i > 0 and ("/" in arg or "." in arg) and os.path.isfile(path)):
            out.append(os.path.normpath(path))
        else:
            out.append(arg)
    return out


def _signal_group(pgid: int, sig: int) -> None:
    """Signal the benchmark's whole session: its group, and any member that
    moved to a group of its own (the session id is the leader's pid)."""
    kill_session(pgid, sig)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _exited_unreaped(pid: int) -> bool:
    """Whether the child exited, leaving it unreaped (a zombie keeps its pid,
    and so the process group id, from being reused while we signal it)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _wait_exit(pid: int, pidfd: int | None, timeout_s: float) -> bool:
    """Wait up to timeout_s for the child to exit, without reaping it."""
    deadline = time.monotonic() + timeout_s
    while True:
        if _exited_unreaped(pid):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if pidfd is not None:
            select.select([pidfd], [], [], remaining)
        else:
            time.sleep(min(remaining, 0.02))


def _terminate_group(proc: subprocess.Popen, pidfd: int | None, grace_s: float) -> None:
    """SIGTERM the whole group, give it `grace_s`, SIGKILL whatever is left,
    reap the direct child. The SIGKILL and the reap happen even if another
    signal interrupts the grace period."""
    try:
        _signal_group(proc.pid, signal.SIGTERM)
        _wait_exit(proc.pid, pidfd, grace_s)
    finally:
        _signal_group(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a child stuck in the kernel
            pass


class _OutputBuffer:
    """Collected output, keeping only the last OUTPUT_CAP_BYTES: every parser
    reads the summary at the end, and a chatty program must not eat memory."""

    def __init__(self, cap: int = OUTPUT_CAP_BYTES):
        self.cap = cap
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * self.cap:
            del self.data[: len(self.data) - self.cap]

    def text(self) -> str:
        return bytes(self.data[-self.cap :]).decode("utf-8", errors="replace")


def _collect(proc: subprocess.Popen, pidfd: int | None, buf: _OutputBuffer, deadline: float) -> bool:
    """Read output until the child exited and the pipe closed; True on timeout.

    When the child exits, left-over members of its group (background jobs of
    a script) are killed while the child is still unreaped, then the pipe is
    drained for at most DRAIN_AFTER_EXIT_S (a descendant that left the group
    may hold it open forever)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    try:
        sel.register(fd, selectors.EVENT_READ, "out")
        if pidfd is not None:
            sel.register(pidfd, selectors.EVENT_READ, "exit")
        out_open, exited = True, False
        drain_deadline = math.inf
        while out_open:
            now = time.monotonic()
            if not exited and now >= deadline:
                return True
            if exited and now >= drain_deadline:
                break
            wait = (drain_deadline if exited else deadline) - now
            if pidfd is None and not exited:
                wait = min(wait, 0.05)
            for key, _ in sel.select(max(wait, 0.0)):
                if key.data == "out":
                    chunk = os.read(fd, 65536)
                    if chunk:
                        buf.add(chunk)
                    else:
                        sel.unregister(fd)
                        out_open = False
                elif key.data == "exit":
                    sel.unregister(pidfd)
                    exited = True
            if not exited and (pidfd is None or not out_open) and _exited_unreaped(proc.pid):
                exited = True
            if exited and drain_deadline == math.inf:
                _signal_group(proc.pid, signal.SIGKILL)
                drain_deadline = time.monotonic() + DRAIN_AFTER_EXIT_S
        if not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not _wait_exit(proc.pid, pidfd, remaining):
                return True
            _signal_group(proc.pid, signal.SIGKILL)
        return False
    finally:
        sel.close()


def _private_parent() -> str | None:
    """Where a benchmark's private directory goes: /var/tmp, which is on disk
    (fio measures the disk there, /tmp may be RAM), else the default temp dir."""
    parent = "/var/tmp"
    return parent if os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK) else None


def run_process(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    kill_grace_s: float = DEFAULT_KILL_GRACE_S,
) -> Completed:
    """Run argv once in its own session; see the module docstring for the
    kill-the-whole-group guarantees. A timeout is a BenchmarkError; a non-zero
    exit is returned (the caller words that error)."""
    argv = [str(a) for a in argv]
    if not argv:
        raise BenchmarkError("the benchmark command is empty; give the program to run")
    command = shlex.join(argv)
    private_dir = None
    if cwd is None:
        # A private, empty working directory: nothing is loaded from where
        # cli-ai was started (sysbench finds ./<test>.lua there first), and
        # whatever the benchmark writes there is removed with it.
        argv = absolute_paths(argv, os.getcwd())
        private_dir = cwd = tempfile.mkdtemp(prefix="cli-ai-bench-", dir=_private_parent())
    try:
        return _run(argv, command, timeout_s=timeout_s, env=env, cwd=cwd, kill_grace_s=kill_grace_s)
    finally:
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)


def _run(argv: list[str], command: str, *, timeout_s: float, env: Mapping[str, str] | None, cwd: str,
         kill_grace_s: float) -> Completed:
    with subreaper():
        return _run_reaped(argv, command, timeout_s=timeout_s, env=env, cwd=cwd, kill_grace_s=kill_grace_s)


def _run_reaped(argv: list[str], command: str, *, timeout_s: float, env: Mapping[str, str] | None, cwd: str,
                kill_grace_s: float) -> Completed:
    before = children()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else benchmark_env(),
            cwd=cwd,
        )
    except FileNotFoundError:
        raise BenchmarkError(
            f"benchmark program {argv[0]!r} not found: {command}; install it or give its full path"
        ) from None
    except PermissionError:
        raise BenchmarkError(f"benchmark program {argv[0]!r} is not executable: {command}") from None
    except OSError as exc:
        raise BenchmarkError(f"cannot start the benchmark {command}: {exc.strerror or exc}") from None
    pidfd = _pidfd(proc.pid)
    buf = _OutputBuffer()
    try:
        try:
            timed_out = _collect(proc, pidfd, buf, start + timeout_s)
        except BaseException:
            _terminate_group(proc, pidfd, kill_grace_s)
            raise
        if timed_out:
            _terminate_group(proc, pidfd, kill_grace_s)
            text = buf.text()
            head = (
                f"benchmark timed out after {timeout_s:g} s and was stopped: {command}; raise "
                "benchmark.timeout_s (or training_config.benchmark_timeout) or shorten the benchmark"
            )
            problems = [head, *quoted_tail(text)]
            raise BenchmarkError("\n".join(problems), problems=problems)
        returncode = proc.wait()
    finally:
        if pidfd is not None:
            os.close(pidfd)
        if proc.stdout is not None:
            proc.stdout.close()
        # what the step left behind: daemons handed to us as their subreaper
        sweep(before, keep=proc.pid if proc.returncode is None else None)
    return Completed(output=buf.text(), returncode=returncode, duration_s=time.monotonic() - start)


def exit_status_error(command: str, returncode: int, text: str, what: str = "benchmark") -> BenchmarkError:
    """A failed run, quoting how it ended and the end of its output."""
    if returncode < 0:
        try:
            how = f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"was killed by signal {-returncode}"
    else:
        how = f"exited with status {returncode}"
    head = f"{what} {how}: {command}; run it by hand to see why"
    problems = [head, *quoted_tail(text)]
    return BenchmarkError("\n".join(problems), problems=problems)
