"""Issue 15, items 3 and 4: every table reads at 80 columns (param names, descriptions,
headers and the paths the next command needs are never cut), and `tune -q` prints
the final summary and nothing else. Real CLI runs with COLUMNS=80 (Rich honours it)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_cli

NARROW = {"COLUMNS": "80"}
CATALOG = json.loads((Path(__file__).resolve().parent.parent / "cli_ai/safety/catalog.json").read_text())["sysctl"]

PORTS_SPEC = {
    "workload_name": "Port exhaustion",
    "reward_metric": "requests_per_second",
    "benchmark_command": "wrk -t2 -c100 -d10s http://localhost:80/",
    "action_space": [
        {"param": "net.ipv4.ip_local_port_range", "type": "vector",
         "elements": [{"min": 1024, "max": 32768}, {"min": 60999, "max": 65535}]},
        {"param": "net.ipv4.tcp_tw_reuse", "min": 0, "max": 2, "type": "int"},
        {"param": "net.ipv4.tcp_fin_timeout", "min": 5, "max": 60, "type": "int"},
        {"param": "net.ipv4.tcp_max_tw_buckets", "min": 16384, "max": 2000000, "type": "int", "scale": "log"},
        {"param": "net.ipv4.tcp_rmem", "type": "vector",
         "elements": [{"min": 4096, "max": 8192}, {"min": 87380, "max": 1048576}, {"min": 4194304, "max": 16777216}]},
    ],
}
PORT_PARAMS = [knob["param"] for knob in PORTS_SPEC["action_space"]]


def words(text: str) -> str:
    """The text with every run of whitespace (and wrapping) made one space."""
    return " ".join(text.split())


def assert_nothing_cut(text: str) -> None:
    assert "…" not in text, text


def line_with(text: str, needle: str) -> str:
    """The one line that holds `needle` whole (a path printed with soft_wrap keeps one line)."""
    lines = [line for line in text.splitlines() if needle in line]
    assert lines, f"{needle!r} is not on one line of:\n{text}"
    return lines[0]


# ------------------------------------------------------------------ tune confirmation and plan screens
@pytest.mark.skipif(os.geteuid() != 0, reason="a real (non-dry) run reads and checks /proc/sys access as root")
def test_tune_confirmation_screen_keeps_param_names_whole_at_80_columns(write_spec, tmp_path):
    # No --yes and stdin not a terminal: the screen is printed, then the run is refused before any write.
    spec = write_spec(PORTS_SPEC)
    r = run_cli("tune", spec, "--output-dir", tmp_path / "runs", env=NARROW, input="")
    assert r.returncode == 3, r.stderr
    assert "This run will change these values on this machine" in r.stderr
    assert "needs confirmation" in r.stderr
    assert_nothing_cut(r.stderr)
    for name in PORT_PARAMS:
        line_with(r.stderr, name)


def test_confirmation_screen_rendered_at_80_columns_keeps_names_and_ranges(tmp_path):
    """The same screen rendered by the console itself on an 80-column console (no root needed)."""
    from rich.console import Console as RichConsole

    from cli_ai.console import Console
    from cli_ai.console.tune import confirmation_screen
    from cli_ai.spec import load_spec
    from cli_ai.tuning import TuneOptions, prepare

    path = tmp_path / "ports.json"
    path.write_text(json.dumps(PORTS_SPEC))
    run = prepare(load_spec(path), TuneOptions(dry_run=True, yes=True, output_dir=str(tmp_path)))
    console = Console()
    console.err = RichConsole(width=80, record=True, highlight=False)
    confirmation_screen(console, run)
    text = console.err.export_text()
    assert_nothing_cut(text)
    for name in PORT_PARAMS:
        line_with(text, name)
    assert "[4194304..16777216]" in text
    assert all(len(line) <= 80 for line in text.splitlines() if "│" in line)


def test_optimize_plan_screen_at_80_columns_keeps_names_and_ranges(write_spec, tmp_path):
    spec = write_spec(PORTS_SPEC)
    r = run_cli("optimize", "--spec", spec, "--dry-run", "--budget", "6", "--verify", "0",
                "--output-dir", tmp_path / "runs", env=NARROW)
    assert r.returncode == 0, r.stderr
    plan = r.stderr.split("Benchmark:")[0]
    assert_nothing_cut(plan)
    for name in PORT_PARAMS:
        line_with(plan, name)
    assert "[65536..134217728]" in plan  # the safe range of tcp_rmem's last element, whole


# ------------------------------------------------------------------ cli-ai params
def test_params_search_at_80_columns_shows_the_whole_description():
    r = run_cli("params", "tcp_tw", env=NARROW)
    assert r.returncode == 0, r.stderr
    assert_nothing_cut(r.stdout)
    line_with(r.stdout, "net.ipv4.tcp_tw_reuse")
    assert words(CATALOG["net.ipv4.tcp_tw_reuse"]["description"]) in words(r.stdout)
    assert all(len(line) <= 80 for line in r.stdout.splitlines())


def test_params_full_table_at_80_columns_keeps_every_name_and_description():
    r = run_cli("params", env=NARROW)
    assert r.returncode == 0, r.stderr
    assert_nothing_cut(r.stdout)
    flat = words(r.stdout)
    for name, entry in CATALOG.items():
        if not isinstance(entry, dict) or "description" not in entry:
            continue
        line_with(r.stdout, name)
        assert words(entry["description"]) in flat, name
    assert all(len(line) <= 80 for line in r.stdout.splitlines())


def test_params_keeps_the_table_on_a_wide_terminal():
    r = run_cli("params", "tcp_tw", env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert re.search(r"┃ name\s+┃ current\s+┃ safe range", r.stdout), r.stdout
    assert words(CATALOG["net.ipv4.tcp_tw_reuse"]["description"]) in words(r.stdout)


# ------------------------------------------------------------------ autoscale toolkit
@pytest.fixture(scope="module")
def sarsa_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sarsa")
    r = run_cli("autoscale", "train-sarsa", "--episodes", "2", "--output-dir", out, env=NARROW)
    assert r.returncode == 0, r.stderr
    model = next(out.glob("sarsa_run_*/models/*.pkl"))
    return r, model


def test_autoscale_training_at_80_columns_prints_the_model_and_plot_paths_whole(sarsa_run):
    r, model = sarsa_run
    assert_nothing_cut(r.stdout)
    assert line_with(r.stdout, str(model)).strip() == f"model: {model}"
    plot = next(model.parent.parent.glob("plots/*.png"))
    line_with(r.stdout, str(plot))
    line_with(r.stdout, str(model.parent.parent))


def test_autoscale_test_episode_table_fits_80_columns(sarsa_run, tmp_path):
    _, model = sarsa_run
    r = run_cli("autoscale", "test", "--model", model, "--episodes", "2", "--output", tmp_path / "eval.json", env=NARROW)
    assert r.returncode == 0, r.stderr
    assert_nothing_cut(r.stdout)
    table = [line for line in r.stdout.splitlines() if "┃" in line or "│" in line]
    assert table, r.stdout  # still a table at 80 columns
    assert all(len(line) <= 80 for line in table)
    header = words(" ".join(line for line in table if "┃" in line))
    for word in ("total", "reward", "QoS", "workers", "no-op"):
        assert word in header


def test_autoscale_compare_at_80_columns_cuts_no_header_or_number(sarsa_run, tmp_path):
    _, model = sarsa_run
    r = run_cli("autoscale", "compare", "--model", model, "--output-dir", tmp_path, env=NARROW)
    assert r.returncode == 0, r.stderr
    assert_nothing_cut(r.stdout)
    for label in ("total reward", "mean workers", "QoS / worker", "scaling", "no-op"):
        assert label in r.stdout
    for policy in ("sarsa", "reactiveaverage", "reactivemaximum"):
        line_with(r.stdout, policy)
    plot = next(tmp_path.glob("comparison/compare_*/plots/*.png"))
    line_with(r.stdout, str(plot))


# ------------------------------------------------------------------ policy summary
def test_policy_tune_summary_at_80_columns_prints_the_run_directory_whole(tmp_path):
    out = tmp_path / "a-rather-long-directory-name-for-the-runs-of-this-test" / "runs"
    r = run_cli("tune", EXAMPLES / "autoscaling.json", "--algo", "random", "--budget", "60", "--yes",
                "--output-dir", out, env=NARROW)
    assert r.returncode == 0, r.stderr
    run_dir = next(out.iterdir())
    assert_nothing_cut(r.stdout)
    assert "Training complete" in r.stdout
    holding = [line.strip() for line in r.stdout.splitlines() if str(run_dir) in line]
    assert holding == [f"Run directory: {run_dir}", f"run directory: {run_dir}"]  # header and summary, whole


# ------------------------------------------------------------------ tune -q (item 4)
def test_tune_quiet_prints_only_the_final_summary(tmp_path):
    r = run_cli("tune", EXAMPLES / "postgresql_oltp.json", "--dry-run", "--yes", "-q", "--budget", "12",
                "--output-dir", tmp_path, env=NARROW)
    assert r.returncode == 0, r.stderr
    run_dir = next(tmp_path.iterdir())
    assert "Optimization complete" in r.stdout
    assert "Improvement" in r.stdout
    assert f"run directory: {run_dir}" in r.stdout
    for noise in ("step ", "baseline (", "verifying", "cli-ai tune", "Run directory:", "search:"):
        assert noise not in r.stdout
    assert r.stderr.strip() == ""


def test_tune_quiet_policy_run_prints_only_the_final_summary(tmp_path):
    r = run_cli("tune", EXAMPLES / "autoscaling.json", "--algo", "random", "--budget", "60", "--yes", "-q",
                "--output-dir", tmp_path, env=NARROW)
    assert r.returncode == 0, r.stderr
    run_dir = next(tmp_path.iterdir())
    assert "Training complete" in r.stdout
    assert f"run directory: {run_dir}" in r.stdout
    assert "episode " not in r.stdout and "cli-ai tune (policy)" not in r.stdout
    assert r.stderr.strip() == ""


def test_validate_at_80_columns_keeps_param_names_and_ranges(write_spec):
    r = run_cli("validate", write_spec(PORTS_SPEC), env=NARROW)
    assert r.returncode == 0, r.stderr
    assert_nothing_cut(r.stdout)
    for name in PORT_PARAMS:
        line_with(r.stdout, name)
    assert "[65536..134217728]" in r.stdout
