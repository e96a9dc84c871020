"""Nothing is lost: real /proc/sys writes inside a private network namespace
(`unshare -n`), the writer killed in the ways a run can die, the original back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import cli_ai_cmd, needs_netns

HELPER = Path(__file__).parent / "helpers" / "guard_child.py"
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


def in_netns(script: str, tmp_path: Path) -> dict[str, str]:
    """Run a bash script in a fresh network namespace; collect its key=value lines."""
    env = dict(os.environ)
    env["PY"] = sys.executable
    env["HELPER"] = str(HELPER)
    env["READY"] = str(tmp_path / "ready")
    env["CLI"] = " ".join(cli_ai_cmd())
    env["PYTHONPATH"] = str(Path(__file__).parent.parent)
    out = subprocess.run(["unshare", "-n", "bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    values = {}
    for line in out.stdout.splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    values["_stderr"] = out.stderr
    return values


WAIT_READY = 'for i in $(seq 200); do [ -f "$READY" ] && break; sleep 0.05; done\n'


@needs_netns
def test_sigkill_then_rollback_restores(tmp_path):
    host_before = SOMAXCONN.read_text()
    script = (
        "P=/proc/sys/net/core/somaxconn; echo orig=$(cat $P)\n"
        '$PY $HELPER hold net.core.somaxconn 1234 "$READY" & pid=$!\n'
        + WAIT_READY
        + "echo during=$(cat $P)\n"
        "kill -9 $pid; wait $pid; echo child_rc=$?\n"
        "echo after_kill=$(cat $P)\n"
        "$CLI rollback; echo rollback_rc=$?\n"
        "echo after_rollback=$(cat $P)\n"
        "$CLI rollback; echo second_rc=$?\n"
    )
    v = in_netns(script, tmp_path)
    assert v["during"] == "1234", v
    assert v["child_rc"] == "137"
    assert v["after_kill"] == "1234"  # kill -9 leaves the change, and the journal
    assert v["rollback_rc"] == "0", v["_stderr"]
    assert v["after_rollback"] == v["orig"]
    assert v["second_rc"] == "0"  # nothing left to roll back
    assert not (tmp_path / "state" / "journal.json").exists()
    assert SOMAXCONN.read_text() == host_before  # the host namespace never changed


@needs_netns
def test_sigterm_restores_without_rollback(tmp_path):
    script = (
        "P=/proc/sys/net/core/somaxconn; echo orig=$(cat $P)\n"
        '$PY $HELPER hold net.core.somaxconn 2222 "$READY" & pid=$!\n'
        + WAIT_READY
        + "echo during=$(cat $P)\n"
        "kill -TERM $pid; wait $pid; echo child_rc=$?\n"
        "echo after=$(cat $P)\n"
    )
    v = in_netns(script, tmp_path)
    assert v["during"] == "2222", v
    assert v["child_rc"] == "130", v["_stderr"]
    assert v["after"] == v["orig"]
    assert not (tmp_path / "state" / "journal.json").exists()


@needs_netns
def test_failure_counter_stops_and_restores(tmp_path):
    script = (
        "P=/proc/sys/net/core/somaxconn; echo orig=$(cat $P)\n"
        '$PY $HELPER fail net.core.somaxconn 3000 "$READY"; echo child_rc=$?\n'
        "echo after=$(cat $P)\n"
    )
    v = in_netns(script, tmp_path)
    assert v["child_rc"] == "4", v["_stderr"]
    assert "stopped after 3 consecutive failed steps" in v["_stderr"]
    assert v["after"] == v["orig"]


@needs_netns
def test_rollback_refuses_another_namespace(tmp_path):
    """A journal of per-namespace params is never replayed into the wrong namespace."""
    script = (
        '$PY $HELPER hold net.core.somaxconn 1500 "$READY" & pid=$!\n'
        + WAIT_READY
        + "kill -9 $pid; wait $pid\n"
    )
    in_netns(script, tmp_path)
    r = subprocess.run([*cli_ai_cmd(), "rollback"], capture_output=True, text=True)
    assert r.returncode == 3 and "another network namespace" in r.stderr
    r = subprocess.run([*cli_ai_cmd(), "rollback", "--discard"], capture_output=True, text=True)
    assert r.returncode == 0
    assert not (tmp_path / "state" / "journal.json").exists()
