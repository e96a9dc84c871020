"""The Guard's journal, lock and restore, on an in-memory backend that
pretends to change the machine (so it is journaled and locked like sysctl)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from cli_ai.errors import (
    BackendWriteError,
    JournalPendingError,
    LockHeldError,
    RestoreError,
    SafetyError,
    TooManyFailures,
)
from cli_ai.events import EventLog
from cli_ai.safety.guard import FailureCounter, Guard, rollback
from cli_ai.safety.journal import Journal, state_dir
from cli_ai.tactician.backends.simulated import SimulatedBackend
from tests.conftest import run_cli


class MachineLike(SimulatedBackend):
    changes_machine = True


def test_state_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("CLI_AI_STATE_DIR", str(tmp_path / "a"))
    assert state_dir() == tmp_path / "a"
    monkeypatch.delenv("CLI_AI_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "cli-ai"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state_dir() == tmp_path / "home" / ".local" / "state" / "cli-ai"


def test_journal_on_disk_before_first_write_and_removed_after():
    backend = MachineLike({"vm.swappiness": 60, "net.ipv4.tcp_rmem": (4096, 131072, 6291456)})
    seen_journal = {}

    def refuse(name, value):
        # Called on every write: the journal must already hold the originals.
        seen_journal.update(json.loads((state_dir() / "journal.json").read_text())["originals"])
        return None

    backend.refuse = refuse
    log = EventLog()
    with Guard(backend, ["vm.swappiness", "net.ipv4.tcp_rmem"], sink=log) as guard:
        path = state_dir() / "journal.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        guard.apply({"vm.swappiness": 10, "net.ipv4.tcp_rmem": (4096, 87380, 1048576)})
        assert backend.values["vm.swappiness"] == 10
    assert seen_journal == {"vm.swappiness": 60, "net.ipv4.tcp_rmem": [4096, 131072, 6291456]}
    assert backend.values == {"vm.swappiness": 60, "net.ipv4.tcp_rmem": (4096, 131072, 6291456)}
    assert not (state_dir() / "journal.json").exists()
    assert log.kinds() == ["journal_written", "restored"]


def test_restore_on_exception_and_first_error_wins():
    backend = MachineLike({"vm.swappiness": 60})
    with pytest.raises(ZeroDivisionError):
        with Guard(backend, ["vm.swappiness"]) as guard:
            guard.apply({"vm.swappiness": 5})
            1 / 0
    assert backend.values["vm.swappiness"] == 60


def test_failed_restore_keeps_journal_and_rollback_finishes_it():
    backend = MachineLike({"vm.swappiness": 60})
    broken = {"on": False}
    backend.refuse = lambda n, v: "device busy" if broken["on"] and v == 60 else None
    with pytest.raises(RestoreError) as exc:
        with Guard(backend, ["vm.swappiness"]) as guard:
            guard.apply({"vm.swappiness": 5})
            broken["on"] = True
    assert "journal" in str(exc.value) and Journal().exists()
    broken["on"] = False
    outcome = rollback(backend=backend)
    assert outcome.restored == {"vm.swappiness": (5, 60)} and not outcome.failures
    assert not Journal().exists()


def test_guard_refuses_params_it_did_not_journal():
    backend = MachineLike({"vm.swappiness": 60, "vm.dirty_ratio": 20})
    with Guard(backend, ["vm.swappiness"]) as guard:
        with pytest.raises(SafetyError, match="not journaled"):
            guard.apply({"vm.dirty_ratio": 10})
    assert backend.values["vm.dirty_ratio"] == 20


def test_pending_journal_blocks_a_new_run():
    backend = MachineLike({"vm.swappiness": 60})
    Journal().write(__import__("cli_ai.safety.journal", fromlist=["JournalRecord"]).JournalRecord(
        backend={"kind": "sysctl", "config": {}}, originals={"vm.swappiness": 30}, pid=999999999))
    with pytest.raises(JournalPendingError, match="cli-ai rollback"):
        with Guard(backend, ["vm.swappiness"]):
            pass
    assert backend.writes == []


LOCK_HOLDER = """
import sys, time
from cli_ai.safety.guard import MachineLock
lock = MachineLock().acquire()
print("locked", flush=True)
time.sleep(30)
"""


def test_lock_names_the_holder_and_stale_lock_is_taken_over():
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        backend = MachineLike({"vm.swappiness": 60})
        with pytest.raises(LockHeldError, match=f"PID {holder.pid}"):
            with Guard(backend, ["vm.swappiness"]):
                pass
    finally:
        holder.kill()
        holder.wait()
    # The dead holder's PID is still in the file; the lock is free and taken over.
    log = EventLog()
    with Guard(MachineLike({"vm.swappiness": 60}), ["vm.swappiness"], sink=log):
        pass
    assert log.of("lock_takeover")[0].data["pid"] == holder.pid


def test_failure_counter_counts_consecutive_only():
    counter = FailureCounter(3)
    counter.failure("a")
    counter.failure("b")
    counter.success()
    counter.failure("c")
    counter.failure("d")
    with pytest.raises(TooManyFailures, match="3 consecutive failed steps .last: e"):
        counter.failure("e")
    assert counter.total == 5
    with pytest.raises(ValueError):
        FailureCounter(0)


def test_simulated_backend_is_never_journaled():
    backend = SimulatedBackend({"vm.swappiness": 60})
    with Guard(backend, ["vm.swappiness"]) as guard:
        guard.apply({"vm.swappiness": 1})
        assert not (state_dir() / "journal.json").exists()
        assert not (state_dir() / "lock").exists()
    assert backend.values["vm.swappiness"] == 60


def test_rollback_with_nothing_to_do_exits_zero():
    r = run_cli("rollback")
    assert r.returncode == 0 and "nothing to roll back" in r.stdout


def test_rollback_refuses_while_writer_lives():
    from cli_ai.safety.journal import JournalRecord

    Journal().write(JournalRecord(backend={"kind": "sysctl", "config": {}}, originals={"vm.swappiness": 1},
                                  pid=os.getppid()))
    r = run_cli("rollback")
    assert r.returncode == 3 and f"PID {os.getppid()}" in r.stderr and "still alive" in r.stderr


def test_backend_write_error_is_exit_4():
    assert BackendWriteError("x").exit_code == 4


def test_sysctl_backend_on_a_fake_tree(tmp_path):
    """The real SysctlBackend against a directory shaped like /proc/sys: it reads
    multi-value files, writes, reads back, and reports a value not taken."""
    from cli_ai.tactician.backends.sysctl import SysctlBackend

    (tmp_path / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "net" / "ipv4" / "tcp_rmem").write_text("4096\t131072\t6291456\n")
    (tmp_path / "vm").mkdir()
    (tmp_path / "vm" / "swappiness").write_text("60\n")
    backend = SysctlBackend(tmp_path)
    assert backend.read(["net.ipv4.tcp_rmem", "vm.swappiness"]) == {
        "net.ipv4.tcp_rmem": (4096, 131072, 6291456), "vm.swappiness": 60}
    backend.write({"net.ipv4.tcp_rmem": (4096, 87380, 1048576)})
    assert (tmp_path / "net" / "ipv4" / "tcp_rmem").read_text() == "4096\t87380\t1048576"
    with pytest.raises(BackendWriteError, match="does not exist on this kernel"):
        backend.read(["vm.nope"])
    with pytest.raises(SafetyError):
        backend.path("../etc/passwd")


def test_signal_during_guard_restores(tmp_path):
    """SIGINT inside the guard raises Interrupted (exit 130) after restoring."""
    code = """
import os, signal, sys, time
from cli_ai.errors import Interrupted
from cli_ai.safety.guard import Guard
from cli_ai.tactician.backends.simulated import SimulatedBackend
class M(SimulatedBackend):
    changes_machine = True
b = M({"vm.swappiness": 60})
try:
    with Guard(b, ["vm.swappiness"]) as g:
        g.apply({"vm.swappiness": 1})
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
except Interrupted as e:
    print("restored", b.values["vm.swappiness"], e.exit_code)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "restored 60 130", out.stderr


def test_two_applies_then_one_rollback_restores_the_first_original():
    backend = MachineLike({"vm.swappiness": 60, "vm.dirty_ratio": 20})
    with Guard(backend, ["vm.swappiness"], keep_on_success=True) as guard:
        guard.apply({"vm.swappiness": 10})
    with Guard(backend, ["vm.swappiness", "vm.dirty_ratio"], keep_on_success=True) as guard:
        guard.apply({"vm.swappiness": 5, "vm.dirty_ratio": 30})
    assert backend.values == {"vm.swappiness": 5, "vm.dirty_ratio": 30}
    assert not Journal().exists()  # an apply is not an interrupted run: a tune may start
    outcome = rollback(backend=backend)
    assert outcome.kind == "applied"
    assert backend.values == {"vm.swappiness": 60, "vm.dirty_ratio": 20}


def test_an_apply_that_fails_restores_everything():
    backend = MachineLike({"vm.swappiness": 60, "vm.dirty_ratio": 20})
    backend.refuse = lambda n, v: "rejected" if v == 99 else None
    with pytest.raises(BackendWriteError):
        with Guard(backend, ["vm.swappiness", "vm.dirty_ratio"], keep_on_success=True) as guard:
            guard.apply({"vm.swappiness": 5})
            guard.apply({"vm.dirty_ratio": 99})
    assert backend.values == {"vm.swappiness": 60, "vm.dirty_ratio": 20}
    assert rollback(backend=backend).record is None  # nothing kept
