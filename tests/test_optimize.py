"""`cli-ai plan` and `cli-ai optimize` end to end, as real processes: offline
with no key and no network, and through the real openai client against a
scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import EXAMPLES, run_cli
from tests.llm_server import Reply, ScriptedLLM

GOAL = "optimize this system for database workload"


def test_optimize_offline_dry_run_completes(tmp_path):
    r = run_cli("optimize", GOAL, "--dry-run", "--yes", "--budget", "20", "--seed", "1",
                "--output-dir", tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "planned by the offline strategist, template 'database_oltp'" in r.stderr
    assert "Optimization complete (SIMULATED)" in r.stdout
    (run_dir,) = tmp_path.iterdir()
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["provider"] == "offline" and plan["template"] == "database_oltp"
    assert json.loads((run_dir / "profile.json").read_text())["cpu_count"] >= 1
    result = json.loads((run_dir / "result.json").read_text())
    assert result["evaluations"] == 20 and result["simulated"] is True


def test_plan_writes_a_spec_that_validates(tmp_path):
    out = tmp_path / "spec.json"
    r = run_cli("plan", "lots of short-lived connections exhaust ephemeral ports", "-o", out)
    assert r.returncode == 0, r.stderr
    assert out.exists()
    r = run_cli("validate", out)
    assert r.returncode == 0, r.stderr


def test_optimize_through_an_llm_endpoint(tmp_path):
    spec = json.loads((EXAMPLES / "loopback_backlog.json").read_text())
    with ScriptedLLM(api_key="sk-secret-123") as llm:
        llm.push(Reply(json.dumps(spec), prompt_tokens=321, completion_tokens=45))
        r = run_cli("optimize", "my web server drops connections under bursts", "--dry-run", "--yes",
                    "--budget", "5", "--seed", "1", "--output-dir", tmp_path, "--provider", "openai",
                    "--base-url", llm.url, "--model", "test-model", "--json",
                    env={"OPENAI_API_KEY": "sk-secret-123"})
        requests = llm.chat_requests
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["plan"]["provider"] == "openai" and out["plan"]["model"] == "test-model"
    assert out["evaluations"] == 5
    assert len(requests) == 1
    run_dir = Path(out["run_dir"])
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["usage"]["total_tokens"] == 366
    for f in run_dir.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".csv"):
            assert "sk-secret-123" not in f.read_text()
    assert "sk-secret-123" not in r.stdout + r.stderr


def test_optimize_refuses_an_unsafe_llm_answer_and_runs_nothing(tmp_path):
    spec = json.loads((EXAMPLES / "postgresql_oltp.json").read_text())
    spec["benchmark_command"] = "pgbench -T 5 db; rm -rf /tmp/x"
    with ScriptedLLM(api_key="k") as llm:
        llm.push(*[Reply(json.dumps(spec))] * 3)
        r = run_cli("optimize", GOAL, "--dry-run", "--yes", "--provider", "openai", "--base-url", llm.url,
                    "--model", "test-model", "--output-dir", tmp_path / "runs", env={"OPENAI_API_KEY": "k"})
    assert r.returncode == 3, r.stderr
    assert "shell syntax" in r.stderr
    assert not (tmp_path / "runs").exists()  # no run directory: nothing ran (the state dir keeps the failed plan)
