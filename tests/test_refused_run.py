"""A run the Guard refuses (another run holds the lock, a crashed run left its
journal) exits 3 and leaves nothing behind: no run directory, no results
(issue 15, item 10). Real `cli-ai tune` runs, not dry runs, inside the
security sandbox (a private network namespace, /proc/sys read-only but net/),
where net.core.somaxconn is written for real and the host never sees it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from cli_ai.safety.lock import MachineLock
from tests.conftest import EXAMPLES, needs_netns, run_cli
from tests.security.sandbox import journal, plant, sandbox

RUN = (
    '$CLI tune "$TMP/spec.json" --yes --output-dir "$TMP/runs" > "$TMP/out" 2> "$TMP/err"; echo @rc=$?\n'
    "echo @somaxconn=$(cat /proc/sys/net/core/somaxconn)\n"
)


def _spec(tmp_path: Path) -> None:
    bench = tmp_path / "bench.py"
    bench.write_text("print('score: 1')\n")
    (tmp_path / "spec.json").write_text(json.dumps({
        "workload_name": "refused run",
        "reward_metric": "score",
        "benchmark_command": f"{sys.executable} {bench}",
        "action_space": [{"param": "net.core.somaxconn", "type": "int", "min": 1000, "max": 2000}],
        "training_config": {"algorithm": "random", "budget": 4, "seed": 1},
    }))


def _run(tmp_path: Path) -> dict[str, str]:
    v = sandbox("echo 1500 > /proc/sys/net/core/somaxconn\n" + RUN, tmp_path,
                CLI_AI_STATE_DIR=str(tmp_path / "state"))
    v["err"] = (tmp_path / "err").read_text() if (tmp_path / "err").exists() else ""
    return v


@needs_netns
def test_a_run_refused_for_the_lock_leaves_no_run_directory(tmp_path):
    _spec(tmp_path)
    lock = MachineLock(tmp_path / "state").acquire()  # this test process is the "other run"
    try:
        v = _run(tmp_path)
    finally:
        lock.release()
    assert v["rc"] == "3", v["err"] + v["_stderr"]
    assert f"another cli-ai run (PID {os.getpid()}) is tuning this machine" in v["err"]
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []
    assert v["somaxconn"] == "1500"
    # The same run, once the lock is free, does write its run directory (the
    # test above can fail).
    v = _run(tmp_path)
    assert v["rc"] == "0", v["err"] + v["_stderr"]
    assert len(list((tmp_path / "runs").iterdir())) == 1


@needs_netns
def test_a_run_refused_for_a_pending_journal_leaves_no_run_directory(tmp_path):
    _spec(tmp_path)
    pending = plant(tmp_path / "state", journal(originals={"net.core.somaxconn": 1200}))
    before = pending.read_text()
    v = _run(tmp_path)
    assert v["rc"] == "3", v["err"] + v["_stderr"]
    assert "a previous run (PID 999999) left changed values" in v["err"] and "cli-ai rollback" in v["err"]
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []
    assert v["somaxconn"] == "1500" and pending.read_text() == before
    # and the lock it took for the check is free again
    MachineLock(tmp_path / "state").acquire().release()


@pytest.mark.skipif(shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
                    reason="mosquitto is not installed (.ci/run installs it)")
def test_a_refused_attached_broker_run_touches_neither_the_config_nor_its_backup(tmp_path):
    """An attached broker's run makes a backup of its config file when it
    starts: refused, it must not start (another run's backup is the one that
    restores the file), nor write a run directory."""
    conf = tmp_path / "broker" / "mosquitto.conf"
    conf.parent.mkdir()
    text = "listener 18830 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 20\n"
    conf.write_text(text)
    spec = json.loads((EXAMPLES / "mosquitto.json").read_text())
    spec["mosquitto"]["attach"] = {"config_file": str(conf), "reload_command": ["kill", "-HUP", "999999"],
                                   "restart_command": ["kill", "-TERM", "999999"], "port": 18830}
    spec["training_config"]["budget"] = 4
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    lock = MachineLock(tmp_path / "state").acquire()
    try:
        r = run_cli("tune", tmp_path / "spec.json", "--yes", "--output-dir", tmp_path / "runs", timeout=120)
    finally:
        lock.release()
    assert r.returncode == 3, r.stderr
    assert f"another cli-ai run (PID {os.getpid()}) is tuning this machine" in r.stderr
    assert not (tmp_path / "runs").exists()
    assert sorted(p.name for p in conf.parent.iterdir()) == ["mosquitto.conf"] and conf.read_text() == text
