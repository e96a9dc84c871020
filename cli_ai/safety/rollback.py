"""`cli-ai rollback`: restore what a journal on disk says a run changed.

Nothing is restored unless the whole journal passes its checks: a trusted
state directory and file (`state.py`), a strict shape (`journal.py`),
catalogued names and typed values, only files cli-ai manages
(`journal_check.py`), and a backend description the registry accepts (it
lives above this layer and comes in as `backend_for`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from cli_ai.core.backend import Backend, Value, same_value
from cli_ai.errors import CliAiError, LockHeldError, SafetyError, StateError
from cli_ai.safety.constraints import restore_order
from cli_ai.safety.files import restore_files
from cli_ai.safety.journal import APPLIED_NAME, Journal, JournalRecord, current_netns, state_dir
from cli_ai.safety.journal_check import check_files, check_originals, refuse_out_of_range
from cli_ai.safety.lock import MachineLock, pid_alive
from cli_ai.safety.state import check_state_dir

class RollbackOutcome:
    def __init__(self, record: JournalRecord | None, restored: dict[str, tuple[Value, Value]], failures: list[str],
                 kind: str = "journal", *, discarded: bool = False, notes: list[str] | None = None,
                 state_dir: Path | None = None):
        self.record = record
        self.state_dir = state_dir  # where the journal was looked for
        self.kind = kind  # "journal" (an interrupted run) or "applied" (cli-ai apply)
        self.restored = restored  # name -> (value before rollback, original)
        self.failures = failures
        self.discarded = discarded  # the journal was removed without restoring (--discard)
        self.notes = list(notes or [])  # what the person still has to do (a broker to reload)
        self.files: list[str] = []  # the files put back or removed, one line each


def _pending(d: Path) -> tuple[str, Journal]:
    """The journal to roll back: an interrupted run's, else what `apply` kept."""
    journal = Journal(d)
    if journal.exists():
        return "journal", journal
    return "applied", Journal(d, APPLIED_NAME)


def _rebuild(backend_for: Callable[[dict[str, Any]], Backend], record: JournalRecord, where: str) -> Backend:
    """The journal's backend, from its description; the registry above checks
    the description (a fixed root, no commands) and raises BadInputError."""
    try:
        return backend_for(record.backend)
    except CliAiError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise StateError(f"journal {where}: backend: {exc}; nothing was restored. Inspect the journal, then "
                         "remove it (`cli-ai rollback --discard`)") from None


def _discard(d: Path, force: bool) -> RollbackOutcome:
    """Remove the pending journal without restoring, even one that is
    malformed (the directory itself was checked: it is the user's own)."""
    kind, journal = _pending(d)
    if not journal.exists():
        return RollbackOutcome(None, {}, [], state_dir=d)
    with MachineLock(d):
        try:
            record = journal.read()
        except StateError:
            record = None
        if kind == "journal" and record is not None and record.pid != os.getpid() and pid_alive(record.pid) \
                and not force:
            raise LockHeldError(
                f"the run that wrote the journal (PID {record.pid}) is still alive; stop it first "
                "(it restores on SIGTERM), or pass --force"
            )
        if os.path.isdir(journal.path) and not os.path.islink(journal.path):
            raise StateError(f"journal {journal.path} is a directory; remove it by hand (rm -r {journal.path})")
        journal.delete()
    return RollbackOutcome(record, {}, [], kind, discarded=True)


def rollback(
    directory: Path | None = None,
    *,
    force: bool = False,
    discard: bool = False,
    backend: Backend | None = None,
    backend_for: Callable[[dict[str, Any]], Backend] | None = None,
    allow_out_of_range: bool = False,
) -> RollbackOutcome:
    """Restore every value of a left-over journal (an interrupted run) or, when
    there is none, of what `cli-ai apply` applied; delete it when all are back.

    Nothing is restored unless the whole journal passes its checks: a trusted
    state directory and file (`state.py`), a strict shape (`journal.py`),
    catalogued names and typed values, only files cli-ai manages
    (`journal_check.py`), a backend description the registry accepts.

    :param backend: restore through this backend
    :param backend_for: else, rebuild the journal's backend from the
        description it recorded (the layer above knows the backend kinds:
        `pipeline.rollback` passes `tactician.backends.backend_from_description`)
    :param allow_out_of_range: restore originals outside the catalogue's safe
        range too (the person confirmed); else OriginalsOutOfRange (exit 3)
    """
    if backend is None and backend_for is None:
        raise ValueError("rollback needs a backend or a way to rebuild one from the journal")
    d = directory or state_dir()
    if not check_state_dir(d, create=False):
        return RollbackOutcome(None, {}, [], state_dir=d)
    if discard:
        return _discard(d, force)
    kind, journal = _pending(d)
    record = journal.read()
    if record is None:
        return RollbackOutcome(None, {}, [], state_dir=d)
    with MachineLock(d):
        if kind == "journal" and record.pid != os.getpid() and pid_alive(record.pid) and not force:
            raise LockHeldError(
                f"the run that wrote the journal (PID {record.pid}) is still alive; stop it first "
                "(it restores on SIGTERM), or pass --force"
            )
        here = current_netns()
        if record.netns_params and record.netns and here and record.netns != here and not force:
            raise SafetyError(
                f"the journal was written in another network namespace (inode {record.netns}, this shell is in "
                f"{here}) and holds per-namespace params ({', '.join(record.netns_params)}); run `cli-ai rollback` "
                "inside that namespace, or pass --discard if it no longer exists"
            )
        outside = check_originals(record, str(journal.path))
        target = backend or _rebuild(backend_for, record, str(journal.path))  # type: ignore[arg-type]
        check_files(record, target.managed_files(), str(journal.path))
        if outside and not allow_out_of_range:
            refuse_out_of_range(outside)
        restored: dict[str, tuple[Value, Value]] = {}
        failures: list[str] = []
        writes, implied = restore_order(record.originals)  # the zeroed twin of a pair comes back by itself
        seen: dict[str, Value] = {}
        for name in implied:  # what it was before the writes below change it
            try:
                seen[name] = target.read([name])[name]
            except (CliAiError, OSError):
                pass
        for name in writes + implied:
            original = record.originals[name]
            try:
                before = seen[name] if name in seen else target.read([name])[name]
                if name in writes:
                    target.write({name: original})
                after = target.read([name])[name]
                if same_value(after, original):
                    restored[name] = (before, original)
                else:
                    failures.append(f"{name}: reads back {after!r}, expected {original!r}")
            except (CliAiError, OSError) as exc:
                failures.append(str(exc))
        files_done: list[str] = []
        failures.extend(restore_files(record.files, trusted=False, done=files_done))
        if not failures:
            journal.delete()
        notes = target.rollback_notes()
        target.finish_rollback(not failures)
        outcome = RollbackOutcome(record, restored, failures, kind, notes=notes)
        outcome.files = files_done
        return outcome



__all__ = ["RollbackOutcome", "rollback"]
