"""Every real run that starts a program or changes something asks first: a
terminal prompt or --yes; with neither (stdin not a terminal) it refuses in
one line, exit 3, and nothing runs."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from tests.conftest import EXAMPLES, run_cli


def test_command_target_without_yes_and_no_terminal_runs_nothing(tmp_path, write_spec):
    mark = tmp_path / "ran"
    prog = tmp_path / "prog.py"
    prog.write_text(f"open({str(mark)!r}, 'a').write('x')\nprint('score: 1')\n")
    spec = write_spec({
        "workload_name": "flags", "target": "command", "reward_metric": "score",
        "benchmark_command": f"{sys.executable} {prog} --x {{x}}",
        "action_space": [{"param": "x", "type": "int", "min": 1, "max": 4}],
        "training_config": {"algorithm": "random", "budget": 2},
    })
    r = run_cli("tune", spec, "--output-dir", tmp_path / "runs", input="")
    assert r.returncode == 3, r.stderr
    assert "pass --yes" in r.stderr
    assert not mark.exists()
    assert not (tmp_path / "runs").exists()
    r = run_cli("tune", spec, "--yes", "--verify", "0", "--output-dir", tmp_path / "runs", input="")
    assert r.returncode == 0, r.stderr
    assert mark.exists()


@pytest.mark.skipif(not (shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")),
                    reason="mosquitto is not installed")
def test_mosquitto_attach_without_yes_edits_nothing_and_runs_nothing(tmp_path, write_spec):
    mark = tmp_path / "reloaded"
    conf = tmp_path / "mosquitto.conf"
    original = "listener 1\nmax_inflight_messages 20\n"
    conf.write_text(original)
    data = json.loads((EXAMPLES / "mosquitto.json").read_text())
    data["action_space"] = [{"param": "max_inflight_messages", "type": "int", "min": 1, "max": 100}]
    data["training_config"].update(budget=2, total_timesteps=2)
    data["mosquitto"]["attach"] = {"config_file": str(conf), "reload_command": ["touch", str(mark)], "port": 1}
    spec = write_spec(data)
    r = run_cli("tune", spec, "--output-dir", tmp_path / "runs", input="", timeout=120)
    assert r.returncode == 3, r.stderr
    assert "pass --yes" in r.stderr
    assert "touch" in r.stderr and str(conf) in r.stderr  # the screen said what it would run and edit
    assert conf.read_text() == original
    assert not mark.exists()


@pytest.mark.parametrize("answer, code, ran", [("n\n", 3, False), ("y\n", 0, True)])
def test_command_target_asks_on_a_terminal(tmp_path, write_spec, answer, code, ran):
    import os
    import subprocess

    from tests.conftest import cli_ai_cmd

    mark = tmp_path / "ran"
    prog = tmp_path / "prog.py"
    prog.write_text(f"open({str(mark)!r}, 'a').write('x')\nprint('score: 1')\n")
    spec = write_spec({
        "workload_name": "flags", "target": "command", "reward_metric": "score",
        "benchmark_command": f"{sys.executable} {prog} --x {{x}}",
        "action_space": [{"param": "x", "type": "int", "min": 1, "max": 4}],
        "training_config": {"algorithm": "random", "budget": 2},
    })
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([*cli_ai_cmd(), "tune", str(spec), "--verify", "0", "--output-dir",
                                 str(tmp_path / "runs")], stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        os.write(master, answer.encode())
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == code, err
    assert mark.exists() is ran
