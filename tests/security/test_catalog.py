"""The catalogue's bounds are safe operating bounds, and names that open
routing, forwarding, redirects, source routing, rp_filter, ptrace, kexec,
sysrq or unprivileged BPF stay refused, even if someone adds them to the
catalogue and whatever their spelling."""

from __future__ import annotations

import json

import pytest

from cli_ai.errors import SafetyError
from cli_ai.safety import check as safety_check
from cli_ai.safety.catalog import CATALOG_FILE, CatalogEntry
from cli_ai.safety.check import check_spec
from cli_ai.spec import spec_from_dict
from tests.conftest import run_cli


def _spec(param, lo=0, hi=1, type_="int"):
    return spec_from_dict({
        "workload_name": "attack", "benchmark_command": "sysbench cpu run", "reward_metric": "events_per_second",
        "action_space": [{"param": param, "type": type_, "min": lo, "max": hi}],
    })


DANGEROUS = [
    "net.ipv4.ip_forward", "net/ipv4/ip_forward", "NET.IPV4.IP_FORWARD", "/proc/sys/net/ipv4/ip_forward",
    "net.ipv4.conf.all.forwarding", "net.ipv4.conf.eth0.forwarding", "net/ipv4/conf/default/forwarding",
    "net.ipv6.conf.all.forwarding", "net.ipv6.conf.lo.forwarding", "net.IPv6.conf.all.Forwarding",
    "net.ipv4.conf.all.accept_redirects", "net.ipv6.conf.default.accept_redirects",
    "net.ipv4.conf.all.send_redirects", "net.ipv4.conf.all.secure_redirects",
    "net.ipv4.conf.all.accept_source_route", "net.ipv6.conf.all.accept_source_route",
    "net.ipv4.conf.all.rp_filter", "net/ipv4/conf/eth0/rp_filter",
    "net.ipv4.conf.all.route_localnet", "net.ipv4.conf.all.proxy_arp", "net.ipv6.conf.all.accept_ra",
    "kernel.yama.ptrace_scope", "kernel/yama/ptrace_scope", "Kernel.Yama.Ptrace_Scope",
    "kernel.kexec_load_disabled", "kernel.kexec_load_limit_reboot",
    "kernel.sysrq", "KERNEL/SYSRQ",
    "kernel.unprivileged_bpf_disabled", "kernel/unprivileged_bpf_disabled", "net.core.bpf_jit_harden",
    "kernel.randomize_va_space", "fs.protected_symlinks", "vm.mmap_min_addr", "kernel.core_pattern",
]


@pytest.mark.parametrize("name", DANGEROUS)
def test_dangerous_names_stay_refused_even_when_catalogued(name, monkeypatch):
    """As if someone had added the name to the catalogue: the deny-list wins."""
    entry = CatalogEntry(name=name, type="int", description="planted", source="attacker", min=0, max=1)
    monkeypatch.setattr(safety_check, "lookup", lambda n: entry)
    with pytest.raises(SafetyError) as info:
        check_spec(_spec(name))
    assert "is never tuned by cli-ai" in str(info.value), info.value.problems


def test_validate_refuses_a_slash_spelled_forwarding_name(write_spec):
    spec = write_spec({"workload_name": "attack", "benchmark_command": "sysbench cpu run",
                       "reward_metric": "events_per_second",
                       "action_space": [{"param": "net/ipv4/conf/all/forwarding", "type": "int", "min": 0, "max": 1}]})
    r = run_cli("validate", spec)
    assert r.returncode == 3
    assert "never tuned by cli-ai: it turns the machine into a router" in r.stderr


def test_file_max_is_bounded_below_the_kernel_range():
    with pytest.raises(SafetyError, match="exceeds the safe maximum"):
        check_spec(_spec("fs.file-max", 1048576, 2**63 - 1))
    with pytest.raises(SafetyError, match="exceeds the safe maximum"):
        check_spec(_spec("fs.nr_open", 1048576, 1073741816))


def test_every_bound_is_finite_sane_and_sourced():
    """No int bound reaches the kernel's 64-bit range; every entry names where
    its range comes from."""
    sysctls = json.loads(CATALOG_FILE.read_text())["sysctl"]
    for name, entry in sysctls.items():
        assert entry.get("source"), name
        highs = [entry["max"]] if "max" in entry else [e["max"] for e in entry.get("elements", [])]
        for hi in highs:
            assert hi <= 2**32 - 1, (name, hi)
        assert safety_check.denied_reason(name) is None, name
