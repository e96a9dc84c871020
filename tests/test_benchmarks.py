"""Benchmark runners and parsers: parsers on real captures of the tools
(tests/fixtures/benchmarks, see its README), the generic rule, the errors a
person sees, and real processes for repeats, warm-ups, timeouts and interrupts."""

from __future__ import annotations

import shutil
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cli_ai.errors import BenchmarkError, Interrupted, SafetyError
from cli_ai.spec import spec_from_dict
from cli_ai.tactician.benchmarks import (
    BenchmarkRunner,
    benchmark_env,
    candidate_names,
    detect_runner,
    extract_metric,
    parse_fio_json,
    parse_generic,
    parse_pgbench,
    parse_redis_benchmark,
    parse_redis_benchmark_csv,
    parse_sysbench,
    parse_wrk,
    runner_from_spec,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "benchmarks"
approx = pytest.approx


def capture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --------------------------------------------------------------------------- pgbench


def test_pgbench_summary():
    m = parse_pgbench(capture("pgbench.txt"))
    assert m["tps"] == approx(1431.476956)
    assert m["latency_avg_ms"] == approx(2.794)
    assert m["initial_connection_time_ms"] == approx(20.843)
    assert m["transactions"] == 4275
    assert m["failed_transactions"] == 0
    assert m["clients"] == 4 and m["threads"] == 2 and m["scaling_factor"] == 2
    assert m["duration_s"] == 3


def test_pgbench_ignores_progress_and_statement_lines():
    m = parse_pgbench(capture("pgbench_progress_r.txt"))
    assert m["tps"] == approx(1459.067934)  # not a progress line's 1444.2
    assert m["latency_avg_ms"] == approx(2.727)
    assert m["latency_stddev_ms"] == approx(0.923)


def test_pgbench_rate_and_latency_limit():
    m = parse_pgbench(capture("pgbench_rate_limit.txt"))
    assert m["tps"] == approx(490.63258)
    assert m["skipped_transactions"] == 19 and m["skipped_transactions_pct"] == approx(1.906)
    assert m["transactions_above_latency_limit"] == 40
    assert m["latency_limit_ms"] == 5
    assert m["schedule_lag_avg_ms"] == approx(0.649) and m["schedule_lag_max_ms"] == approx(5.0)
    m = parse_pgbench(capture("pgbench_select_latency_limit.txt"))
    assert m["tps"] == approx(13633.987695)
    assert m["transactions_above_latency_limit"] == 0


def test_pgbench_old_format_prefers_excluding_connections():
    text = textwrap.dedent(
        """\
        latency average: 2.5 ms
        tps = 1000.123 (including connections establishing)
        tps = 1050.456 (excluding connections establishing)
        """
    )
    m = parse_pgbench(text)
    assert m["tps"] == approx(1050.456)
    assert m["tps_including_connections"] == approx(1000.123)
    assert m["latency_avg_ms"] == approx(2.5)


# --------------------------------------------------------------------------- wrk


def test_wrk_plain():
    m = parse_wrk(capture("wrk.txt"))
    assert m["requests_per_second"] == approx(744.68)
    assert m["latency_avg_ms"] == approx(9.56)
    assert m["latency_stdev_ms"] == approx(15.90)
    assert m["latency_max_ms"] == approx(222.73)
    assert m["transfer_bytes_per_second"] == approx(138.17 * 1024)
    assert m["requests"] == 2240 and m["duration_s"] == approx(3.01)
    assert m["threads"] == 2 and m["connections"] == 10
    assert "latency_p50_ms" not in m


def test_wrk_latency_distribution_and_k_suffix():
    m = parse_wrk(capture("wrk_latency.txt"))
    assert m["requests_per_second"] == approx(837.75)
    assert (m["latency_p50_ms"], m["latency_p75_ms"], m["latency_p90_ms"], m["latency_p99_ms"]) == approx(
        (3.89, 9.19, 15.67, 115.02)
    )
    assert m["thread_rps_max"] == approx(1080.0)  # "1.08k"


def test_wrk_microseconds_and_megabytes():
    m = parse_wrk(capture("wrk_latency_us.txt"))
    assert m["latency_avg_ms"] == approx(0.3074)
    assert m["latency_stdev_ms"] == approx(0.82718)
    assert m["latency_max_ms"] == approx(11.70)
    assert m["latency_p50_ms"] == approx(0.115)
    assert m["latency_p99_ms"] == approx(4.34)
    assert m["thread_rps_avg"] == approx(7920.0)
    assert m["transfer_bytes_per_second"] == approx(0.94 * 1024 * 1024)
    assert m["requests_per_second"] == approx(15398.84)


def test_wrk_errors():
    m = parse_wrk(capture("wrk_non2xx.txt"))
    assert m["non_2xx_3xx_responses"] == 1238
    m = parse_wrk(capture("wrk_socket_errors.txt"))
    assert m["socket_errors_timeout"] == 20 and m["socket_errors"] == 20
    assert m["requests_per_second"] == approx(134.79)


# --------------------------------------------------------------------------- sysbench


def test_sysbench_cpu():
    m = parse_sysbench(capture("sysbench_cpu.txt"))
    assert m["events_per_second"] == approx(1963.32)
    assert m["total_events"] == 3938 and m["total_time_s"] == approx(2.0032)
    assert (m["latency_min_ms"], m["latency_avg_ms"], m["latency_max_ms"], m["latency_p95_ms"]) == approx(
        (0.38, 0.51, 8.49, 0.48)
    )


def test_sysbench_percentile_option():
    m = parse_sysbench(capture("sysbench_cpu_2threads_p99.txt"))
    assert m["latency_p99_ms"] == approx(4.57)
    assert "latency_p95_ms" not in m
    assert m["threads"] == 2


def test_sysbench_memory_threads_fileio():
    m = parse_sysbench(capture("sysbench_memory.txt"))
    assert m["operations_per_second"] == approx(2731916.49)
    assert m["mib_per_second"] == approx(2667.89)
    m = parse_sysbench(capture("sysbench_threads.txt"))
    # threads prints no rate: total events / total time
    assert m["events_per_second"] == approx(1655 / 2.0009)
    m = parse_sysbench(capture("sysbench_fileio.txt"))
    assert m["reads_per_second"] == approx(30214.23)
    assert m["written_mib_per_second"] == approx(314.73)
    assert m["latency_p99_ms"] == approx(0.42)


def test_sysbench_oltp():
    m = parse_sysbench(capture("sysbench_oltp_read_write_pgsql.txt"))
    assert m["transactions_per_second"] == approx(600.78)
    assert m["queries_per_second"] == approx(12063.45)
    assert m["queries_read"] == 25410 and m["queries_total"] == 36284
    assert m["ignored_errors"] == 8
    assert m["latency_p95_ms"] == approx(4.91)


# --------------------------------------------------------------------------- redis-benchmark


def test_redis_csv_per_test_and_overall():
    m = parse_redis_benchmark_csv(capture("redis_benchmark_csv.txt"))
    assert m["set_rps"] == approx(30816.64)
    assert m["get_p50_latency_ms"] == approx(0.199)
    assert m["lpush_p99_latency_ms"] == approx(0.351)
    rates = [30816.64, 47732.70, 58997.05, 56179.77]
    # every test sends -n requests: overall rate = harmonic mean of the rates
    assert m["rps"] == approx(len(rates) / sum(1 / r for r in rates))
    assert m["avg_latency_ms"] == approx((0.359 + 0.221 + 0.223 + 0.192) / 4)
    assert m["max_latency_ms"] == approx(2.951)
    assert m["p99_latency_ms"] == approx(0.879)  # largest per-test value


def test_redis_pipeline_csv_and_old_headerless_csv():
    m = parse_redis_benchmark_csv(capture("redis_benchmark_pipeline_csv.txt"))
    assert m["get_rps"] == approx(909090.94)
    m = parse_redis_benchmark_csv('"PING_INLINE","90909.09"\n"SET","86956.52"\n')
    assert m["set_rps"] == approx(86956.52) and m["ping_inline_rps"] == approx(90909.09)


def test_redis_quiet_output_with_carriage_returns():
    m = parse_redis_benchmark(capture("redis_benchmark_quiet.txt"))
    assert m["set_rps"] == approx(52910.05)
    assert m["get_p50_latency_ms"] == approx(0.103)


# --------------------------------------------------------------------------- fio


def test_fio_single_job():
    m = parse_fio_json(capture("fio_randread.json"))
    assert m["read_iops"] == approx(12709.145427) and m["iops"] == approx(12709.145427)
    assert m["read_bw_kib_s"] == 50836
    assert m["read_clat_mean_ms"] == approx(0.076281882034)
    assert m["read_clat_p95_ms"] == approx(0.103936)
    assert m["write_iops"] == 0
    assert "write_clat_mean_ms" not in m


def test_fio_two_jobs_are_aggregated():
    m = parse_fio_json(capture("fio_randrw_2jobs.json"))
    assert m["jobs"] == 2
    assert m["read_iops"] == approx(7348.325837 + 7262.868566)
    assert m["write_iops"] == approx(3136.931534 + 3125.437281)
    assert m["iops"] == approx(7348.325837 + 7262.868566 + 3136.931534 + 3125.437281)
    assert m["read_bw_kib_s"] == 29393 + 29051
    assert m["read_clat_mean_ms"] == approx((14704 * 286564.312296 + 14533 * 290209.638134) / (14704 + 14533) / 1e6)
    assert m["read_clat_p95_ms"] == approx(0.432128)  # the larger job's p95


def test_fio_tolerates_lines_before_the_json():
    text = capture("fio_write_with_note.json")
    assert text.startswith("note:")
    m = parse_fio_json(text)
    assert m["write_iops"] == approx(71265.734266)
    assert m["write_bw_kib_s"] == 4561006
    assert parse_fio_json("fio: no JSON here\n") == {}


# --------------------------------------------------------------------------- generic rule


@pytest.mark.parametrize(
    "text",
    [
        "score: 1.5",
        "score=1.5",
        "score 1.5",
        "SCORE = 1.5",
        '{"score": 1.5}',
        "score: 1.5 ms",
        "score: 1.5ops/s",
    ],
)
def test_generic_formats(text):
    assert parse_generic(text, "score") == 1.5


def test_generic_words_case_units_and_last_occurrence():
    assert parse_generic("Requests per second:    1234.5 [#/sec] (mean)", "requests_per_second") == 1234.5
    assert parse_generic("requests-per-second = 7", "Requests_Per_Second") == 7
    assert parse_generic("score: 1\nscore: 2\nscore: 3e2\n", "score") == 300.0
    assert parse_generic("total: 1,234,567 ops", "total") == 1234567
    assert parse_generic("score: -0.25", "score") == -0.25


def test_generic_needs_the_whole_name():
    assert parse_generic("tps_excluding = 5", "tps") is None
    assert parse_generic("mytps: 5", "tps") is None
    assert parse_generic("tps_excluding = 5\ntps = 4", "tps") == 4
    assert parse_generic("version 10.0.0.1", "version") is None
    assert parse_generic("nothing here", "score") is None


def test_extract_metric_seed_names():
    """The reward_metric names of seed 004's examples work on the real tools' output."""
    value, metrics = extract_metric(capture("pgbench.txt"), "pgbench", "transactions_per_second")
    assert value == approx(1431.476956) and metrics["tps"] == approx(1431.476956)
    assert extract_metric(capture("wrk.txt"), "wrk", "requests_per_second")[0] == approx(744.68)
    assert extract_metric(capture("sysbench_cpu.txt"), "sysbench", "operations_per_second")[0] == approx(1963.32)
    assert extract_metric(capture("sysbench_memory.txt"), "sysbench", "operations_per_second")[0] == approx(
        2731916.49
    )


@pytest.mark.parametrize(
    "capture_name,runner,metric,expected",
    [
        ("pgbench.txt", "pgbench", "latency_ms", 2.794),
        ("pgbench.txt", "pgbench", "TPS", 1431.476956),
        ("wrk_latency.txt", "wrk", "p99_latency_ms", 115.02),
        ("wrk_latency.txt", "wrk", "Requests/sec", 837.75),
        ("wrk.txt", "wrk", "rps", 744.68),
        ("sysbench_cpu.txt", "sysbench", "p95_latency_ms", 0.48),
        ("sysbench_oltp_read_write_pgsql.txt", "sysbench", "tps", 600.78),
        ("sysbench_oltp_read_write_pgsql.txt", "sysbench", "qps", 12063.45),
        ("redis_benchmark_csv.txt", "redis-benchmark", "set_requests_per_second", 30816.64),
        ("redis_benchmark_csv.txt", "redis-benchmark", "get_p50_latency_ms", 0.199),
        ("redis_benchmark_pipeline_csv.txt", "redis-benchmark", "latency_ms", (0.384 + 0.263) / 2),
        ("fio_randread.json", "fio", "iops", 12709.145427),
        ("fio_randread.json", "fio", "p95_latency_ms", 0.103936),
        ("fio_randrw_2jobs.json", "fio", "read_bandwidth", 58444),
    ],
)
def test_extract_metric_aliases(capture_name, runner, metric, expected):
    assert extract_metric(capture(capture_name), runner, metric)[0] == approx(expected)


def test_redis_requests_per_second_is_the_overall_rate():
    text = capture("redis_benchmark_pipeline_csv.txt")
    value, _ = extract_metric(text, "redis-benchmark", "requests_per_second")
    assert value == approx(2 / (1 / 714285.69 + 1 / 909090.94))


def test_candidate_names_latency_spellings():
    names = candidate_names("fio", "read_latency_ms")
    assert "read_clat_mean_ms" in names
    assert candidate_names("wrk", "latency_p99")[1:] == ["latency_p99_ms", "p99_latency_ms", "clat_p99_ms"]
    assert not any("avg" in n for n in candidate_names("wrk", "latency_us"))


def test_command_runner_uses_text_first_then_a_recognised_tool():
    # a wrapper script that runs pgbench: its own name for the metric is not printed
    text = capture("pgbench.txt")
    assert detect_runner(text) == "pgbench"
    assert extract_metric(text, "command", "transactions_per_second")[0] == approx(1431.476956)
    assert extract_metric(text, "command", "latency average")[0] == approx(2.794)
    assert detect_runner("score: 3") is None


def test_missing_metric_error_says_what_and_how():
    with pytest.raises(BenchmarkError) as info:
        extract_metric(capture("pgbench.txt"), "pgbench", "transactons_per_sec")
    message = str(info.value)
    assert "'transactons_per_sec'" in message
    assert "tps" in message and "latency_avg_ms" in message  # what was found
    assert "reward_metric must match text in the benchmark output" in message
    assert "test the benchmark command by hand first" in message
    assert "tps = 1431.476956 (without initial connection time)" in message  # last lines
    assert info.value.exit_code == 4
    assert len(info.value.lines()) > 3  # one console line per problem and output line


def test_missing_metric_without_any_numbers():
    with pytest.raises(BenchmarkError) as info:
        extract_metric("hello\nworld\n", "command", "score")
    assert "no known metric was found" in str(info.value)
    assert "world" in str(info.value)
    with pytest.raises(BenchmarkError):
        extract_metric(capture("pgbench_init.txt"), "pgbench", "tps")


@pytest.mark.parametrize("text", ["score: nan", "score: -inf", "score = Infinity"])
def test_non_finite_metric_is_an_error(text):
    with pytest.raises(BenchmarkError, match="finite"):
        extract_metric(text, "command", "score")


def test_benchmark_env_forces_c_numbers():
    env = benchmark_env({"FOO": "1"}, base={"LC_ALL": "de_DE.UTF-8", "PATH": "/bin"})
    assert env["LC_NUMERIC"] == "C" and "LC_ALL" not in env and env["LANG"] == "de_DE.UTF-8"
    assert env["FOO"] == "1" and env["PATH"] == "/bin"


# --------------------------------------------------------------------------- real processes

COUNTING_SCRIPT = """
import sys
from pathlib import Path
counter = Path(sys.argv[1])
n = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(n + 1))
values = [float(v) for v in sys.argv[2].split(",")]
print("warming up")
print(f"score: {values[n]} points")
print(f"other_number = {n}")
"""

SPAWNING_SCRIPT = """
import os, signal, subprocess, sys, time
from pathlib import Path
if sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)   # inherited by the sleep below
child = subprocess.Popen(["sleep", "60"])
Path(sys.argv[1]).write_text(f"{os.getpid()} {child.pid}")
print("started", flush=True)
time.sleep(60)
"""


def _write(tmp_path: Path, name: str, body: str) -> str:
    p = tmp_path / name
    p.write_text(body)
    return str(p)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan waiting for init to reap it is dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _assert_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if _running(p)]


def _pids(path: Path) -> list[int]:
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return [int(x) for x in path.read_text().split()]


def test_repeats_median_and_warmups(tmp_path):
    script = _write(tmp_path, "bench.py", COUNTING_SCRIPT)
    counter = tmp_path / "count"
    runner = BenchmarkRunner(
        [sys.executable, script, str(counter), "100,5,30,20,10"], metric="score", repeats=3, warmup_runs=2
    )
    result = runner.run()
    assert counter.read_text() == "5"  # 2 warm-ups + 3 measured
    assert result.runs == (30.0, 20.0, 10.0)  # warm-ups (100, 5) discarded
    assert result.metric == 20.0
    assert result.metrics["score"] == 20.0
    assert result.metrics["other_number"] == 3.0  # median of 2, 3, 4
    assert "score: 10.0 points" in result.output_tail
    assert result.throughput is None and result.latency_ms is None
    assert result.duration_s > 0


def test_run_argv_override(tmp_path):
    script = _write(tmp_path, "bench.py", COUNTING_SCRIPT)
    runner = BenchmarkRunner([sys.executable, script, str(tmp_path / "a"), "1"], metric="score")
    assert runner.run([sys.executable, script, str(tmp_path / "b"), "42"]).metric == 42.0
    assert not (tmp_path / "a").exists()


def test_non_zero_exit_quotes_status_and_last_lines(tmp_path):
    script = _write(
        tmp_path, "fail.py", "import sys\nfor i in range(1, 31):\n    print(f'line {i}')\nsys.exit(3)\n"
    )
    with pytest.raises(BenchmarkError) as info:
        BenchmarkRunner([sys.executable, script], metric="score").run()
    message = str(info.value)
    assert "exited with status 3" in message
    assert "line 30" in message and "line 16" in message
    assert "line 15\n" not in message + "\n" and "line 1\n" not in message


def test_missing_program_is_a_benchmark_error():
    with pytest.raises(BenchmarkError, match="not found"):
        BenchmarkRunner(["/nonexistent/bench-xyz"], metric="score").run()


def test_stderr_is_merged(tmp_path):
    script = _write(tmp_path, "err.py", "import sys\nprint('score: 7', file=sys.stderr)\n")
    assert BenchmarkRunner([sys.executable, script], metric="score").run().metric == 7.0


def test_timeout_kills_the_whole_process_group(tmp_path):
    script = _write(tmp_path, "spawn.py", SPAWNING_SCRIPT)
    pidfile = tmp_path / "pids"
    runner = BenchmarkRunner(
        [sys.executable, script, str(pidfile), "ignore-term"], metric="score", timeout_s=1.0, kill_grace_s=0.3
    )
    with pytest.raises(BenchmarkError) as info:
        runner.run()
    assert "timed out after 1 s" in str(info.value)
    assert "started" in str(info.value)  # the partial output is quoted
    pids = _pids(pidfile)
    assert len(pids) == 2
    _assert_gone(pids)


def test_interrupt_from_a_signal_handler_kills_the_group(tmp_path):
    script = _write(tmp_path, "spawn.py", SPAWNING_SCRIPT)
    pidfile = tmp_path / "pids"

    def handler(signum, frame):
        raise Interrupted(signum)

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.8)
    try:
        with pytest.raises(Interrupted):
            BenchmarkRunner([sys.executable, script, str(pidfile), "plain"], metric="score", timeout_s=30).run()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    _assert_gone(_pids(pidfile))


def test_left_over_background_jobs_are_stopped(tmp_path):
    pidfile = tmp_path / "bg"
    script = _write(
        tmp_path,
        "bg.py",
        "import subprocess, sys\n"
        "p = subprocess.Popen(['sleep', '60'], stdout=subprocess.DEVNULL)\n"
        "open(sys.argv[1], 'w').write(str(p.pid))\n"
        "print('score: 1')\n",
    )
    assert BenchmarkRunner([sys.executable, script, str(pidfile)], metric="score").run().metric == 1.0
    _assert_gone(_pids(pidfile))


# --------------------------------------------------------------------------- specs

ACTION = [{"param": "vm.swappiness", "min": 0, "max": 10, "type": "int"}]


def test_runner_from_seed_spec():
    spec = spec_from_dict(
        {
            "workload_name": "CPU",
            "reward_metric": "operations_per_second",
            "benchmark_command": "sysbench cpu --time=30 run 2>&1",
            "action_space": ACTION,
            "training_config": {"benchmark_timeout": 45},
        }
    )
    runner = runner_from_spec(spec, None)
    assert runner.argv == ("sysbench", "cpu", "--time=30", "run")
    assert runner.runner == "sysbench" and runner.metric == "operations_per_second"
    assert runner.timeout_s == 45


def test_runner_from_structured_args():
    spec = spec_from_dict(
        {
            "workload_name": "db",
            "reward_metric": "tps",
            "benchmark": {"runner": "pgbench", "args": ["-c", "4", "-T", "5", "testdb"], "repeats": 3, "warmup_runs": 1},
            "action_space": ACTION,
        }
    )
    runner = runner_from_spec(spec, None)
    assert runner.argv == ("pgbench", "-c", "4", "-T", "5", "testdb")
    assert (runner.repeats, runner.warmup_runs) == (3, 1)


def test_runner_from_spec_refuses_shell_without_a_plan():
    spec = spec_from_dict(
        {
            "workload_name": "x",
            "reward_metric": "score",
            "benchmark_command": "./bench | tee log",
            "action_space": ACTION,
        }
    )
    with pytest.raises(SafetyError):
        runner_from_spec(spec, None)
    from cli_ai.safety.check import plan_command

    plan = plan_command(spec.benchmark.command, allow_shell=True)
    assert runner_from_spec(spec, plan).argv == ("/bin/sh", "-c", "./bench | tee log")


@pytest.mark.skipif(not shutil.which("sysbench"), reason="sysbench not installed")
def test_real_sysbench_cpu_run():
    result = BenchmarkRunner(["sysbench", "cpu", "--time=1", "run"], runner="sysbench", metric="events_per_second").run()
    assert result.metric > 0
    assert result.throughput == result.metric
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.metrics["total_events"] > 0
    assert "events per second" in result.output_tail or "Threads fairness" in result.output_tail
