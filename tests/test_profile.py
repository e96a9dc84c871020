"""The system profile: real gathering on this machine, a fake /proc + /sys tree,
and missing sources that must never break planning."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time

import pytest

from cli_ai.safety.catalog import load_catalog
from cli_ai.strategist.profile import Disk, NetInterface, SystemProfile, gather_profile, running_services


def _write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _exe(path) -> None:
    _write(path, "#!/bin/sh\nexit 0\n")
    path.chmod(0o755)


@pytest.fixture
def fake_tree(tmp_path):
    proc, sys_, etc, bin_ = tmp_path / "proc", tmp_path / "sys", tmp_path / "etc", tmp_path / "bin"
    _write(
        proc / "cpuinfo",
        "processor\t: 0\nmodel name\t: Test CPU 9000 @ 3.00GHz\n\nprocessor\t: 1\nmodel name\t: Test CPU 9000 @ 3.00GHz\n\n"
        "processor\t: 2\nmodel name\t: Test CPU 9000 @ 3.00GHz\n\nprocessor\t: 3\nmodel name\t: Test CPU 9000 @ 3.00GHz\n",
    )
    _write(proc / "meminfo", "MemTotal:       16384000 kB\nMemFree:         1000 kB\nSwapTotal:       2048000 kB\n")
    # a /proc/sys with only two catalogue entries present
    _write(proc / "sys" / "vm" / "swappiness", "60\n")
    _write(proc / "sys" / "net" / "core" / "somaxconn", "4096\n")
    _write(proc / "sys" / "net" / "ipv4" / "tcp_available_congestion_control", "reno cubic\n")
    _write(sys_ / "block" / "sda" / "queue" / "rotational", "1\n")
    _write(sys_ / "block" / "sda" / "size", "1953525168\n")
    _write(sys_ / "block" / "nvme0n1" / "queue" / "rotational", "0\n")
    _write(sys_ / "block" / "nvme0n1" / "size", "0\n")
    _write(sys_ / "block" / "loop0" / "queue" / "rotational", "0\n")
    _write(sys_ / "block" / "vdb" / "size", "2048\n")  # no queue/rotational: unknown
    _write(sys_ / "class" / "net" / "eth0" / "speed", "10000\n")
    _write(sys_ / "class" / "net" / "eth0" / "operstate", "up\n")
    _write(sys_ / "class" / "net" / "eth1" / "speed", "-1\n")
    _write(sys_ / "class" / "net" / "eth1" / "operstate", "down\n")
    (sys_ / "class" / "net" / "wlan0").mkdir(parents=True)  # speed missing entirely
    _write(sys_ / "class" / "net" / "lo" / "speed", "0\n")
    (sys_ / "devices" / "system" / "node" / "node0").mkdir(parents=True)
    (sys_ / "devices" / "system" / "node" / "node1").mkdir(parents=True)
    _write(etc / "os-release", 'NAME="Testix"\nPRETTY_NAME="Testix Linux 42 (answer)"\n')
    for name in ("pgbench", "fio", "nginx", "redis-server"):
        _exe(bin_ / name)
    return dict(proc_root=str(proc), sys_root=str(sys_), etc_root=str(etc), path=str(bin_))


def test_fake_tree_is_read_field_by_field(fake_tree):
    p = gather_profile(**fake_tree, process_names=["bash", "postgres", "nginx", "redis-server"])
    assert p.cpu_count == 4
    assert p.cpu_model == "Test CPU 9000 @ 3.00GHz"
    assert p.memory_mb == 16000 and p.swap_mb == 2000
    assert p.distribution == "Testix Linux 42 (answer)"
    assert p.numa_nodes == 2
    disks = {d.name: d for d in p.disks}
    assert set(disks) == {"sda", "nvme0n1", "vdb"}  # loop devices are not disks
    assert disks["sda"].rotational is True and disks["sda"].size_gb == pytest.approx(1000.2, abs=0.1)
    assert disks["nvme0n1"].rotational is False and disks["nvme0n1"].size_gb is None
    assert disks["vdb"].rotational is None
    assert p.rotational_disks == ["sda"]
    nets = {n.name: n for n in p.interfaces}
    assert set(nets) == {"eth0", "eth1", "wlan0"}  # lo is skipped
    assert nets["eth0"].speed_mbps == 10000 and nets["eth0"].up is True
    assert nets["eth1"].speed_mbps is None and nets["eth1"].up is False  # -1 means unknown
    assert nets["wlan0"].speed_mbps is None
    assert p.services_running == ["nginx", "postgres", "redis"]
    assert p.services_installed == ["nginx", "redis"]
    assert p.benchmark_tools == ["pgbench", "fio"]
    assert p.congestion_controls == ["cubic", "reno"]
    # absent: every catalogue entry except the two files created
    assert set(p.absent_sysctls) == set(load_catalog()) - {"vm.swappiness", "net.core.somaxconn"}
    assert p.sysctl_present("vm.swappiness") is True
    assert p.sysctl_present("vm.dirty_ratio") is False


def test_missing_sources_leave_fields_empty(tmp_path):
    empty = tmp_path / "nothing"
    p = gather_profile(
        proc_root=str(empty / "proc"), sys_root=str(empty / "sys"), etc_root=str(empty / "etc"),
        path=str(empty / "bin"), process_names=[],
    )
    assert p.memory_mb is None and p.swap_mb is None
    assert p.disks == [] and p.interfaces == []
    assert p.distribution is None and p.numa_nodes is None
    assert p.services_running == [] and p.services_installed == [] and p.benchmark_tools == []
    assert p.absent_sysctls is None and p.sysctl_present("vm.swappiness") is None
    assert p.congestion_controls is None
    assert p.kernel == platform.release()
    assert "memory unknown" in "\n".join(p.summary_lines())


def test_unreadable_speed_file_is_unknown_not_an_error(tmp_path, fake_tree):
    # /sys/class/net/*/speed raises EINVAL for interfaces that are down; a directory stands in for it
    speed = tmp_path / "sys" / "class" / "net" / "eth9" / "speed"
    speed.mkdir(parents=True)
    p = gather_profile(**fake_tree, process_names=[])
    assert {n.name: n.speed_mbps for n in p.interfaces}["eth9"] is None


def test_real_machine_profile_is_small_and_json_round_trips():
    p = gather_profile()
    assert p.cpu_count and p.cpu_count >= 1
    assert p.memory_mb and p.memory_mb > 0
    assert p.kernel == platform.release()
    text = json.dumps(p.to_dict())
    assert len(text) < 20000
    back = SystemProfile.from_dict(json.loads(text))
    assert back == p
    assert all(isinstance(d, Disk) for d in back.disks)
    assert all(isinstance(n, NetInterface) for n in back.interfaces)
    if os.path.exists("/proc/sys/vm/swappiness"):
        assert p.absent_sysctls is not None and "vm.swappiness" not in p.absent_sysctls
    for d in p.disks:
        rot = f"/sys/block/{d.name}/queue/rotational"
        if os.path.exists(rot):
            assert d.rotational == (open(rot).read().strip() == "1")


def test_a_running_service_is_seen_by_its_process_name(tmp_path):
    """A copy of `sleep` named redis-server is, to psutil, a running Redis."""
    sleep = shutil.which("sleep")
    if not sleep:
        pytest.skip("no sleep binary")
    fake = tmp_path / "redis-server"
    shutil.copy(sleep, fake)
    fake.chmod(0o755)
    assert "redis" not in running_services(["bash"])
    proc = subprocess.Popen([str(fake), "30"])
    try:
        deadline = time.time() + 5
        seen = []
        while time.time() < deadline:
            seen = gather_profile().services_running
            if "redis" in seen:
                break
            time.sleep(0.05)
        assert "redis" in seen
    finally:
        proc.kill()
        proc.wait()


def test_summary_lines_describe_the_machine(fake_tree):
    p = gather_profile(**fake_tree, process_names=["postgres"])
    text = "\n".join(p.summary_lines())
    assert "4 CPUs (Test CPU 9000 @ 3.00GHz), 2 NUMA nodes" in text
    assert "sda (rotational" in text and "nvme0n1 (SSD/NVMe" in text
    assert "eth0 (10000 Mb/s)" in text
    assert "services running: postgres" in text
    assert "services installed, not running: nginx, redis" in text
    assert "benchmark tools on PATH: pgbench, fio" in text
