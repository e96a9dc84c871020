"""Safety: the catalogue, range checks, refused names, kernel presence and
shell syntax, asserted through the real `cli-ai validate` process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cli_ai.errors import SafetyError
from cli_ai.safety.catalog import load_catalog
from cli_ai.safety.check import check_spec, param_name_problem, plan_command, shell_syntax_in
from cli_ai.spec import spec_from_dict
from tests.conftest import EXAMPLES, run_cli


def spec_with(knobs, command="pgbench -T 5 db"):
    return {"workload_name": "t", "reward_metric": "tps", "benchmark_command": command, "action_space": knobs}


# ----------------------------------------------------------------- catalogue


def test_catalogue_is_broad_and_complete():
    cat = load_catalog()
    assert len(cat) >= 40
    prefixes = {name.rsplit(".", 1)[0].split(".")[0] + "." + name.split(".")[1] if name.startswith("net.") else name.split(".")[0] for name in cat}
    for needed in ("net.core", "net.ipv4", "vm", "kernel", "fs"):
        assert needed in prefixes
    for entry in cat.values():
        assert entry.description and entry.source
        assert entry.type in ("int", "float", "bool", "enum", "vector")
        if entry.type in ("int", "float"):
            assert entry.min is not None and entry.max is not None and entry.min < entry.max
        if entry.type == "enum":
            assert entry.values
        if entry.type == "vector":
            assert entry.elements and all(e.min <= e.max for e in entry.elements)


def test_every_seed_example_param_is_catalogued():
    for name in ("postgresql_oltp.json", "nginx_high_concurrency.json", "cpu_intensive.json"):
        for knob in json.loads((EXAMPLES / name).read_text())["action_space"]:
            assert knob["param"] in load_catalog(), knob["param"]


def test_catalogue_netns_flags_match_this_kernel():
    """A param marked per-namespace must be writable inside a fresh network namespace."""
    import subprocess

    from tests.conftest import can_unshare_net

    if not can_unshare_net():
        pytest.skip("needs unshare -n")
    netns = [e.name for e in load_catalog().values() if e.netns and os.path.exists("/proc/sys/" + e.name.replace(".", "/"))]
    paths = " ".join("/proc/sys/" + n.replace(".", "/") for n in netns)
    out = subprocess.run(["unshare", "-n", "sh", "-c", f"for p in {paths}; do [ -w $p ] && echo ok $p || echo ro $p; done"],
                         capture_output=True, text=True).stdout.split("\n")
    assert not [line for line in out if line.startswith("ro")]


# ----------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("../../etc/passwd", "is a path"),
        ("kernel/core_pattern", "never tuned"),
        ("kernel.core_pattern", "never tuned"),
        ("kernel.modprobe", "never tuned"),
        ("vm.swappiness\n", "NUL or newline"),
        ("vm.swap\x00piness", "NUL or newline"),
        ("kernel.usermodehelper.bset", "never tuned"),
        ("Vm Swappiness", "not a valid sysctl name"),
    ],
)
def test_refused_names(name, fragment):
    assert fragment in param_name_problem(name)


def test_uncatalogued_param_refused():
    spec = spec_from_dict(spec_with([{"param": "net.ipv4.tcp_ecn", "min": 0, "max": 2}]))
    with pytest.raises(SafetyError, match="not in the safety catalogue"):
        check_spec(spec)


# ----------------------------------------------------------------- ranges


def test_range_above_safe_max_refused_then_clamped():
    spec = spec_from_dict(spec_with([{"param": "vm.dirty_ratio", "min": 5, "max": 95, "type": "int"}]))
    with pytest.raises(SafetyError) as exc:
        check_spec(spec)
    line = exc.value.problems[0]
    assert "action_space[0].max: 95 exceeds the safe maximum 40 for vm.dirty_ratio" in line
    assert "--clamp" in line
    report = check_spec(spec, clamp=True)
    assert (report.knobs[0].min, report.knobs[0].max) == (5, 40)
    assert report.notes == ["--clamp narrowed vm.dirty_ratio from 5..95 to 5..40"]


def test_range_entirely_outside_cannot_be_clamped():
    spec = spec_from_dict(spec_with([{"param": "vm.dirty_ratio", "min": 60, "max": 95}]))
    with pytest.raises(SafetyError, match="entirely outside"):
        check_spec(spec, clamp=True)


def test_vector_elements_checked_one_by_one():
    knob = {"param": "net.ipv4.tcp_rmem", "type": "vector",
            "elements": [{"min": 4096, "max": 4096}, {"min": 87380, "max": 87380}, {"min": 1048576, "max": 999999999}]}
    spec = spec_from_dict(spec_with([knob]))
    with pytest.raises(SafetyError, match=r"elements\[2\]\.max: 999999999 exceeds the safe maximum 134217728"):
        check_spec(spec)
    as_int = spec_from_dict(spec_with([{"param": "net.ipv4.tcp_rmem", "min": 1, "max": 10}]))
    with pytest.raises(SafetyError, match='use type "vector"'):
        check_spec(as_int)


def test_enum_values_and_bool_as_int():
    spec = spec_from_dict(spec_with([
        {"param": "net.ipv4.tcp_congestion_control", "type": "enum", "values": ["cubic", "vegas"]},
    ]))
    with pytest.raises(SafetyError, match="vegas not allowed"):
        check_spec(spec)
    ok = spec_from_dict(spec_with([{"param": "net.ipv4.tcp_sack", "type": "int", "min": 0, "max": 1}]))
    assert check_spec(ok).knobs[0].max == 1


def test_missing_on_this_kernel_is_reported_clearly():
    spec = spec_from_dict(spec_with([{"param": "kernel.sched_min_granularity_ns", "min": 100000, "max": 10000000}]))
    with pytest.raises(SafetyError) as exc:
        check_spec(spec, exists=lambda name: False, kernel_release="6.1.0")
    assert "does not exist on this kernel (6.1.0)" in exc.value.problems[0]
    assert "removed in Linux 5.13" in exc.value.problems[0]


# ----------------------------------------------------------------- commands


@pytest.mark.parametrize(
    "command, syntax",
    [
        ("pgbench -T 5 db; rm -rf /tmp/x", ";"),
        ("pgbench -T 5 db | tee log", "|"),
        ("pgbench -T 5 db && echo hi", "&&"),
        ("echo $(id)", "$("),
        ("echo `id`", "`"),
        ("pgbench > out.txt", ">"),
        ("pgbench -T $SECS db", "$VAR"),
        ("sleep 1 &", "&"),
    ],
)
def test_shell_syntax_detected(command, syntax):
    assert syntax in shell_syntax_in(command)
    with pytest.raises(SafetyError, match="--allow-shell"):
        plan_command(command)
    plan = plan_command(command, allow_shell=True)
    assert plan.shell and plan.argv[:2] == ("/bin/sh", "-c")


@pytest.mark.parametrize(
    "command, argv",
    [
        ("pgbench -c 50 -j 4 -T 30 testdb 2>&1", ("pgbench", "-c", "50", "-j", "4", "-T", "30", "testdb")),
        ("wrk -t12 -c400 -d30s http://localhost:80/", ("wrk", "-t12", "-c400", "-d30s", "http://localhost:80/")),
        ("sysbench cpu --time=30 run 2>&1", ("sysbench", "cpu", "--time=30", "run")),
        ("fio --name='a;b' --size=1m", ("fio", "--name=a;b", "--size=1m")),
    ],
)
def test_plain_commands_run_as_argv(command, argv):
    plan = plan_command(command)
    assert not plan.shell and plan.argv == argv


# ----------------------------------------------------------------- through the CLI


def test_cli_validate_exit_codes(write_spec):
    r = run_cli("validate", write_spec(spec_with([{"param": "vm.dirty_ratio", "min": 5, "max": 95, "type": "int"}])))
    assert r.returncode == 3
    assert "safe maximum 40" in r.stderr and "Traceback" not in r.stderr

    r = run_cli("validate", write_spec(spec_with([{"param": "../../etc/passwd", "min": 1, "max": 2}])))
    assert r.returncode == 3 and "is a path" in r.stderr

    r = run_cli("validate", write_spec('{\n  "workload_name": "x",,\n}'))
    assert r.returncode == 2 and "line 2, column 24" in r.stderr

    r = run_cli("validate", write_spec(spec_with([{"param": "vm.swappiness", "min": 0, "max": 10}],
                                                 command="pgbench -T 5 db; rm -rf /tmp/x")))
    assert r.returncode == 3 and "shell syntax" in r.stderr and "--allow-shell" in r.stderr

    r = run_cli("validate", "--clamp", write_spec(spec_with([{"param": "vm.dirty_ratio", "min": 5, "max": 95}])))
    assert r.returncode == 0 and "narrowed vm.dirty_ratio from 5..95 to 5..40" in r.stderr

    r = run_cli("validate", "--allow-shell", write_spec(spec_with([{"param": "vm.swappiness", "min": 0, "max": 10}],
                                                                  command="pgbench -T 5 db | tee x")))
    assert r.returncode == 0


def test_cli_validate_every_example():
    from cli_ai.tactician.backends.sysctl import SysctlBackend

    backend = SysctlBackend()
    for path in sorted(EXAMPLES.glob("*.json")):
        data = json.loads(path.read_text())
        r = run_cli("validate", path)
        lacking = [k["param"] for k in data["action_space"]
                   if data.get("target", "sysctl") == "sysctl" and not backend.exists(k["param"])]
        if lacking:
            assert r.returncode == 3, (path, r.stderr)
            for name in lacking:
                assert f"{name} does not exist on this kernel" in r.stderr
        else:
            assert r.returncode == 0, (path, r.stderr)


def test_params_lists_catalogue_with_current_values():
    r = run_cli("params", "--json")
    assert r.returncode == 0
    rows = json.loads(r.stdout)
    by_name = {row["name"]: row for row in rows}
    assert len(rows) >= 40
    swappiness = Path("/proc/sys/vm/swappiness").read_text().strip()
    assert by_name["vm.swappiness"]["current"] == swappiness
    assert by_name["vm.dirty_ratio"]["safe_range"] == "1..40"
    r = run_cli("params", "somaxconn")
    assert r.returncode == 0 and "net.core.somaxconn" in r.stdout and "vm.swappiness" not in r.stdout
