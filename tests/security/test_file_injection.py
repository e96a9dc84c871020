"""Item 4: nothing untrusted reaches a file or a terminal unescaped.

- a result whose workload, metric or verdict holds a newline or an escape
  code is refused (exit 2) by export and by `apply --persist`, and nothing is
  written (the sysctl.d file, the TuneD profile, the script);
- a workload name cannot smuggle TuneD's `${f:exec:...}` into a profile;
- a spec, or an LLM answer, with a newline in workload_name is refused;
- Rich markup in a workload name prints literally instead of crashing;
- a newline in a broker config value is refused, never written.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import can_unshare_net, run_cli
from tests.llm_server import Reply, ScriptedLLM
from tests.security.sandbox import sandboxed

EVIL = "w\nkernel.core_pattern = |/tmp/evil %p\nfs.suid_dumpable = 2"
ESCAPE = "w\x1b]0;owned\x07\x1b[2J"

GOOD = {"workload": "w", "target": "sysctl", "simulated": False, "metric": "cps", "baseline": 1.0, "best": 2.0,
        "improvement": 100.0, "best_config": {"net.core.somaxconn": 1500}, "verdict": "better",
        "verification": {"verdict": "better", "p_value": 0.001}}

HOSTILE = [
    ({"workload": EVIL}, "workload"),
    ({"workload": ESCAPE}, "workload"),
    ({"metric": "cps\n[script]\nscript=/tmp/evil.sh"}, "metric"),
    ({"verdict": "better\nkernel.core_pattern = |/tmp/evil", "verification": {"verdict": "better\n"}}, "verdict"),
]


@pytest.mark.parametrize("change, field", HOSTILE)
def test_export_refuses_a_result_with_control_characters(tmp_path, change, field):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({**GOOD, **change}))
    for fmt in ("sysctl.d", "tuned", "script"):
        r = run_cli("export", path, "--format", fmt, "--force")
        assert r.returncode == 2, (fmt, r.stdout, r.stderr)
        assert r.stdout == "" and field in r.stderr and "control character" in r.stderr


@pytest.mark.skipif(not can_unshare_net(), reason="needs root and unshare")
def test_apply_persist_refuses_a_result_with_a_newline_and_writes_nothing(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({**GOOD, "workload": EVIL}))
    v = sandboxed(
        "echo 777 > /proc/sys/net/core/somaxconn\n"
        '$CLI apply "$TMP/result.json" --persist --yes; echo @rc=$?\n'
        "echo @after=$(cat /proc/sys/net/core/somaxconn)\n"
        'echo "@files=$(ls -A /etc/sysctl.d | tr "\\n" " ")"\n',
        tmp_path,
    )
    assert v["rc"] == "2", v["_stderr"]
    assert "workload" in v["_stderr"] and "control character" in v["_stderr"]
    assert v["after"] == "777" and v["files"] == ""


def test_a_workload_cannot_put_tuned_functions_in_a_profile(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({**GOOD, "workload": "w ${f:exec:/bin/sh:-c:touch /tmp/pwned} ${i:PROFILE_DIR}"}))
    r = run_cli("export", path, "--format", "tuned")
    assert r.returncode == 0, r.stderr
    assert "$" not in r.stdout and "summary=cli-ai profile for w {f:exec:" in r.stdout


SPEC = {"workload_name": "w", "reward_metric": "score", "benchmark_command": "true",
        "action_space": [{"param": "vm.swappiness", "type": "int", "min": 0, "max": 30}]}


@pytest.mark.parametrize("field, value", [
    ("workload_name", "w\nkernel.core_pattern = |/tmp/evil %p"),
    ("workload_name", "w\x1b]0;owned\x07"),
    ("reward_metric", "score\r"),
])
def test_a_spec_with_control_characters_is_refused(tmp_path, field, value):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**SPEC, field: value}))
    r = run_cli("validate", path)
    assert r.returncode == 2, r.stdout + r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert field in line and "control character" in line


def test_a_spec_description_may_span_lines(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**SPEC, "description": "first line\nsecond line\tand a tab"}))
    r = run_cli("validate", path)
    assert r.returncode == 0, r.stderr


def test_an_llm_answer_with_a_newline_in_workload_name_is_never_planned():
    from cli_ai.strategist import NoUsableAnswerError
    from cli_ai.strategist.openai_strategist import OpenAIStrategist

    bad = {**SPEC, "workload_name": "db\nkernel.core_pattern = |/tmp/evil %p", "benchmark_command": "pgbench -T 5 db"}
    with ScriptedLLM(api_key="sk-test-key-0123456789") as llm:
        llm.push(*[Reply(json.dumps(bad)) for _ in range(3)])
        strategist = OpenAIStrategist(base_url=llm.url, api_key="sk-test-key-0123456789", model="test-model",
                                      max_repairs=2, retry_backoff=0.001, timeout=10)
        with pytest.raises(NoUsableAnswerError) as err:
            strategist.plan("tune my database", None)
        assert any("workload_name" in p and "control character" in p for p in err.value.problems)
        # The repair message told the model what to fix.
        assert "workload_name" in llm.chat_requests[1].last_user_message


def test_rich_markup_in_a_workload_name_prints_literally(tmp_path):
    path = tmp_path / "spec.json"
    name = "[/] [link=file:///etc/shadow]click[/link] [bold red]boom"
    path.write_text(json.dumps({**SPEC, "workload_name": name}))
    r = run_cli("validate", path, env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert name in " ".join(r.stdout.split())  # literally (Rich may wrap it)


def test_a_newline_in_a_broker_config_value_is_refused():
    from cli_ai.broker.config import render_managed_config
    from cli_ai.errors import BadInputError

    with pytest.raises(BadInputError, match="control character"):
        render_managed_config({}, host="127.0.0.1\nplugin /tmp/evil.so", port=1883, workdir="/tmp/x")
    with pytest.raises(BadInputError, match="control character"):
        render_managed_config({}, host="127.0.0.1", port=1883, workdir="/tmp/x\nplugin /tmp/evil.so")
    text = render_managed_config({}, host="127.0.0.1", port=1883, workdir="/tmp/x")
    assert "listener 1883 127.0.0.1\n" in text
