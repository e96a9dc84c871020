"""Issue 13, item 9: every catchable terminating signal restores the machine
as SIGTERM does. Before the fix SIGQUIT, SIGUSR1, SIGUSR2 and SIGALRM (and the
other signals whose default is to end the process) killed `cli-ai tune`
without its restore, leaving the tuned value and a journal behind.

A real `cli-ai tune` changes net.core.somaxconn inside the sandbox (private
network namespace, read-only global /proc/sys); each signal is sent once its
first value is written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import needs_netns
from tests.security.sandbox import sandbox

SPEC = {
    "workload_name": "slow benchmark",
    "reward_metric": "score",
    "benchmark_command": "",
    "action_space": [{"param": "net.core.somaxconn", "type": "int", "min": 1000, "max": 2000}],
    "training_config": {"algorithm": "random", "budget": 50, "seed": 1},
}

# Job control on (set -m): without it bash starts a background job with SIGINT
# and SIGQUIT ignored, which is not how a run in a terminal gets them.
TUNE_AND_SIGNAL = (
    "set -m\n"
    "echo 777 > /proc/sys/net/core/somaxconn\n"
    '$CLI tune "$TMP/spec.json" --yes --output-dir "$TMP/runs" > /dev/null 2> "$TMP/err" & pid=$!\n'
    'for i in $(seq 400); do [ "$(cat /proc/sys/net/core/somaxconn)" != 777 ] && break; sleep 0.05; done\n'
    "echo @during=$(cat /proc/sys/net/core/somaxconn)\n"
    "kill -s $SIG $pid; wait $pid; echo @rc=$?\n"
    "echo @after=$(cat /proc/sys/net/core/somaxconn)\n"
)


def _spec(tmp_path: Path) -> None:
    bench = tmp_path / "bench.py"
    bench.write_text("import time\ntime.sleep(0.5)\nprint('score: 1')\n")
    (tmp_path / "spec.json").write_text(json.dumps(dict(SPEC, benchmark_command=f"{sys.executable} {bench}")))


@needs_netns
@pytest.mark.parametrize("sig", ["QUIT", "USR1", "USR2", "ALRM", "VTALRM", "XCPU", "RTMIN"])
def test_a_terminating_signal_restores_and_exits_130(tmp_path, sig):
    _spec(tmp_path)
    v = sandbox(TUNE_AND_SIGNAL, tmp_path, timeout=120, SIG=sig)
    err = (tmp_path / "err").read_text()
    assert 1000 <= int(v["during"]) <= 2000, (v, err[-1500:])
    assert v["rc"] == "130", (sig, err[-1500:])
    assert v["after"] == "777"
    assert not (tmp_path / "state" / "journal.json").exists()
    assert "interrupted by" in err


@needs_netns
def test_sigpipe_never_ends_a_run_without_its_restore(tmp_path):
    """SIGPIPE stays ignored (a handler could not tell it from the kernel's
    SIGPIPE for a write to a closed socket): the run goes on, still guarded,
    and a later TERM restores."""
    _spec(tmp_path)
    script = TUNE_AND_SIGNAL.replace(
        "kill -s $SIG $pid; wait $pid; echo @rc=$?\n",
        "kill -s PIPE $pid; sleep 1; kill -0 $pid && echo @alive=yes\n"
        "echo @still=$(cat /proc/sys/net/core/somaxconn)\n"
        "kill -s TERM $pid; wait $pid; echo @rc=$?\n",
    )
    v = sandbox(script, tmp_path, timeout=120)
    err = (tmp_path / "err").read_text()
    assert v.get("alive") == "yes", err[-1500:]
    assert 1000 <= int(v["still"]) <= 2000
    assert v["rc"] == "130" and v["after"] == "777", err[-1500:]
    assert not (tmp_path / "state" / "journal.json").exists()
