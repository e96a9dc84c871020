"""Issue 15, items 5 and 7: the ready examples validate on this kernel, and the
operational details a newcomer meets (the sysctl.d override documented, what
`sysctl -w` lines last for, honest time estimates, one spelling of bools, the
scheduler table in its metric's unit, rounded scores in exports), each seen
through the real CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT, run_cli

README = ROOT / "README.md"


def ready_examples() -> list[str]:
    """The spec files the README's "Ready specs are in `examples/`" paragraph names."""
    text = README.read_text()
    start = text.index("Ready specs are in `examples/`")
    paragraph = text[start:text.index("\n\n", start)]
    ready = paragraph.split("is kept as a historical case")[0]
    return re.findall(r"`([a-z0-9_]+\.json)`", ready)


# ------------------------------------------------------------------ item 5


def test_the_readme_names_ready_examples_that_exist():
    names = ready_examples()
    assert "cpu_scheduler.json" in names and "cpu_intensive.json" not in names
    assert len(names) >= 9
    for name in names:
        assert (EXAMPLES / name).is_file(), name


@pytest.mark.parametrize("name", ready_examples())
def test_every_ready_example_validates_on_this_kernel(name):
    r = run_cli("validate", EXAMPLES / name)
    assert r.returncode == 0, r.stderr


def test_the_historical_cpu_example_is_documented_as_such():
    spec = json.loads((EXAMPLES / "cpu_intensive.json").read_text())
    assert spec["description"].startswith("Historical") and "cpu_scheduler.json" in spec["description"]
    if Path("/proc/sys/kernel/sched_min_granularity_ns").exists():
        pytest.skip("this kernel still has the knobs (before 5.13)")
    r = run_cli("validate", EXAMPLES / "cpu_intensive.json")
    assert r.returncode == 3 and "removed in Linux 5.13" in r.stderr


def test_the_current_cpu_example_uses_sysbench_cpu_and_catalogued_knobs_of_this_kernel():
    from cli_ai.safety.catalog import load_catalog

    spec = json.loads((EXAMPLES / "cpu_scheduler.json").read_text())
    assert spec["benchmark_command"].startswith("sysbench cpu ")
    for knob in spec["action_space"]:
        assert knob["param"] in load_catalog()
        assert Path("/proc/sys/" + knob["param"].replace(".", "/")).exists(), knob["param"]


# ------------------------------------------------------------------ item 7


def test_the_sysctl_dir_override_is_documented_in_apply_help_and_readme():
    r = run_cli("apply", "--help", env={"COLUMNS": "200"})
    assert r.returncode == 0
    persist_help = r.stdout[r.stdout.index("--persist"):r.stdout.index("--yes")]
    assert "CLI_AI_SYSCTL_DIR" in persist_help and "reboot" in persist_help
    assert "CLI_AI_SYSCTL_DIR" in README.read_text()


@pytest.fixture(scope="module")
def dry_optimize(tmp_path_factory):
    """One dry `optimize --spec` of the CPU example: its screen and its summary."""
    out = tmp_path_factory.mktemp("runs")
    state = tmp_path_factory.mktemp("state")
    r = run_cli("optimize", "--spec", EXAMPLES / "cpu_scheduler.json", "--dry-run", "--yes", "--budget", "8",
                "--seed", "3", "--output-dir", out, env={"COLUMNS": "200", "CLI_AI_STATE_DIR": str(state)})
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr


def test_the_sysctl_lines_say_they_last_until_reboot(dry_optimize):
    assert "permanently" not in dry_optimize
    assert "until the next reboot" in dry_optimize


def test_a_real_result_points_to_persist_for_keeping_the_values():
    from cli_ai.console.tune import conclusion
    from cli_ai.results import TuningResult

    r = TuningResult(workload="w", target="sysctl", metric="tps", direction="maximize", algorithm="gp", budget=8,
                     simulated=False, baseline_config={"vm.swappiness": 60}, best_config={"vm.swappiness": 10},
                     baseline=100.0, best=120.0, improvement=20.0, evaluations=8, failed_steps=0,
                     stopped_reason="budget spent", success=True, duration_s=1.0, run_dir="runs/x",
                     extra={"verdict": "better"}, applicable=True)
    text = "\n".join(conclusion(r))
    assert "until the next reboot" in text and "sudo sysctl -w vm.swappiness=10" in text
    assert "cli-ai apply runs/x/result.json --persist" in text and "sysctl.d" in text


def test_a_dry_run_budget_line_is_not_a_sentence_fragment(dry_optimize):
    budget = next(line for line in dry_optimize.splitlines() if line.startswith("Budget:"))
    assert budget.split() == ["Budget:", "8", "evaluations"]
    assert re.search(r"^Time: +a few seconds \(simulated", dry_optimize, re.M)


def test_bools_are_spelled_one_way_on_a_sysctl_run(dry_optimize):
    rows = [line for line in dry_optimize.splitlines()
            if "kernel.sched_autogroup_enabled" in line or "kernel.timer_migration" in line]
    assert rows
    for line in rows:
        assert "true" not in line and "false" not in line, line
    r = run_cli("validate", EXAMPLES / "cpu_scheduler.json", env={"COLUMNS": "200"})
    row = next(line for line in r.stdout.splitlines() if "kernel.timer_migration" in line)
    assert row.count("0 or 1") == 2, row


def _spec(benchmark_command: str, timeout: int = 120):
    from cli_ai.spec import spec_from_dict

    return spec_from_dict({"workload_name": "t", "reward_metric": "requests_per_second",
                           "benchmark_command": benchmark_command,
                           "training_config": {"benchmark_timeout": timeout},
                           "action_space": [{"param": "vm.swappiness", "min": 0, "max": 10, "type": "int"}]})


def test_the_time_estimate_is_an_upper_bound_when_the_benchmark_states_no_duration():
    from cli_ai.optimize import time_estimate_text

    text = time_estimate_text(_spec("redis-benchmark -q -n 1000"), 8, dry_run=False)
    assert "at most" not in text
    assert text.startswith("unknown") and "upper bound is 16 min" in text and "120 s timeout" in text
    timed = time_estimate_text(_spec("sysbench cpu --time=2 run"), 8, dry_run=False, verify=3)
    assert timed.startswith("about 28 s") and "benchmark's duration" in timed


def test_the_scheduler_table_is_in_the_metrics_unit(tmp_path):
    out = tmp_path / "out"
    r = run_cli("scheduler", "compare", EXAMPLES / "scheduler.json", "--episodes", "1", "--output-dir", out,
                env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "latencies in ms" in r.stdout
    result = json.loads(next(out.glob("*.json")).read_text())
    best = result["best_p95"]
    shown = re.search(r"best p95 latency: \S+ \(([\d,.]+) ms\)", r.stdout)
    assert shown, r.stdout
    assert float(shown[1].replace(",", "")) == pytest.approx(result["policies"][best]["p95_latency_ms"], abs=0.5)


def test_exported_scores_are_rounded(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({
        "workload": "w", "target": "sysctl", "simulated": False, "metric": "tps",
        "baseline": 1775.8341562042403, "best": 2001.0000000000002, "improvement": 12.68,
        "best_config": {"vm.swappiness": 10}, "verdict": "better",
        "verification": {"verdict": "better", "p_value": 0.001}}))
    r = run_cli("export", path)
    assert r.returncode == 0, r.stderr
    assert "# tps: 1775.83 -> 2001 (+12.7%, better)" in r.stdout.splitlines()


def test_large_exported_scores_keep_their_digits_without_an_exponent(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({
        "workload": "w", "target": "sysctl", "simulated": False, "metric": "write_bw_kib_s",
        "baseline": 12345678.91, "best": 13000000.4, "improvement": 5.3,
        "best_config": {"vm.swappiness": 10}, "verdict": "better",
        "verification": {"verdict": "better", "p_value": 0.001}}))
    r = run_cli("export", path, "--format", "script")
    assert r.returncode == 0, r.stderr
    assert "# write_bw_kib_s: 12345679 -> 13000000 (+5.3%, better)" in r.stdout.splitlines()
