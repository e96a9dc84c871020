"""`cli-ai tune examples/mosquitto.json` against a real broker (seed 000's
dry run, shortened): the step CSV carries seed 000's columns with real,
non-zero throughput and latency, and no broker is left running."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_cli

pytestmark = pytest.mark.skipif(not (shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")),
                                reason="mosquitto is not installed (scripts/install-tools.sh installs it)")

SEED_COLUMNS = ["action", "throughput", "latency_p50", "latency_p95", "reward_tps", "reward_latency", "reward_raw",
                "reward_final", "default_tps", "default_lat", "best_tps", "best_lat"]


def _brokers(tmp: Path) -> set[str]:
    """Mosquitto processes whose config lives under this test's own TMPDIR:
    the brokers this test started, never another run's on the same machine."""
    out = subprocess.run(["pgrep", "-a", "-x", "mosquitto"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if str(tmp) in line}


@pytest.fixture
def broker_tmp():
    """A TMPDIR of this test's own for the managed broker's work directory
    (world-readable: the broker runs as an unprivileged user)."""
    path = Path(tempfile.mkdtemp(prefix="cli-ai-test-broker-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_tune_mosquitto_with_the_workload(tmp_path, broker_tmp):
    env = {"TMPDIR": str(broker_tmp)}
    r = run_cli("tune", EXAMPLES / "mosquitto.json", "--total-timesteps", "4", "--enable-workload", "--yes",
                "--json", "--output-dir", tmp_path, timeout=400, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    assert result["evaluations"] == 5 and result["algorithm"] == "per-ddpg"
    rows = list(csv.DictReader(open(f"{result['run_dir']}/trajectory.csv")))
    assert len(rows) == 5
    for column in SEED_COLUMNS:
        assert column in rows[0], column
    for row in rows:
        assert float(row["throughput"]) > 0 and float(row["latency_p95"]) > 0
    assert float(rows[1]["default_tps"]) == pytest.approx(float(rows[0]["throughput"]))
    assert _brokers(broker_tmp) == set()  # the run's own broker is gone


def test_auto_searches_the_broker_through_the_same_env(tmp_path, broker_tmp):
    """`--algo auto` on the Mosquitto target: the optimiser's proposals go
    through the broker env (apply, reload, real MQTT load) like an agent's
    actions, and the run says which sampler it used."""
    env = {"TMPDIR": str(broker_tmp)}
    r = run_cli("tune", EXAMPLES / "mosquitto.json", "--algo", "auto", "--total-timesteps", "4", "--enable-workload",
                "--verify", "0", "--yes", "--json", "--output-dir", tmp_path, timeout=400, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    assert result["algorithm"] == "auto" and result["search"]["used"].startswith("auto (")
    rows = list(csv.DictReader(open(f"{result['run_dir']}/trajectory.csv")))
    assert len(rows) == result["evaluations"] >= 5
    assert {row["phase"] for row in rows} >= {"baseline", "search"}
    for row in rows:
        assert float(row["throughput"]) > 0 and float(row["latency_p95"]) > 0
    assert _brokers(broker_tmp) == set()
