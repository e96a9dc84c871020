"""The capacity probes (`cli-ai bench probe`): they move with the knob they
measure, leave a reserve for other programs, give back what they took when
stopped, sweep what a killed probe left, and refuse bad arguments everywhere
a spec is read. Limits are changed only inside private IPC namespaces
(`unshare -i`: kernel.sem, kernel.shmmni and kernel.msgmnb are per namespace)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from cli_ai.spec.builtin import PROBE_RESOURCES, parse_probe_args
from cli_ai.strategist.relevance import benchmark_id
from cli_ai.tactician.probes import ceiling

PY = sys.executable
needs_ipcns = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare")
    or subprocess.run(["unshare", "-i", "true"], capture_output=True).returncode != 0,
    reason="needs root and unshare -i")


def in_ipc_namespace(script: str, timeout: float = 120) -> str:
    out = subprocess.run(["unshare", "-i", "sh", "-c", script], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


def probe_json(resource: str, count: int) -> str:
    return f"{PY} -m cli_ai bench probe --resource {resource} --count {count} --json"


@needs_ipcns
@pytest.mark.parametrize("knob, value_a, value_b, resource", [
    ("kernel/sem", "250 32000 32 20", "250 32000 32 40", "semaphores"),
    ("kernel/shmmni", "20", "40", "shm-segments"),
    ("kernel/msgmnb", "8192", "32768", "msg-queue"),
])
def test_a_system_v_probe_moves_with_its_knob(knob, value_a, value_b, resource):
    host = open(f"/proc/sys/{knob}").read()
    out = in_ipc_namespace(
        f'echo "{value_a}" > /proc/sys/{knob} && {probe_json(resource, 1000)} && '
        f'echo "{value_b}" > /proc/sys/{knob} && {probe_json(resource, 1000)}')
    low, high = (json.loads(chunk) for chunk in out.replace("}\n{", "}\x00{").split("\x00"))
    assert 0 < low["obtained"] < high["obtained"] <= 1000
    assert open(f"/proc/sys/{knob}").read() == host  # the host's namespace is untouched


@needs_ipcns
def test_a_probe_sweeps_what_a_killed_probe_left():
    """System V objects outlive their process: a probe names its own with keys
    of its own, and the next probe removes any it finds."""
    leave = textwrap.dedent(f"""
        import ctypes
        from cli_ai.tactician.probes.ipc import KEY_BASE, IPC_CREAT
        libc = ctypes.CDLL("libc.so.6")
        for i in range(5):
            assert libc.semget(KEY_BASE + 1000 + i, 17, IPC_CREAT | 0o600) >= 0
    """)
    count = "tail -n +2 /proc/sysvipc/sem | wc -l"  # a fresh IPC namespace holds only these
    out = in_ipc_namespace(f"{PY} -c '{leave}' && {count} && {probe_json('semaphores', 3)} >/dev/null && {count}")
    before, after = out.split()
    assert (before, after) == ("5", "0")


def test_sigterm_unwinds_a_probe_so_it_gives_back_what_it_holds(tmp_path):
    """A benchmark timeout SIGTERMs the probe: its temporary tree goes too."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([PY, "-m", "cli_ai", "bench", "probe", "--resource", "inotify-watches", "--count",
                             "150000"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and not any(tmp_path.iterdir()):
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the tree's creation
    assert any(tmp_path.iterdir()), "the probe never started its tree"
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert list(tmp_path.iterdir()) == []


def test_a_shared_resource_probe_leaves_a_reserve():
    cap, reserve = ceiling("pids")
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    assert 0 < cap <= pid_max - reserve and reserve > 0
    out = subprocess.run([PY, "-m", "cli_ai", "bench", "probe", "--resource", "pids", "--count", "300", "--json"],
                         capture_output=True, text=True, timeout=60)
    r = json.loads(out.stdout)
    assert r["obtained"] == 300 and r["stopped_by"] == ""
    assert ceiling("maps") is None  # a process's own: no one else to leave room for


@pytest.mark.parametrize("args, fragment", [
    (["--resource", "forkbomb", "--count", "5"], "--resource must be one of"),
    (["--resource", "pids", "--count", "99999999"], "from 1 to 1048576"),
    (["--resource", "pids", "--count", "-5"], "whole number"),
    (["--resource", "pids", "--count", "²"], "whole number"),
    (["--resource", "maps", "--count", "300", "--resource", "keepalive"], "given twice"),
    (["--resource", "maps", "--count", "3", "--json"], "is not one of --resource, --count"),
    ([], "--resource must be one of"),
    (["--resource", "pipe-size", "--count", "1"], "from 4 to"),
])
def test_bad_probe_args_are_refused_by_validate(tmp_path, args, fragment):
    spec = {"workload_name": "probe", "target": "sysctl", "reward_metric": "obtained",
            "benchmark": {"runner": "probe", "args": args},
            "action_space": [{"param": "kernel.pid_max", "type": "int", "min": 32768, "max": 65536}]}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    out = subprocess.run([PY, "-m", "cli_ai", "validate", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and fragment in out.stderr, out.stderr
    assert parse_probe_args(args)[2]  # the same parser the policy and the relevance check use
    assert benchmark_id(spec) is None  # a probe cli-ai would not run is not judged to measure anything


def test_every_resource_has_a_probe_and_a_unit():
    from cli_ai.tactician.probes import PROBES

    assert set(PROBES) == set(PROBE_RESOURCES)
    assert all(r.unit and r.max_count >= r.min_count >= 1 for r in PROBE_RESOURCES.values())
