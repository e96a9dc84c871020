"""Rules between knobs (catalog.json `constraints`): vm.dirty_background_ratio
stays below vm.dirty_ratio (best configurations recommended 20 with 18, which
the kernel silently overrides), vm.min_free_kbytes at most 5 % of memory;
enforced by validate, by the search and by apply/export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from cli_ai.safety.constraints import problems, repair, spec_problems
from tests.conftest import EXAMPLES, run_cli


def _spec(tmp_path: Path, knobs: list[dict], name: str = "spec.json") -> Path:
    spec = json.loads((EXAMPLES / "postgresql_oltp.json").read_text())
    spec["action_space"] = knobs
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def test_the_rules_as_functions():
    assert problems({"vm.dirty_background_ratio": 20, "vm.dirty_ratio": 18})
    assert not problems({"vm.dirty_background_ratio": 10, "vm.dirty_ratio": 18})
    bounds = {"vm.dirty_background_ratio": (1.0, 30.0), "vm.dirty_ratio": (5.0, 40.0)}
    assert repair({"vm.dirty_background_ratio": 20, "vm.dirty_ratio": 18}, bounds) == {
        "vm.dirty_background_ratio": 17, "vm.dirty_ratio": 18}
    # the kernel's own dirty_ratio when the run tunes only the background ratio
    assert repair({"vm.dirty_background_ratio": 25}, bounds, fixed={"vm.dirty_ratio": 20}) == {
        "vm.dirty_background_ratio": 19}
    assert problems({"vm.min_free_kbytes": 262144}, mem_kib=2 * 1024 * 1024)  # 256 MiB of 2 GiB
    errors, notes = spec_problems({"vm.dirty_background_ratio": (25.0, 30.0), "vm.dirty_ratio": (5.0, 20.0)})
    assert errors and "can never be below" in errors[0]


def test_validate_refuses_ranges_that_can_never_keep_the_rule(tmp_path):
    path = _spec(tmp_path, [{"param": "vm.dirty_ratio", "type": "int", "min": 5, "max": 20},
                            {"param": "vm.dirty_background_ratio", "type": "int", "min": 25, "max": 30}])
    r = run_cli("validate", path)
    assert r.returncode == 3 and "can never be below vm.dirty_ratio" in r.stderr


def test_the_search_never_evaluates_a_configuration_that_breaks_a_rule(tmp_path):
    path = _spec(tmp_path, [{"param": "vm.dirty_ratio", "type": "int", "min": 5, "max": 40},
                            {"param": "vm.dirty_background_ratio", "type": "int", "min": 1, "max": 30}])
    r = run_cli("validate", path)
    assert r.returncode == 0 and "kept below vm.dirty_ratio" in r.stdout + r.stderr
    for algo in ("random", "auto"):
        r = run_cli("tune", path, "--dry-run", "--yes", "--json", "--algo", algo, "--budget", "40", "--seed", "3",
                    "--verify", "0", "--output-dir", tmp_path / algo)
        assert r.returncode == 0, r.stderr[-2000:]
        rows = list(csv.DictReader(open(Path(json.loads(r.stdout)["run_dir"]) / "trajectory.csv")))
        assert len(rows) == 40
        for row in rows:
            assert int(row["vm.dirty_background_ratio"]) < int(row["vm.dirty_ratio"]), row


def test_apply_and_export_refuse_a_result_that_breaks_a_rule(tmp_path):
    result = {"workload": "w", "target": "sysctl", "simulated": False, "metric": "tps", "baseline": 1.0, "best": 2.0,
              "improvement": 100.0, "best_config": {"vm.dirty_background_ratio": 20, "vm.dirty_ratio": 18},
              "verdict": "better", "verification": {"verdict": "better", "p_value": 0.001}}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    for args in (("export", path), ("apply", path, "--yes")):
        r = run_cli(*args)
        assert r.returncode == 3 and "is not below vm.dirty_ratio=18" in r.stderr, (args, r.stderr)
