"""The catalogue's knowledge (issue 16 item 1) is complete and consistent, and
the capacity probes that measure limit knobs really move with them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cli_ai.safety.catalog import CATALOG_FILE
from cli_ai.strategist.planning import load_templates
from cli_ai.strategist.relevance import PROBE_IDS, benchmark_id
from cli_ai.tactician.probes import RESOURCES
from tests.conftest import needs_netns

DIRECTIONS = {"raise", "lower", "either"}


def catalogue() -> dict:
    return json.loads(CATALOG_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("section", ["sysctl", "mosquitto"])
def test_every_entry_has_knowledge(section):
    table = set(load_templates()[1]) | ({"mqtt"} if section == "mosquitto" else set())
    for name, raw in catalogue()[section].items():
        k = raw.get("knowledge")
        assert isinstance(k, dict), f"{name}: no knowledge"
        for key in ("symptoms", "workloads", "tools"):
            assert isinstance(k.get(key), list) and all(isinstance(x, str) and x for x in k[key]), (name, key)
        assert k["symptoms"], f"{name}: no symptoms to search by"
        for bid, direction in k["moves"].items():
            assert bid in table, f"{name}: moves unknown benchmark {bid}"
            assert direction in DIRECTIONS, (name, bid, direction)


def test_every_probe_benchmark_names_a_real_probe():
    table = load_templates()[1]
    probes = {bid: b for bid, b in table.items() if b["runner"] == "probe"}
    assert set(probes) == set(PROBE_IDS.values())
    for bid, b in probes.items():
        spec = {"benchmark": {"runner": "probe", "args": b["args"]}}
        assert benchmark_id(spec) == bid
        assert b["args"][1] in RESOURCES


def probe(*args: str) -> dict:
    cmd = [sys.executable, "-m", "cli_ai", "bench", "probe", *args, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_maps_probe_gets_what_it_asks_for_below_the_limit():
    r = probe("--resource", "maps", "--count", "2000")
    assert r["obtained"] == 2000 and r["fraction"] == 1.0 and r["stopped_by"] == ""


def test_inotify_instances_probe_stops_below_the_limit():
    with open("/proc/sys/fs/inotify/max_user_instances") as f:
        limit = int(f.read())
    r = probe("--resource", "inotify-instances", "--count", str(limit + 50))
    # a reserve is left for other programs of this user (which also hold some)
    assert 0 < r["obtained"] < limit
    assert r["stopped_by"].startswith("reserve") or r["stopped_by"] == "EMFILE"


@needs_netns
@pytest.mark.parametrize("keepalive_time", [60, 7200])
def test_keepalive_probe_moves_with_the_knob_in_a_private_netns(keepalive_time):
    """net.ipv4.tcp_keepalive_time is per network namespace: written inside
    `unshare -n`, the probe in that namespace sees it; the host is untouched."""
    script = (f"ip link set lo up && echo {keepalive_time} > /proc/sys/net/ipv4/tcp_keepalive_time && "
              f"exec {sys.executable} -m cli_ai bench probe --resource keepalive --count 300 --json")
    host_before = open("/proc/sys/net/ipv4/tcp_keepalive_time").read()
    out = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["obtained"] == max(0, 300 - keepalive_time)
    assert open("/proc/sys/net/ipv4/tcp_keepalive_time").read() == host_before


def test_probe_rejects_bad_input():
    out = subprocess.run([sys.executable, "-m", "cli_ai", "bench", "probe", "--resource", "disks", "--count", "5"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--resource" in out.stderr
