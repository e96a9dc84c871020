"""System observation: fractions in [0, 1] over a measurement window, from
/proc/stat, /proc/meminfo and /proc/pressure (PSI) where present."""

from __future__ import annotations

import time

from cli_ai.tactician.observe import METRICS, SystemObserver, read_pressure_total, select


def test_pressure_total_parsed_from_psi_format(tmp_path):
    (tmp_path / "memory").write_text(
        "some avg10=1.50 avg60=0.80 avg300=0.20 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=789\n"
    )
    assert read_pressure_total("memory", str(tmp_path)) == 123456.0
    assert read_pressure_total("io", str(tmp_path)) is None  # no PSI file: None, not a crash


def test_window_metrics_are_fractions_and_see_cpu_work():
    obs = SystemObserver()
    snap = obs.snapshot()
    deadline = time.monotonic() + 0.3
    x = 0
    while time.monotonic() < deadline:  # keep one core busy during the window
        x += 1
    metrics = obs.since(snap)
    assert set(METRICS) <= set(metrics)
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert metrics["cpu_utilization"] > 0.2  # one of the cores was busy
    assert metrics["memory_used"] > 0.0


def test_missing_psi_reads_as_zero(tmp_path):
    obs = SystemObserver(pressure_root=str(tmp_path / "nowhere"))
    metrics = obs.since(obs.snapshot())
    assert metrics["memory_pressure"] == 0.0 and metrics["io_pressure"] == 0.0


def test_select_keeps_order_and_fills_missing():
    assert select({"a": 0.5, "b": 0.25}, ["b", "c", "a"]) == [0.25, 0.0, 0.5]
