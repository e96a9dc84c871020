"""A `cli-ai tune` flag that does not apply to the run is an error that says
what it applies to (they used to be ignored without a word), found before
anything runs."""

from __future__ import annotations

import json

import pytest

from tests.conftest import EXAMPLES, run_cli


@pytest.mark.parametrize(("spec", "args", "message"), [
    ("postgresql_oltp.json", ["--replay-alpha", "0.5"], "--replay-alpha: applies to the mosquitto target"),
    ("postgresql_oltp.json", ["--total-timesteps", "5"], "--total-timesteps: applies to the mosquitto target"),
    ("mosquitto.json", ["--algo", "td3", "--replay-buffer-size", "100"],
     "--replay-buffer-size: sets PER-DDPG's prioritized replay; this run's algorithm is td3"),
    ("postgresql_oltp.json", ["--algo", "random", "--tensorboard", "TB"], "--tensorboard: random writes no training log"),
    ("autoscaling.json", ["--algo", "dqn", "--tensorboard", "TB"], "--tensorboard: dqn writes no training log"),
])
def test_a_flag_that_does_not_apply_is_refused(tmp_path, spec, args, message):
    args = [str(tmp_path / "tb") if a == "TB" else a for a in args]
    r = run_cli("tune", EXAMPLES / spec, "--dry-run", "--yes", "--budget", "10", "--output-dir", tmp_path / "runs",
                *args)
    assert r.returncode == 2, r.stderr[-2000:]
    assert message in r.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "tb").exists()  # nothing ran


def test_validate_refuses_what_tune_would_refuse(tmp_path):
    """`validate` said a sysctl spec naming dqn was valid; only `tune` refused it."""
    spec = json.loads((EXAMPLES / "postgresql_oltp.json").read_text())
    spec.setdefault("training_config", {})["algorithm"] = "dqn"
    path = tmp_path / "dqn.json"
    path.write_text(json.dumps(spec))
    r = run_cli("validate", path)
    assert r.returncode == 2 and "dqn needs a discrete action space" in r.stderr
