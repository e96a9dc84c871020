"""Item 7 (file part): a spec or result path that is a FIFO, a device, a
directory or a huge file, and a malformed result, end in one line and exit 2
quickly, without being read whole and never as exit 1 "internal error"."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli

GOOD = {"workload": "w", "target": "sysctl", "simulated": False, "metric": "cps", "baseline": 1.0, "best": 2.0,
        "improvement": 100.0, "best_config": {"net.core.somaxconn": 1500}, "verdict": "better",
        "verification": {"verdict": "better", "p_value": 0.001}}


def _one_line_exit_2(r, *words, progress=False):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    if progress:  # a progress bar may come before the error
        lines = [line for line in lines if line.startswith("error:")]
    assert len(lines) == 1, r.stderr
    assert "internal error" not in r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


def _bad_paths(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:  # sparse: 11 MB that costs nothing to make
        fh.truncate(11 * 1024 * 1024)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    return {"a FIFO": fifo, "a device": Path("/dev/zero"), "a directory": folder, "byte limit": big}


@pytest.mark.parametrize("command", [["validate"], ["tune", "--dry-run"], ["apply", "--yes"], ["export"]])
def test_fifo_device_directory_and_huge_file_are_refused_fast(tmp_path, command):
    for words, path in _bad_paths(tmp_path).items():
        if command[0] in ("apply", "export") and words == "a directory":
            continue  # a run directory is a valid argument there; see the next test
        start = time.monotonic()
        r = run_cli(command[0], path, *command[1:], timeout=30)
        assert time.monotonic() - start < 15
        _one_line_exit_2(r, str(path), words)


def test_a_run_directory_whose_result_is_a_directory_or_fifo(tmp_path):
    run = tmp_path / "run"
    (run / "result.json").mkdir(parents=True)
    _one_line_exit_2(run_cli("export", run, timeout=30), "result.json", "a directory")
    (run / "result.json").rmdir()
    os.mkfifo(run / "result.json")
    _one_line_exit_2(run_cli("apply", run, "--yes", timeout=30), "result.json", "a FIFO")


@pytest.mark.parametrize("change, words", [
    ({"improvement": "100"}, "improvement"),
    ({"best_config": {"net.core.somaxconn": "1500"}}, "best_config.net.core.somaxconn"),
    ({"best_config": {"net.core.somaxconn": 1500.5}}, "best_config.net.core.somaxconn"),
    ({"best_config": {"net.core.somaxconn": True}}, "best_config.net.core.somaxconn"),
    ({"best_config": {"net.ipv4.tcp_rmem": [6291456, 131072, 4096]}}, "best_config.net.ipv4.tcp_rmem"),
    ({"best_config": {"net.ipv4.tcp_rmem": [4096, "x", 6291456]}}, "best_config.net.ipv4.tcp_rmem"),
    ({"best_config": {"net.ipv4.tcp_rmem": {"a": 1}}}, "best_config.net.ipv4.tcp_rmem"),
    ({"verification": "better"}, "verification"),
    ({"verification": {"verdict": "better", "p_value": "0.001"}}, "verification.p_value"),
    ({"workload": ["w"]}, "workload"),
    ({"target": 7}, "target"),
    ({"simulated": "no"}, "simulated"),
    ({"metric": {"x": 1}}, "metric"),
])
def test_malformed_results_are_bad_input(tmp_path, change, words):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({**GOOD, **change}))
    for command in (["export"], ["apply", "--yes"]):
        _one_line_exit_2(run_cli(*command[:1], path, *command[1:], timeout=60), str(path), words)


def test_deeply_nested_and_non_object_results_are_bad_input(tmp_path):
    path = tmp_path / "result.json"
    for text in ('{"best_config": ' + "[" * 100000 + "]" * 100000 + "}", "[1, 2]", '"x"',
                 json.dumps({**GOOD, "extra": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}),
                 ):
        path.write_text(text)
        r = run_cli("export", path, timeout=60)
        if text.startswith(json.dumps(GOOD)[:10]) and "extra" in text:
            assert r.returncode == 0, r.stderr  # unknown extra fields are harmless
            continue
        _one_line_exit_2(r, str(path))


def test_a_spec_with_deep_nesting_is_bad_input(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{"workload_name": ' + "[" * 200000 + "]" * 200000 + "}")
    _one_line_exit_2(run_cli("validate", path, timeout=60), str(path))


def test_autoscale_workload_and_plot_inputs_are_refused_fast(tmp_path):
    paths = _bad_paths(tmp_path)
    for words in ("a FIFO", "a device", "byte limit"):
        r = run_cli("autoscale", "train-sarsa", "--workload", paths[words], "--episodes", "1", "--output-dir",
                    tmp_path / "runs", timeout=30)
        _one_line_exit_2(r, str(paths[words]), words, progress=True)
    r = run_cli("autoscale", "plot", paths["a FIFO"], timeout=30)
    _one_line_exit_2(r, str(paths["a FIFO"]), "a FIFO")
