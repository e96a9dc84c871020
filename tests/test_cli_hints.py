"""Issue 15, items 6 and 10: every hint names an option that exists where it is
shown, --debug works after the command, shell completion, and the small exits
(rollback says where it looked, no LLM endpoint is bad input, a closed pipe is quiet)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import EXAMPLES, cli_ai_cmd, run_cli

from .llm_server import Reply, ScriptedLLM

KEY = "sk-test-key-0123456789abcdef"
WIDE = {"COLUMNS": "250"}  # one message, one line: assertions need not follow rich's wrapping

# dirty_ratio's safe maximum is 40: a plan the safety checks refuse
OUT_OF_RANGE = {
    "workload_name": "PostgreSQL OLTP",
    "description": "Dirty-page writeback bursts stall commits; pgbench measures the server.",
    "target": "sysctl",
    "reward_metric": "transactions_per_second",
    "benchmark": {"runner": "pgbench", "args": ["-c", "16", "-j", "2", "-T", "20", "testdb"]},
    "action_space": [{"param": "vm.dirty_ratio", "type": "int", "min": 5, "max": 90}],
    "training_config": {"algorithm": "ppo", "budget": 30},
}


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------ item 6: hints that fit the command


def test_plan_refusing_a_range_does_not_suggest_clamp_which_plan_lacks():
    with ScriptedLLM(api_key=KEY) as llm:
        llm.default = Reply(json.dumps(OUT_OF_RANGE))
        r = run_cli("plan", "my postgres stalls on writes", "--provider", "openai", "--base-url", llm.url,
                    "--model", "test-model", "--max-repairs", "1", env={"OPENAI_API_KEY": KEY, **WIDE})
        repair = llm.chat_requests[-1].last_user_message
    assert r.returncode == 3, r.stderr
    assert "90 exceeds the safe maximum 40 for vm.dirty_ratio" in r.stderr
    assert "--clamp" not in r.stderr
    assert "exceeds the safe maximum" in repair and "--clamp" not in repair  # nor to the LLM


def test_validate_still_offers_clamp_where_it_exists(write_spec):
    r = run_cli("validate", write_spec(OUT_OF_RANGE), env=WIDE)
    assert r.returncode != 0
    assert "lower it, or pass --clamp to narrow the range" in _one_line(r.stderr)


def test_autoscale_compare_of_models_with_other_scale_steps_says_so(tmp_path):
    common = ["--episodes", "1", "--max-steps", "5", "--seed", "1", "--output-dir", tmp_path]
    r = run_cli("autoscale", "train-sarsa", *common, "--scale-steps", "1")
    assert r.returncode == 0, r.stderr
    r = run_cli("autoscale", "train-dqn", *common, "--scale-steps", "1,2")
    assert r.returncode == 0, r.stderr
    (sarsa,) = tmp_path.glob("**/sarsa_final.pkl")
    (dqn,) = tmp_path.glob("**/dqn_final.pt")
    r = run_cli("autoscale", "compare", "--model", sarsa, "--dqn-model", dqn, "--episodes", "1",
                "--output-dir", tmp_path / "cmp", env=WIDE)
    err = _one_line(r.stderr)
    assert r.returncode == 2, r.stderr
    assert "the models disagree on their scale steps" in err
    assert "compare models trained with the same --scale-steps" in err


def test_debug_is_accepted_after_the_command(tmp_path):
    missing = tmp_path / "missing.json"
    for args in (("validate", missing, "--debug"), ("--debug", "validate", missing)):
        r = run_cli(*args, env=WIDE)
        assert r.returncode == 2, r.stderr
        assert "No such option" not in r.stderr
        assert "Traceback" in r.stderr and "SpecError" in r.stderr  # --debug took effect
    r = run_cli("validate", missing, env=WIDE)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_take_debug_leaves_arguments_after_a_double_dash_alone():
    from cli_ai.cli_support import take_debug

    assert take_debug(["tune", "s.json", "--debug"]) == (["tune", "s.json"], True)
    assert take_debug(["tune", "s.json"]) == (["tune", "s.json"], False)
    assert take_debug(["plan", "--", "--debug"]) == (["plan", "--", "--debug"], False)


def test_scheduler_compare_on_another_target_says_what_to_pass():
    spec = EXAMPLES / "loopback_backlog.json"
    r = run_cli("scheduler", "compare", str(spec), env=WIDE)
    err = _one_line(r.stderr)
    assert r.returncode == 2, r.stderr
    assert f'{spec}: its target is "sysctl"' in err
    assert "pass examples/scheduler.json or leave SPEC out" in err
    assert f"cli-ai tune {spec}" in err
    assert "make_env" not in err and "SchedulerEnv" not in err


# ------------------------------------------------------------------ item 10: the smaller ones


def test_shell_completion_options_are_offered():
    r = run_cli("--help", env=WIDE)
    assert r.returncode == 0
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout



@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_for_each_shell(shell):
    # Typer detects the shell it runs in; its own switch names one instead
    r = run_cli("--show-completion", shell, env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert r.returncode == 0, r.stderr
    assert f"complete_{shell}" in r.stdout and "_CLI_AI_COMPLETE" in r.stdout


@pytest.mark.parametrize(
    "shell, env, expected",
    [
        ("bash", {"COMP_WORDS": "cli-ai tu", "COMP_CWORD": "1"}, "tune"),
        ("bash", {"COMP_WORDS": "cli-ai autoscale tr", "COMP_CWORD": "2"}, "train-sarsa"),
        ("zsh", {"_TYPER_COMPLETE_ARGS": "cli-ai tune --dr"}, "--dry-run"),
        ("fish", {"_TYPER_COMPLETE_ARGS": "cli-ai sch", "_TYPER_COMPLETE_FISH_ACTION": "get-args"}, "scheduler"),
    ],
)
def test_completion_answers_for_each_shell(shell, env, expected):
    r = run_cli(env={"_CLI_AI_COMPLETE": f"complete_{shell}", **env})
    assert r.returncode == 0, r.stderr
    assert expected in r.stdout


def test_rollback_with_nothing_to_do_says_where_it_looked():
    r = run_cli("rollback", env=WIDE)
    assert r.returncode == 0, r.stderr
    assert f"no journal of changed values was found in {os.environ['CLI_AI_STATE_DIR']}" in _one_line(r.stdout)


def test_no_llm_endpoint_configured_is_bad_input():
    r = run_cli("plan", "my postgres stalls on writes", "--provider", "openai", env=WIDE)
    assert r.returncode == 2, r.stderr
    assert "no LLM endpoint configured" in r.stderr and "--provider offline" in r.stderr


@pytest.mark.parametrize("args", [("params",), ("params", "--json"), ("--help",)])
def test_a_closed_stdout_pipe_ends_quietly_with_141(args):
    # `cli-ai params | head -1`: the reader is gone before cli-ai writes
    proc = subprocess.Popen([*cli_ai_cmd(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""


def test_a_run_refused_at_confirmation_creates_no_run_directory(tmp_path):
    out = tmp_path / "runs"
    r = run_cli("tune", EXAMPLES / "loopback_backlog.json", "--output-dir", out, input="", env=WIDE)
    assert r.returncode == 3, r.stderr
    assert "pass --yes to confirm" in r.stderr
    assert not out.exists()
