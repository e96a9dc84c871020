"""A benchmark that daemonises (fork, setsid, fork) must not outlive its
step: its whole session and the orphans it leaves are killed."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from cli_ai.tactician.benchmarks import BenchmarkRunner
from tests.conftest import run_cli

DAEMONISING = """
import os, sys, time
pidfile = sys.argv[1]
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()                      # a session (and group) of its own
    if os.fork() == 0:
        with open(pidfile, "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        fd = os.open(os.devnull, os.O_RDWR)
        for i in (0, 1, 2):
            os.dup2(fd, i)
        os.set_inheritable(w, False)
        os.execvp("sleep", ["sleep", "300"])  # closes w (close-on-exec): the parent knows
    os._exit(0)                      # the grandchild is an orphan now
os.close(w)
os.read(r, 1)                        # EOF once the daemon has exec'd sleep
os.wait()
print("score: 1")
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _daemon_pids(pidfile) -> list[int]:
    return [int(x) for x in pidfile.read_text().split()]


@pytest.fixture
def daemon_pidfile(tmp_path):
    pidfile = tmp_path / "daemon.pids"
    pidfile.write_text("")
    yield pidfile
    for pid in _daemon_pids(pidfile):  # never leave our own sleep 300 behind
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _wait_gone(pid: int, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_a_daemonised_child_is_gone_when_the_step_ends(tmp_path, daemon_pidfile):
    script = tmp_path / "daemonise.py"
    script.write_text(DAEMONISING)
    result = BenchmarkRunner([sys.executable, str(script), str(daemon_pidfile)], metric="score", timeout_s=30).run()
    assert result.metric == 1.0
    (pid,) = _daemon_pids(daemon_pidfile)
    assert _wait_gone(pid), f"the daemon {pid} outlived its benchmark step"


def test_a_real_tune_leaves_no_daemon(tmp_path, write_spec, daemon_pidfile):
    script = tmp_path / "daemonise.py"
    script.write_text(DAEMONISING)
    spec = write_spec({
        "workload_name": "daemon", "target": "command", "reward_metric": "score",
        "benchmark_command": f"{sys.executable} {script} {daemon_pidfile} {{x}}",
        "action_space": [{"param": "x", "type": "int", "min": 1, "max": 4}],
        "training_config": {"algorithm": "random", "budget": 2},
    })
    r = run_cli("tune", spec, "--yes", "--verify", "0", "--output-dir", tmp_path / "runs", input="")
    assert r.returncode == 0, r.stderr
    pids = _daemon_pids(daemon_pidfile)
    assert len(pids) >= 2
    for pid in pids:
        assert _wait_gone(pid), f"the daemon {pid} outlived the run"
