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
