"""Runner options of LLM plans, and where a benchmark runs: no paths outside
a private temp dir, no script loaded from the current directory, no secrets
in the benchmark's environment, local hosts only, a mosquitto `binary` that
is mosquitto."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from cli_ai.tactician.benchmarks import BenchmarkRunner


@pytest.mark.skipif(not shutil.which("sysbench"), reason="sysbench is not installed")
def test_sysbench_loads_no_script_from_the_current_directory(tmp_path, monkeypatch):
    """`sysbench oltp_read_write ... run` passes the plan policy; sysbench
    looks for ./oltp_read_write.lua first. It must not find the planted one."""
    mark = tmp_path / "ran"
    leak = tmp_path / "leak"
    (tmp_path / "oltp_read_write.lua").write_text(
        f'os.execute("touch {mark}")\n'
        f'local f = io.open("{leak}", "w"); f:write(os.getenv("OPENAI_API_KEY") or ""); f:close()\n'
        'function event() end\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
    runner = BenchmarkRunner(["sysbench", "oltp_read_write", "--time=1", "run"], runner="sysbench",
                             metric="transactions_per_second", timeout_s=30)
    try:
        runner.run()
    except Exception:
        pass  # the real oltp_read_write needs a database; that it failed is fine
    assert not mark.exists() and not leak.exists()


def test_a_benchmark_sees_no_api_key_and_runs_in_a_private_directory(tmp_path, monkeypatch):
    out = tmp_path / "env"
    prog = tmp_path / "prog.py"
    prog.write_text(
        "import os, sys\n"
        f"open({str(out)!r}, 'w').write(repr((os.environ.get('OPENAI_API_KEY'), os.environ.get('AWS_SECRET_ACCESS_KEY'),"
        " os.environ.get('LD_PRELOAD'), os.getcwd(), os.listdir('.'))))\n"
        "print('score: 1')\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    runner = BenchmarkRunner([sys.executable, "prog.py"], metric="score")  # relative: resolved, still runs
    assert runner.run().metric == 1.0
    key, aws, preload, cwd, listing = eval(out.read_text())
    assert key is None and aws is None and preload is None
    assert cwd != str(tmp_path) and listing == []
    assert not os.path.exists(cwd)  # removed with the step


def _planned(runner, args, metric):
    return {
        "workload_name": "planned", "reward_metric": metric,
        "benchmark": {"runner": runner, "args": args},
        "action_space": [{"param": "vm.swappiness", "type": "int", "min": 10, "max": 60}],
    }


# Each of these passed the LLM plan policy before the fix.
@pytest.mark.parametrize("runner, args, metric, fragment", [
    ("fio", ["--name=x", "--directory=/tmp/:/etc", "--rw=write", "--size=1m"], "write_iops", "fio --directory"),
    ("fio", ["--name=x", "--directory=/var/tmp", "--rw=write", "--size=1m"], "write_iops", "fio --directory"),
    ("fio", ["--name=../etc/cron.d/x", "--rw=write", "--size=1m"], "write_iops", "must be a plain name"),
    ("fio", ["--name=/etc/x", "--rw=write"], "write_iops", "must be a plain name"),
    ("wrk", ["-t2", "-c10", "-d1s", "http://198.51.100.7:8080/"], "requests_per_second", "is not this machine"),
    ("wrk", ["-t2", "http://db.example.com/"], "requests_per_second", "is not this machine"),
    ("redis-benchmark", ["-h", "203.0.113.9", "-q", "-t", "set"], "requests_per_second", "is not this machine"),
    ("redis-benchmark", ["-s", "/tmp/evil.sock", "-q"], "requests_per_second", "-s is not allowed"),
    ("pgbench", ["-h", "10.1.2.3", "-c", "4", "testdb"], "transactions_per_second", "is not this machine"),
    ("pgbench", ["--host=evil.example.org", "testdb"], "transactions_per_second", "is not this machine"),
    ("sysbench", ["oltp_read_only", "--mysql-host=127.0.0.1,10.9.9.9", "run"], "transactions_per_second",
     "is not this machine"),
])
def test_llm_plan_runner_options_are_refused(runner, args, metric, fragment):
    from cli_ai.strategist import assess_spec

    verdict = assess_spec(_planned(runner, args, metric), dry_run=True)
    assert verdict.unsafe and any(fragment in p for p in verdict.problems), verdict.problems


@pytest.mark.parametrize("runner, args, metric, goal", [
    ("wrk", ["-t2", "http://127.0.0.1:8080/"], "requests_per_second", ""),
    ("wrk", ["-t2", "http://[::1]:8080/"], "requests_per_second", ""),
    ("pgbench", ["-h", "localhost", "testdb"], "transactions_per_second", ""),
    ("pgbench", ["-h", "db.internal", "testdb"], "transactions_per_second", "benchmark postgres on db.internal"),
    ("redis-benchmark", ["-h", "10.0.0.5", "-q"], "requests_per_second", "my redis at 10.0.0.5 is slow"),
    ("fio", ["--name=cli-ai", "--rw=write", "--size=1m", "--output-format=json"], "write_iops", ""),
])
def test_llm_plan_local_or_person_named_hosts_pass(runner, args, metric, goal):
    from cli_ai.strategist import assess_spec

    assert assess_spec(_planned(runner, args, metric), dry_run=True, goal=goal).problems == []


@pytest.mark.parametrize("binary", ["SCRIPT", "NAMED_SCRIPT", "/bin/sh", "/usr/bin/env", "LINK"])
def test_the_managed_broker_binary_must_be_mosquitto(tmp_path, write_spec, binary):
    from tests.conftest import EXAMPLES, run_cli

    mark = tmp_path / "ran"
    if binary in ("SCRIPT", "NAMED_SCRIPT"):  # any program, run as root as the "broker"
        (tmp_path / "bin").mkdir()
        script = tmp_path / "bin" / ("evil" if binary == "SCRIPT" else "mosquitto")
        script.write_text(f"#!/bin/sh\ntouch {mark}\n")
        script.chmod(0o755)
        binary = str(script)
    if binary == "LINK":  # named mosquitto, but a shell underneath
        link = tmp_path / "mosquitto"
        link.symlink_to("/bin/sh")
        binary = str(link)
    data = __import__("json").loads((EXAMPLES / "mosquitto.json").read_text())
    data["mosquitto"]["binary"] = binary
    data["action_space"] = data["action_space"][:1]
    data["training_config"].update(budget=2, total_timesteps=2)
    r = run_cli("tune", write_spec(data), "--yes", "--output-dir", tmp_path / "runs", input="", timeout=120,
                env={"TMPDIR": str(tmp_path)})
    assert r.returncode == 3, r.stderr
    lines = [l for l in r.stderr.splitlines() if "mosquitto.binary" in l]
    assert len(lines) == 1 and "not mosquitto" in lines[0], r.stderr
    assert not mark.exists()


def test_an_attached_broker_reload_command_sees_no_api_key(tmp_path, monkeypatch):
    from cli_ai.broker.backend import MosquittoBackend
    from cli_ai.broker.settings import AttachConfig

    out = tmp_path / "env"
    prog = tmp_path / "reload.py"
    prog.write_text(f"import os\nopen({str(out)!r}, 'w').write(repr((os.environ.get('OPENAI_API_KEY'), os.getcwd())))\n")
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("max_inflight_messages 20\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
    monkeypatch.chdir(tmp_path)
    backend = MosquittoBackend(attach=AttachConfig(str(conf), (sys.executable, str(prog)), port=1))
    ok, why = backend._run(backend.attach.reload_command)
    assert ok, why
    key, cwd = eval(out.read_text())
    assert key is None and cwd == "/"
