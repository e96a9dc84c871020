"""Real tuning inside a private network namespace: `net.*` sysctls are written
for real there, and the host never sees them.

- the end-to-end tune of the built-in accept storm (issue 3, item 11);
- a run stopped by Ctrl+C or SIGTERM restores every value and exits 130;
- a `kill -9` leaves a journal that `cli-ai rollback` restores;
- `cli-ai apply` (and --persist) is undone by `cli-ai rollback`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES, cli_ai_cmd, needs_netns

SOMAXCONN = Path("/proc/sys/net/core/somaxconn")
SYN_BACKLOG = Path("/proc/sys/net/ipv4/tcp_max_syn_backlog")


def netns(script: str, tmp_path: Path, timeout: int = 300, **env_extra) -> dict[str, str]:
    env = dict(os.environ, CLI=" ".join(cli_ai_cmd()), TMP=str(tmp_path), PY=sys.executable, **env_extra)
    out = subprocess.run(["unshare", "-n", "bash", "-c", "ip link set lo up\n" + script],
                         capture_output=True, text=True, env=env, timeout=timeout)
    values = {"_stdout": out.stdout, "_stderr": out.stderr}
    for line in out.stdout.splitlines():
        if line.startswith("@"):
            key, _, value = line[1:].partition("=")
            values[key] = value.strip()
    return values


@needs_netns
def test_end_to_end_tune_of_the_accept_storm(tmp_path):
    """Start from a deliberately small backlog; the best configuration found must
    beat the baseline clearly, and the namespace's values are restored after."""
    host = (SOMAXCONN.read_text(), SYN_BACKLOG.read_text())
    spec = json.loads((EXAMPLES / "loopback_backlog.json").read_text())
    spec["training_config"] = {"algorithm": "ppo", "budget": 8, "seed": 1}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    v = netns(
        "echo 32 > /proc/sys/net/core/somaxconn; echo 64 > /proc/sys/net/ipv4/tcp_max_syn_backlog\n"
        '$CLI tune "$TMP/spec.json" --yes --json --output-dir "$TMP/runs" > "$TMP/result.json"; echo @rc=$?\n'
        "echo @somaxconn=$(cat /proc/sys/net/core/somaxconn)\n"
        "echo @syn=$(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)\n",
        tmp_path,
    )
    assert v["rc"] == "0", v["_stderr"][-2000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["baseline_config"] == {"net.core.somaxconn": 32, "net.ipv4.tcp_max_syn_backlog": 64}
    assert result["evaluations"] == 8 and result["simulated"] is False
    assert result["best"] >= 2.0 * result["baseline"], result
    assert result["best_config"]["net.core.somaxconn"] >= 128
    assert (v["somaxconn"], v["syn"]) == ("32", "64")
    assert (SOMAXCONN.read_text(), SYN_BACKLOG.read_text()) == host


SLOW_SPEC = {
    "workload_name": "slow benchmark",
    "reward_metric": "score",
    "benchmark_command": "",  # set per test
    "action_space": [{"param": "net.core.somaxconn", "type": "int", "min": 1000, "max": 2000}],
    "training_config": {"algorithm": "random", "budget": 50, "seed": 1},
}


def _slow_spec(tmp_path: Path) -> Path:
    bench = tmp_path / "bench.py"
    bench.write_text("import time\ntime.sleep(0.5)\nprint('score: 1')\n")
    spec = dict(SLOW_SPEC, benchmark_command=f"{sys.executable} {bench}")
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


WAIT_FOR_CHANGE = (
    'for i in $(seq 300); do [ "$(cat /proc/sys/net/core/somaxconn)" != 777 ] && break; sleep 0.05; done\n'
    "echo @during=$(cat /proc/sys/net/core/somaxconn)\n"
)


@needs_netns
def test_sigterm_and_ctrl_c_restore_and_exit_130(tmp_path):
    _slow_spec(tmp_path)
    for sig in ("TERM", "INT"):
        v = netns(
            "echo 777 > /proc/sys/net/core/somaxconn\n"
            '$CLI tune "$TMP/spec.json" --yes --output-dir "$TMP/runs" > /dev/null 2> "$TMP/err" & pid=$!\n'
            + WAIT_FOR_CHANGE
            + f"kill -{sig} $pid; wait $pid; echo @rc=$?\n"
            "echo @after=$(cat /proc/sys/net/core/somaxconn)\n",
            tmp_path,
        )
        assert 1000 <= int(v["during"]) <= 2000, v
        assert v["rc"] == "130", (sig, (tmp_path / "err").read_text()[-1500:])
        assert v["after"] == "777"
        assert not (tmp_path / "state" / "journal.json").exists()
        assert "interrupted" in (tmp_path / "err").read_text()


@needs_netns
def test_kill_9_leaves_a_journal_that_rollback_restores(tmp_path):
    _slow_spec(tmp_path)
    v = netns(
        "echo 777 > /proc/sys/net/core/somaxconn\n"
        '$CLI tune "$TMP/spec.json" --yes --output-dir "$TMP/runs" > /dev/null 2>&1 & pid=$!\n'
        + WAIT_FOR_CHANGE
        + "kill -9 $pid; wait $pid\n"
        "echo @after_kill=$(cat /proc/sys/net/core/somaxconn)\n"
        "test -f $CLI_AI_STATE_DIR/journal.json && echo @journal=yes\n"
        '$CLI rollback > "$TMP/rollback.out"; echo @rc=$?\n'
        "echo @after=$(cat /proc/sys/net/core/somaxconn)\n",
        tmp_path,
    )
    assert 1000 <= int(v["after_kill"]) <= 2000
    assert v["journal"] == "yes"
    assert v["rc"] == "0", v["_stderr"]
    assert v["after"] == "777"
    assert "net.core.somaxconn" in (tmp_path / "rollback.out").read_text()


@needs_netns
def test_apply_persist_and_rollback(tmp_path):
    sysctl_d = tmp_path / "sysctl.d"
    sysctl_d.mkdir()
    (sysctl_d / "99-cli-ai.conf").write_text("# an older file\n")
    result = {"workload": "w", "target": "sysctl", "simulated": False, "metric": "cps", "baseline": 1.0, "best": 2.0,
              "improvement": 100.0, "best_config": {"net.core.somaxconn": 1500, "net.ipv4.tcp_max_syn_backlog": 999},
              "verdict": "better", "verification": {"verdict": "better", "p_value": 0.001}}
    (tmp_path / "result.json").write_text(json.dumps(result))
    v = netns(
        "echo 777 > /proc/sys/net/core/somaxconn\n"
        '$CLI apply "$TMP/result.json" --persist --yes; echo @apply_rc=$?\n'
        "echo @applied=$(cat /proc/sys/net/core/somaxconn),$(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)\n"
        "test -f $CLI_AI_STATE_DIR/applied.json && echo @record=yes\n"
        'cp "$TMP/sysctl.d/99-cli-ai.conf" "$TMP/persisted.conf"\n'
        "$CLI rollback; echo @rollback_rc=$?\n"
        "echo @after=$(cat /proc/sys/net/core/somaxconn)\n",
        tmp_path,
        CLI_AI_SYSCTL_DIR=str(sysctl_d),
    )
    assert v["apply_rc"] == "0", v["_stderr"]
    assert v["applied"] == "1500,999"
    assert v["record"] == "yes"
    persisted = (tmp_path / "persisted.conf").read_text()
    assert "net.core.somaxconn = 1500" in persisted and "net.ipv4.tcp_max_syn_backlog = 999" in persisted
    assert v["rollback_rc"] == "0", v["_stderr"]
    assert v["after"] == "777"
    assert (sysctl_d / "99-cli-ai.conf").read_text() == "# an older file\n"
    assert not list(sysctl_d.glob("*.bak-*"))
    assert not (tmp_path / "state" / "applied.json").exists()
