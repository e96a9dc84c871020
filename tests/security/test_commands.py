"""Attacks through the benchmark command: a shell or an interpreter given
code passes as a plain argv, a placeholder names the program, a value escapes
its quoting under --allow-shell; and runs that start programs without asking."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cli_ai.errors import SafetyError
from cli_ai.pipeline import check_loaded_spec
from cli_ai.spec import spec_from_dict
from tests.conftest import run_cli


def command_spec(command=None, *, args=None, knobs=None, runner=None, budget=2):
    data = {
        "workload_name": "attack",
        "target": "command",
        "reward_metric": "score",
        "action_space": knobs or [{"param": "x", "type": "int", "min": 1, "max": 2, "default": 1}],
        "training_config": {"algorithm": "random", "budget": budget, "seed": 1},
    }
    if command is not None:
        data["benchmark_command"] = command
    else:
        data["benchmark"] = {"runner": runner or "command", "args": args}
    return data


# Each of these ran its code as root with no --allow-shell before the fix.
INTERPRETER_COMMANDS = [
    "bash -c 'echo a; echo score: {x}'",
    "/bin/sh -c 'echo score: {x}'",
    "/usr/bin/env sh -c 'echo score: {x}'",
    "env -u HOME sh -c 'echo score: {x}'",
    "env -S 'sh -c id' {x}",
    "env '--split-string=sh -c id' {x}",
    "env '-Ssh -c id' {x}",
    "timeout 5 sh -c 'echo score: {x}'",
    "nice -n 5 bash -c 'echo score: {x}'",
    "ionice -c3 dash -c 'echo score: {x}'",
    "nohup zsh -c 'echo {x}'",
    "setsid ksh -c 'echo {x}'",
    "stdbuf -o0 rbash -c 'echo {x}'",
    "sudo -u root busybox sh -c 'echo {x}'",
    "xargs -a /dev/null sh -c 'echo {x}'",
    "find /tmp -maxdepth 0 -exec sh -c 'echo score: {x}' ';'",
    "python3 -c 'print(\"score: {x}\")'",
    "/usr/bin/python3.11 -Ic 'print({x})'",
    "perl -e 'print \"score: {x}\\n\"'",
    "perl -lne 'print {x}'",
    "ruby -e 'puts {x}'",
    "node -e 'console.log({x})'",
    "node --eval=console.log({x})",
    "awk 'BEGIN { system(\"id\"); print \"score: {x}\" }'",
    "gawk -f prog.awk {x}",
    "mawk 'BEGIN{print {x}}'",
    "lua -e 'os.execute(\"id\")' {x}",
    "sysbench ./oltp.lua --threads={x} run",
    "wrk -s evil.lua -t{x} http://127.0.0.1:1/",
    "pgbench -f evil.sql -c {x} db",
    "fio --name=x --exec_prerun=id --numjobs={x}",
    "fio jobs.fio --numjobs={x}",
    "/BIN/SH -c 'echo {x}'",
]


@pytest.mark.parametrize("command", INTERPRETER_COMMANDS)
def test_an_interpreter_command_needs_allow_shell(command):
    spec = spec_from_dict(command_spec(command))
    with pytest.raises(SafetyError, match="--allow-shell"):
        check_loaded_spec(spec)
    assert check_loaded_spec(spec, allow_shell=True).command is not None


@pytest.mark.parametrize("args, runner", [
    (["python3", "-c", "print({x})"], "command"),
    (["env", "nice", "/bin/bash", "-c", "echo {x}"], "command"),
    (["./oltp_evil.lua", "--threads={x}", "run"], "sysbench"),
    (["/tmp/x.lua", "--threads={x}", "run"], "sysbench"),
])
def test_interpreter_args_need_allow_shell(args, runner):
    spec = spec_from_dict(command_spec(args=args, runner=runner))
    with pytest.raises(SafetyError, match="--allow-shell"):
        check_loaded_spec(spec)
    check_loaded_spec(spec, allow_shell=True)


@pytest.mark.parametrize("command, knobs", [
    ("{prog} -c 'echo score: 1'", [{"param": "prog", "type": "enum", "values": ["sh", "bash"]}]),
    ("env {prog} -c 'echo score: 1'", [{"param": "prog", "type": "enum", "values": ["true", "bash"]}]),
    ("python3 {flag} 'print(1)'", [{"param": "flag", "type": "enum", "values": ["-u", "-c"]}]),
    ("timeout 5 {a}{b} -c 'echo 1'", [{"param": "a", "type": "enum", "values": ["s", "x"]},
                                      {"param": "b", "type": "enum", "values": ["h", "y"]}]),
])
def test_placeholders_that_name_a_program_need_allow_shell(command, knobs):
    spec = spec_from_dict(command_spec(command, knobs=knobs))
    with pytest.raises(SafetyError, match="--allow-shell"):
        check_loaded_spec(spec)


def test_many_enum_placeholders_are_checked_quickly_without_false_alarms():
    knobs = [{"param": f"k{i}", "type": "enum", "values": [f"v{j}" for j in range(10)]} for i in range(8)]
    command = "prog " + " ".join(f"--k{i}={{k{i}}}" if i % 2 else f"{{k{i}}}" for i in range(8))
    plan = check_loaded_spec(spec_from_dict(command_spec(command, knobs=knobs))).command
    assert plan is not None and plan.interpreter is None
    knobs[5]["values"].append("/bin/sh -c id")
    bad = "env " + " ".join(f"--k{i}={{k{i}}}" if i % 2 else f"{{k{i}}}" for i in range(8))
    with pytest.raises(SafetyError, match="--allow-shell"):
        check_loaded_spec(spec_from_dict(command_spec(bad, knobs=knobs)))


@pytest.mark.parametrize("command", [
    f"{sys.executable} prog.py --threads {{x}}",
    "wrk -t{x} -c10 -d1s http://127.0.0.1:8080/",
    "sysbench cpu --threads={x} run",
    "timeout 30 pgbench -c {x} -T 5 db",
    "env LC_ALL=C fio --name=x --numjobs={x}",
])
def test_plain_programs_still_run_without_allow_shell(command):
    plan = check_loaded_spec(spec_from_dict(command_spec(command))).command
    assert plan is not None and not plan.shell and plan.interpreter is None


def test_a_real_tune_does_not_run_bash_c(tmp_path, write_spec):
    mark = tmp_path / "ran"
    spec = write_spec(command_spec(f"bash -c 'touch {mark}; echo score: {{x}}'"))
    r = run_cli("tune", spec, "--yes", "--output-dir", tmp_path / "runs", input="")
    assert r.returncode == 3, r.stderr
    assert "bash is a shell" in r.stderr and "--allow-shell" in r.stderr
    assert not mark.exists()
    assert not (tmp_path / "runs").exists()


def test_a_sysbench_lua_script_as_runner_args_does_not_run(tmp_path, write_spec):
    mark = tmp_path / "ran"
    script = tmp_path / "evil.lua"
    script.write_text(f'os.execute("touch {mark}")\nfunction event() end\n')
    spec = write_spec({
        "workload_name": "attack", "reward_metric": "events_per_second",
        "benchmark": {"runner": "sysbench", "args": [str(script), "--time=1", "run"]},
        "action_space": [{"param": "vm.swappiness", "type": "int", "min": 10, "max": 60}],
    })
    r = run_cli("validate", spec)
    assert r.returncode == 3, r.stderr
    assert "loads a Lua script" in r.stderr and "--allow-shell" in r.stderr
    assert not mark.exists()


def test_a_shell_value_cannot_escape_its_quotes(tmp_path, write_spec):
    """Under --allow-shell a value is a positional parameter of sh, never text
    of the script: `$(...)` inside "..." and a value that is another
    placeholder stay literal."""
    mark = tmp_path / "ran"
    out = tmp_path / "seen"
    spec = write_spec(command_spec(
        f'printf "%s|%s" "{{v}}" "{{w}}" > {out}; echo score: 1',
        knobs=[{"param": "v", "type": "enum", "values": [f"$(touch {mark})", "a"], "default": f"$(touch {mark})"},
               {"param": "w", "type": "enum", "values": ["{v}", "b"], "default": "{v}"}],
    ))
    r = run_cli("tune", spec, "--yes", "--allow-shell", "--output-dir", tmp_path / "runs", "--verify", "0",
                input="")
    assert r.returncode == 0, r.stderr
    assert not mark.exists()
    first = out.read_text()
    assert first in (f"$(touch {mark})|{{v}}", f"$(touch {mark})|b", "a|{v}", "a|b")


def test_confirmation_shows_the_exact_argv_of_the_first_step(tmp_path, write_spec):
    prog = tmp_path / "prog.py"
    prog.write_text("print('score: 1')\n")
    spec = write_spec(command_spec(f"{sys.executable} {prog} --threads {{x}} --mode={{m}}",
                                   knobs=[{"param": "x", "type": "int", "min": 1, "max": 8, "default": 3},
                                          {"param": "m", "type": "enum", "values": ["fast", "slow"],
                                           "default": "slow"}]))
    r = run_cli("tune", spec, "--output-dir", tmp_path / "runs", input="")
    assert r.returncode == 3
    text = " ".join(r.stderr.split())
    assert f"{prog} --threads 3 --mode=slow" in text


def test_a_mosquitto_reload_command_cannot_be_a_shell(tmp_path, write_spec):
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("max_inflight_messages 20\n")
    data = json.loads((Path(__file__).resolve().parents[2] / "examples" / "mosquitto.json").read_text())
    data["action_space"] = [{"param": "max_inflight_messages", "type": "int", "min": 1, "max": 100}]
    data["mosquitto"]["attach"] = {"config_file": str(conf), "reload_command": ["env", "sh", "-c", "id"], "port": 1}
    r = run_cli("validate", write_spec(data))
    assert r.returncode == 3, r.stderr
    assert "mosquitto.attach.reload_command: sh is a shell" in r.stderr
