"""vm.dirty_ratio / vm.dirty_bytes (and the background pair): the kernel
zeroes one when the other is written, so a spec tunes at most one of a pair,
`validate`, `export` and `apply` refuse both, and the Guard and rollback put
back the one that was set (issue 15, item 10: the catalogue's constraints).

The restore is exercised on the simulated backend, which models the kernel's
zeroing (writing vm.dirty_ratio on the host would change the machine); the
refusal of `apply` runs in the security sandbox, where /proc/sys/vm is
read-only."""

from __future__ import annotations

import json

import pytest

from cli_ai.errors import BackendWriteError
from cli_ai.safety.constraints import problems, restore_order, spec_problems
from cli_ai.safety.guard import Guard, rollback
from cli_ai.safety.journal import Journal
from cli_ai.tactician.backends.simulated import SimulatedBackend
from tests.conftest import needs_netns, run_cli
from tests.security.sandbox import sandbox

MIB = 1 << 20
PAIR = "vm.dirty_ratio and vm.dirty_bytes"


class Kernel(SimulatedBackend):
    """The simulated backend, journaled like sysctl, refusing what the kernel
    refuses: vm.dirty_bytes below two pages (so 0), vm.dirty_background_bytes 0."""

    changes_machine = True

    def __init__(self, values):
        minimum = {"vm.dirty_bytes": 2 * 4096, "vm.dirty_background_bytes": 1}
        super().__init__(values, refuse=lambda n, v: "Invalid argument" if v < minimum.get(n, 0) else None)


def _spec(tmp_path, *params, name="spec.json"):
    ranges = {"vm.dirty_ratio": (5, 30), "vm.dirty_bytes": (16 * MIB, 512 * MIB),
              "vm.dirty_background_ratio": (1, 4), "vm.dirty_background_bytes": (4 * MIB, 64 * MIB)}
    spec = {"workload_name": "writeback", "reward_metric": "score", "benchmark_command": "true",
            "action_space": [{"param": p, "type": "int", "min": ranges[p][0], "max": ranges[p][1]} for p in params],
            "training_config": {"algorithm": "random", "budget": 6, "seed": 1}}
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def test_the_rule_names_the_pair_and_the_fix():
    errors, _ = spec_problems({"vm.dirty_ratio": (5, 30), "vm.dirty_bytes": (16 * MIB, 32 * MIB)})
    assert len(errors) == 1 and errors[0].startswith(PAIR + ": a spec may tune at most one of the pair")
    assert "drop one of them from action_space" in errors[0]
    assert spec_problems({"vm.dirty_bytes": (16 * MIB, 32 * MIB), "vm.dirty_background_ratio": (1, 5)})[0] == []
    assert problems({"vm.dirty_bytes": 64 * MIB, "vm.dirty_ratio": 10}) == [
        f"{PAIR} are set together: the kernel zeroes vm.dirty_ratio when vm.dirty_bytes is written, and "
        "vm.dirty_bytes when vm.dirty_ratio is; keep only one of the pair"]
    # A machine on dirty_bytes reads dirty_ratio as 0: the background rule does not apply to that 0.
    assert problems({"vm.dirty_background_ratio": 10, "vm.dirty_ratio": 0}) == []
    assert problems({"vm.dirty_background_ratio": 10, "vm.dirty_ratio": 5}) != []


def test_validate_refuses_both_twins_of_either_pair(tmp_path):
    for pair in (("vm.dirty_ratio", "vm.dirty_bytes"), ("vm.dirty_background_bytes", "vm.dirty_background_ratio")):
        r = run_cli("validate", _spec(tmp_path, *pair))
        assert r.returncode == 3, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "a spec may tune at most one of the pair" in lines[0], r.stderr
        assert " and ".join(sorted(pair, key=lambda p: "bytes" in p)) in lines[0]
    r = run_cli("validate", _spec(tmp_path, "vm.dirty_bytes", "vm.dirty_background_bytes"))
    assert r.returncode == 0, r.stderr


@pytest.fixture
def both_result(tmp_path):
    """A dry run's result tuning vm.dirty_bytes, with vm.dirty_ratio added to its best configuration."""
    r = run_cli("tune", _spec(tmp_path, "vm.dirty_bytes"), "--dry-run", "--yes", "--json",
                "--output-dir", tmp_path / "runs")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["baseline_config"]["vm.dirty_bytes"] >= 0
    result["best_config"]["vm.dirty_ratio"] = 15
    path = tmp_path / "both.json"
    path.write_text(json.dumps(result))
    return path


def test_export_refuses_a_result_with_both_twins(both_result):
    r = run_cli("export", both_result)
    assert r.returncode == 3 and r.stdout == ""
    assert f"{PAIR} are set together" in r.stderr and "keep only one of the pair" in r.stderr


@needs_netns
def test_apply_refuses_a_result_with_both_twins(both_result, tmp_path):
    v = sandbox(f'$CLI apply "{both_result}" --allow-simulated --yes > "$TMP/out" 2> "$TMP/err"; echo @rc=$?\n'
                "echo @ratio=$(cat /proc/sys/vm/dirty_ratio) @bytes=$(cat /proc/sys/vm/dirty_bytes)\n",
                tmp_path, CLI_AI_STATE_DIR=str(tmp_path / "state"))
    err = (tmp_path / "err").read_text()
    assert v["rc"] == "3", err + v["_stderr"]
    assert f"{PAIR} are set together" in err
    assert not (tmp_path / "state" / "journal.json").exists() and not (tmp_path / "state" / "applied.json").exists()


def test_the_simulated_kernel_zeroes_the_twin():
    k = Kernel({"vm.dirty_ratio": 20, "vm.dirty_bytes": 0})
    k.write({"vm.dirty_bytes": 64 * MIB})
    assert k.values == {"vm.dirty_ratio": 0, "vm.dirty_bytes": 64 * MIB}
    k.write({"vm.dirty_ratio": 10})
    assert k.values == {"vm.dirty_ratio": 10, "vm.dirty_bytes": 0}
    with pytest.raises(BackendWriteError, match="vm.dirty_bytes: Invalid argument"):
        k.write({"vm.dirty_bytes": 0})
    assert restore_order({"vm.dirty_ratio": 20, "vm.dirty_bytes": 0}) == (["vm.dirty_ratio"], ["vm.dirty_bytes"])
    assert restore_order({"vm.dirty_ratio": 0, "vm.dirty_bytes": 8 * MIB}) == (["vm.dirty_bytes"], ["vm.dirty_ratio"])


@pytest.mark.parametrize("original, tuned", [
    ({"vm.dirty_ratio": 20, "vm.dirty_bytes": 0}, {"vm.dirty_bytes": 256 * MIB}),  # the default: the ratio is set
    ({"vm.dirty_ratio": 0, "vm.dirty_bytes": 256 * MIB}, {"vm.dirty_ratio": 30}),  # an admin set the bytes
    ({"vm.dirty_background_ratio": 10, "vm.dirty_background_bytes": 0}, {"vm.dirty_background_bytes": 8 * MIB}),
])
def test_the_guard_restores_the_twin_the_kernel_zeroed(original, tuned):
    kernel = Kernel({**original, "vm.swappiness": 60})
    with Guard(kernel, [*tuned, "vm.swappiness"]) as guard:
        assert json.loads(Journal().path.read_text())["originals"] == {**original, "vm.swappiness": 60}
        guard.apply({**tuned, "vm.swappiness": 10})
        assert kernel.values != {**original, "vm.swappiness": 60}
        twin = next(n for n in original if n not in tuned)
        with pytest.raises(Exception, match="not journaled"):
            guard.apply({twin: 5})  # journaled for the restore, never tuned
    assert kernel.values == {**original, "vm.swappiness": 60}
    assert not Journal().exists()


def test_rollback_after_a_crash_restores_the_twin_the_kernel_zeroed():
    original = {"vm.dirty_ratio": 0, "vm.dirty_bytes": 256 * MIB}
    kernel = Kernel(dict(original))
    guard = Guard(kernel, ["vm.dirty_ratio"], install_signal_handlers=False)
    guard.__enter__()
    guard.apply({"vm.dirty_ratio": 25})
    guard.lock.release()  # the process dies here (kill -9): the kernel drops its lock, the journal stays
    assert kernel.values == {"vm.dirty_ratio": 25, "vm.dirty_bytes": 0}
    outcome = rollback(backend=kernel)
    assert not outcome.failures, outcome.failures
    assert kernel.values == original
    assert outcome.restored == {"vm.dirty_bytes": (0, 256 * MIB), "vm.dirty_ratio": (25, 0)}
    assert not Journal().exists()


def test_a_journal_with_a_zeroed_twin_is_restored_without_asking():
    """vm.dirty_ratio reads 0 while vm.dirty_bytes is set: that 0 is the
    machine's own state, not a value outside the safe range to confirm."""
    from cli_ai.safety.journal import JournalRecord
    from cli_ai.safety.journal_check import check_originals

    record = JournalRecord(backend={"kind": "sysctl", "config": {"root": "/proc/sys"}},
                           originals={"vm.dirty_ratio": 0, "vm.dirty_bytes": 256 * MIB}, pid=999999)
    assert check_originals(record, "journal.json") == []
    record.originals["vm.swappiness"] = 0
    record.originals["vm.dirty_expire_centisecs"] = 0
    assert [o.split(":")[0] for o in check_originals(record, "journal.json")] == ["vm.dirty_expire_centisecs"]
