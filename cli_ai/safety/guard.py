"""The Guard: nothing changes on the machine except inside it, and everything
it changed is put back on every way out.

    with Guard(backend, names) as guard:   # lock, journal (fsync), signal handlers
        guard.apply({"net.core.somaxconn": 1024})
    # originals restored and verified; journal deleted only if all are back

Every catchable signal whose default is to end the process (Ctrl+C, TERM,
HUP, QUIT, USR1, USR2, ALRM, ... see `HANDLED_SIGNALS`) raises `Interrupted`
in the main thread so the `with` block unwinds through the restore. After a
`kill -9` the journal stays on disk and `rollback()` (the `cli-ai rollback`
command) restores from it, after checking it (`journal_check.py`).

A run that writes files of its own before its Guard is entered (the run
directory, a broker's backup) takes the Guard's refusals first with
`claim()`, and hands the held lock to the Guard:

    lock = claim(sink=sink)                  # LockHeldError / JournalPendingError: nothing written yet
    ...                                      # run directory, session
    with Guard(backend, names, lock=lock) as guard: ...
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Iterable, Mapping

from cli_ai.core.backend import Backend, Value, same_value
from cli_ai.errors import (
    BackendWriteError,
    CliAiError,
    Interrupted,
    JournalPendingError,
    RestoreError,
    SafetyError,
    TooManyFailures,
)
from cli_ai.events import Event, EventSink, null_sink
from cli_ai.safety.constraints import exclusive_twin, restore_order
from cli_ai.safety.files import restore_files
from cli_ai.safety.journal import APPLIED_NAME, Journal, JournalRecord, state_dir
from cli_ai.safety.lock import LOCK_NAME, MachineLock, pid_alive
# rollback lives in its own module; importable from here as before.
from cli_ai.safety.rollback import RollbackOutcome, rollback


def _terminating_signals() -> tuple[int, ...]:
    """The signals that end a process by default and that a program can catch,
    and that come from outside (not a fault of the program itself: SEGV, BUS,
    FPE, ILL, TRAP, SYS and ABRT re-fault or abort whatever a handler does).

    SIGPIPE stays ignored, as Python sets it: a process-wide handler cannot
    tell `kill -PIPE` from the kernel's SIGPIPE for a write to a closed socket
    (a benchmark's client, the broker probe), which must stay an EPIPE error
    the code handles; ignored, `kill -PIPE` cannot end the run without its
    restore. SIGXFSZ stays ignored too (Python's default): a too-large write
    is an error of that write."""
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM", "SIGPROF",
             "SIGXCPU", "SIGIO", "SIGPWR", "SIGSTKFLT")
    sigs = [getattr(signal, n) for n in names if hasattr(signal, n)]
    if hasattr(signal, "SIGRTMIN"):
        sigs += range(signal.SIGRTMIN, signal.SIGRTMAX + 1)
    return tuple(dict.fromkeys(int(s) for s in sigs))


HANDLED_SIGNALS = _terminating_signals()


def claim(directory: Path | None = None, *, sink: EventSink = null_sink) -> MachineLock:
    """The Guard's refusals, before anything is written: take the machine
    lock (LockHeldError while another run holds it) and refuse a journal a
    crashed run left (JournalPendingError). Returns the held lock, for
    `Guard(..., lock=)`; the caller releases it if it never enters the Guard."""
    lock = MachineLock(directory or state_dir())
    lock.acquire()
    if lock.took_over_from:
        sink(Event("lock_takeover", {"pid": lock.took_over_from}))
    try:
        _refuse_pending_journal(Journal(lock.directory))
    except BaseException:
        lock.release()
        raise
    return lock


def _refuse_pending_journal(journal: Journal) -> None:
    # A malformed or unsafe journal is a StateError (exit 2) from read().
    pending = journal.read()
    if pending is not None:
        raise JournalPendingError(
            f"a previous run (PID {pending.pid}) left changed values in {journal.path}; "
            "run `cli-ai rollback` to restore them first"
        )


class FailureCounter:
    """Stops a run after `limit` consecutive failed steps (seed 004: 3)."""

    def __init__(self, limit: int = 3):
        if limit < 1:
            raise ValueError("the failure limit must be at least 1")
        self.limit = limit
        self.consecutive = 0
        self.total = 0

    def success(self) -> None:
        self.consecutive = 0

    def failure(self, reason: str) -> None:
        self.consecutive += 1
        self.total += 1
        if self.consecutive >= self.limit:
            raise TooManyFailures(
                f"stopped after {self.consecutive} consecutive failed steps (last: {reason}); "
                "values are restored. Narrow the ranges or fix the benchmark, then try again"
            )


class Guard:
    """Journal, lock, signal handling and verified restore around a backend."""

    def __init__(
        self,
        backend: Backend,
        names: Iterable[str],
        *,
        directory: Path | None = None,
        sink: EventSink = null_sink,
        workload: str | None = None,
        netns_params: Iterable[str] = (),
        install_signal_handlers: bool = True,
        keep_on_success: bool = False,
        lock: MachineLock | None = None,
    ):
        """`keep_on_success` (for `cli-ai apply`): when the block ends without an
        error, leave the values in place and move the journal to `applied.json`,
        so that `cli-ai rollback` can still undo them; any error still restores.
        `lock`: the lock `claim()` took (its refusals passed); the Guard owns
        it from here and releases it on exit."""
        self.backend = backend
        self.names = list(dict.fromkeys(names))
        # The twin of an exclusive pair is journaled too: writing a name zeroes
        # it in the kernel, so it is one of the values this run changes.
        twins = [t for t in map(exclusive_twin, self.names) if t is not None and t not in self.names]
        self.journaled = self.names + [t for t in dict.fromkeys(twins) if backend.exists(t)]
        self.directory = directory or (lock.directory if lock is not None else state_dir())
        if lock is not None and lock.directory != self.directory:
            raise ValueError(f"the claimed lock is in {lock.directory}, this Guard's state directory is {self.directory}")
        self.sink = sink
        self.workload = workload
        self.netns_params = [n for n in netns_params if n in self.names]
        self.install_signal_handlers = install_signal_handlers
        self.keep_on_success = keep_on_success
        self.files: list[dict] = []
        self.journal = Journal(self.directory)
        self.lock = lock or MachineLock(self.directory)
        self._claimed = lock is not None
        self.originals: dict[str, Value] = {}
        self.changed = False
        self.restored = False
        self._old_handlers: dict[int, object] = {}
        self._pending_signal: int | None = None
        self._restoring = False
        self._journaled = backend.changes_machine

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Guard":
        if self._journaled:
            if not self._claimed:
                self.lock.acquire()
                if self.lock.took_over_from:
                    self.sink(Event("lock_takeover", {"pid": self.lock.took_over_from}))
            try:
                if not self._claimed:
                    _refuse_pending_journal(self.journal)
                if self.keep_on_success:
                    # What an earlier apply kept must be readable before this
                    # one writes: its originals are merged into it at the end.
                    Journal(self.directory, APPLIED_NAME).read()
                self.originals = self.backend.read(self.journaled)
                self.journal.write(
                    JournalRecord(
                        backend=self.backend.describe(),
                        originals=self.originals,
                        workload=self.workload,
                        netns_params=self.netns_params,
                    )
                )
            except BaseException:
                self.lock.release()
                raise
            self.sink(Event("journal_written", {"path": str(self.journal.path), "originals": dict(self.originals)}))
        else:
            self.lock.release()  # claimed for a backend that turned out to write nothing: not needed
            self.originals = self.backend.read(self.journaled)
        self._install_handlers()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._restoring = True
        if exc is None and self.keep_on_success and self._journaled and self._pending_signal is None:
            try:
                self._keep()
                return False
            finally:
                self._restoring = False
                self._remove_handlers()
                self.lock.release()
        try:
            self.restore()
        except RestoreError:
            if exc is None:
                raise
            # The first error wins; the restore failure was reported as an event
            # and the journal is kept for `cli-ai rollback`.
        finally:
            self._restoring = False
            self._remove_handlers()
            if self._journaled:
                self.lock.release()
        if self._pending_signal is not None and exc is None:
            raise Interrupted(self._pending_signal)
        return False

    def _keep(self) -> None:
        """Merge this run's originals into applied.json (older originals win:
        they are the values from before any apply) and drop journal.json."""
        applied = Journal(self.directory, APPLIED_NAME)
        previous = applied.read()
        originals = dict(self.originals)
        files = list(self.files)
        netns = set(self.netns_params)
        redundant: list[str] = []
        if previous is not None:
            originals.update(previous.originals)
            known = {f["path"] for f in previous.files}
            files = list(previous.files) + [f for f in files if f["path"] not in known]
            # A file an earlier apply already wrote: its first backup (the
            # admin's original) is what rollback restores; this run's backup
            # is a copy of cli-ai's own earlier file, removed once applied.json
            # no longer needs it (below).
            redundant = [f["backup"] for f in self.files if f["path"] in known and f.get("backup")]
            netns |= set(previous.netns_params)
        applied.write(JournalRecord(backend=self.backend.describe(), originals=originals, workload=self.workload,
                                    netns_params=sorted(netns), files=files))
        self.journal.delete()
        for backup in redundant:
            try:
                os.unlink(backup)
            except FileNotFoundError:
                pass
        self.sink(Event("kept", {"values": self.changed, "journal": str(applied.path)}))

    def record_file(self, path: str, backup: str | None) -> None:
        """Note a file this run wrote (and its backup), in the journal too."""
        self.files.append({"path": path, "backup": backup})
        if self._journaled:
            self.journal.write(JournalRecord(backend=self.backend.describe(), originals=self.originals,
                                             workload=self.workload, netns_params=self.netns_params, files=self.files))

    # ------------------------------------------------------------ writes
    def apply(self, values: Mapping[str, Value]) -> None:
        """Write `values` (only params journaled by this guard)."""
        unknown = [n for n in values if n not in self.originals or n not in self.names]
        if unknown:
            raise SafetyError(f"{unknown[0]}: not journaled by this run; refusing to write it")
        self.changed = True
        self.backend.write(values)

    def restore(self) -> dict[str, Value]:
        """Write every original back, verify it, delete the journal if all are back."""
        if not self.originals or self.restored:
            return {}
        failures: list[str] = []
        writes, implied = restore_order(self.originals)  # the zeroed twin of a pair comes back by itself
        for name in writes + implied:
            value = self.originals[name]
            try:
                if name in writes:
                    self.backend.write({name: value})
                got = self.backend.read([name])[name]
                if not same_value(got, value):
                    failures.append(f"{name}: reads back {got!r}, expected {value!r}")
            except CliAiError as exc:
                failures.append(str(exc))
            except OSError as exc:
                failures.append(f"{name}: {exc}")
        failures.extend(restore_files(self.files, trusted=True))
        if failures:
            self.sink(Event("restore_failed", {"failures": failures, "journal": str(self.journal.path)}))
            raise RestoreError(
                f"{len(failures)} value(s) not restored; the journal {self.journal.path} is kept, "
                "run `cli-ai rollback`",
                problems=[f"not restored: {f}" for f in failures]
                + [f"journal kept at {self.journal.path}; run `cli-ai rollback`"],
            )
        if self._journaled:
            self.journal.delete()
        self.restored = True
        self.sink(Event("restored", {"values": dict(self.originals), "changed": self.changed}))
        return dict(self.originals)

    # ------------------------------------------------------------ signals
    def _on_signal(self, signum, frame) -> None:
        if self._restoring:
            # Never abandon a restore half-way; re-raise once it is done.
            self._pending_signal = signum
            return
        raise Interrupted(signum)

    def _install_handlers(self) -> None:
        if not self.install_signal_handlers or threading.current_thread() is not threading.main_thread():
            return
        for sig in HANDLED_SIGNALS:
            try:
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
            except (OSError, ValueError):  # a signal this platform does not let Python catch
                continue

    def _remove_handlers(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)  # type: ignore[arg-type]
        self._old_handlers.clear()


__all__ = ["Guard", "claim", "FailureCounter", "MachineLock", "rollback", "RollbackOutcome", "pid_alive", "BackendWriteError",
           "restore_files", "HANDLED_SIGNALS", "LOCK_NAME"]
