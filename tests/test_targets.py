"""The Target registry: what each target answers for `doctor`, `export` and
the policy runs, asked of the Target and never branched on by name."""

from __future__ import annotations

import json
import os

from cli_ai.targets import TARGETS
from tests.conftest import run_cli


def test_doctor_reports_what_each_target_needs(tmp_path):
    r = run_cli("doctor", "--json")
    assert r.returncode == 0, r.stderr
    checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["running as root"]["ok"] == (os.geteuid() == 0)  # sysctl's
    assert "/proc/sys writable" in checks
    assert "mosquitto target: broker" in checks
    assert "tool: mosquitto" not in checks  # once, as the target's own check


def test_every_target_answers_the_contract():
    for name, target in TARGETS.items():
        assert target.name == name
        assert isinstance(target.doctor_checks("/proc/sys"), list)
        assert target.search in ("knobs", "policy")
        assert all(callable(r) for r in target.exports.values())
