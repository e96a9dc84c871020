"""The arguments of cli-ai's own benchmarks (`runner: "tcp-accept"` and
`runner: "probe"`), read the same way by `validate`, the strategist's policy,
the relevance check and the probes themselves: options only, each at most
once, numbers as plain digits.

A probe takes something the whole machine shares (PIDs, file handles, IPC
ids), so each resource has a ceiling of its own here; the probe also leaves a
reserve below the kernel's current limit (tactician/probes.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cli_ai.spec.model import BUILTIN_RUNNERS


@dataclass(frozen=True)
class ProbeResource:
    name: str
    unit: str  # what --count counts
    max_count: int  # the most a spec may ask for
    min_count: int = 1


PROBE_RESOURCES = {r.name: r for r in (
    ProbeResource("maps", "memory areas", 2_097_152),
    ProbeResource("files", "file handles", 4_194_304),
    ProbeResource("inotify-watches", "watches (one temporary file each)", 1_048_576),
    ProbeResource("inotify-instances", "instances", 65_536),
    ProbeResource("pids", "threads", 1_048_576),
    ProbeResource("keepalive", "seconds of a firewall's idle timeout", 86_400),
    ProbeResource("dirs", "files in the temporary tree", 200_000),
    ProbeResource("semaphores", "semaphore sets of 17", 65_536),
    ProbeResource("shm-segments", "segments", 65_536),
    ProbeResource("msg-queue", "messages of 1 KiB", 1_048_576),
    ProbeResource("aio", "AIO events", 4_194_304),
    ProbeResource("udp-burst", "datagrams of 1 KiB", 1_000_000),
    ProbeResource("connect-timeout", "seconds a connect may wait", 86_400),
    ProbeResource("dead-peer", "seconds a dead peer may go unnoticed", 86_400),
    ProbeResource("pipe-size", "KiB of pipe buffer", 1_048_576, min_count=4),
)}
PROBE_OPTIONS = ("--resource", "--count")
TCP_ACCEPT_OPTIONS = ("--connections", "--concurrency", "--accept-delay-ms", "--timeout")
_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


def _options(where: str, runner: str, args: list[str], allowed: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """--name value / --name=value pairs; unknown or repeated options are problems."""
    values: dict[str, str] = {}
    problems: list[str] = []
    i = 0
    while i < len(args):
        name, eq, value = str(args[i]).partition("=")
        if name not in allowed:
            problems.append(f"{where}: {runner} option {args[i]!r} is not one of {', '.join(allowed)}")
            i += 1
            continue
        if not eq:
            i += 1
            value = str(args[i]) if i < len(args) else ""
        if name in values:
            problems.append(f"{where}: {runner} option {name} is given twice; give it once")
        values[name] = value
        i += 1
    return values, problems


def parse_probe_args(args: list[str], where: str = "benchmark.args") -> tuple[str | None, int | None, list[str]]:
    """(resource, count, problems) of a probe's args."""
    values, problems = _options(where, "probe", args, PROBE_OPTIONS)
    resource = values.get("--resource")
    if resource not in PROBE_RESOURCES:
        problems.append(f"{where}: probe --resource must be one of {', '.join(PROBE_RESOURCES)}")
        resource = None
    count_text = values.get("--count", "")
    count = int(count_text) if _DIGITS.fullmatch(count_text) else None
    limit = PROBE_RESOURCES[resource].max_count if resource else max(r.max_count for r in PROBE_RESOURCES.values())
    low = PROBE_RESOURCES[resource].min_count if resource else 1
    if count is None or not low <= count <= limit:
        what = f" ({PROBE_RESOURCES[resource].unit})" if resource else ""
        problems.append(f"{where}: probe --count needs a whole number from {low} to {limit}{what}, got {count_text!r}")
        count = None
    return resource, count, problems


def tcp_accept_problems(args: list[str], where: str = "benchmark.args") -> list[str]:
    values, problems = _options(where, "tcp-accept", args, TCP_ACCEPT_OPTIONS)
    for name, value in values.items():
        if not _NUMBER.fullmatch(value):
            problems.append(f"{where}: tcp-accept {name} needs a positive number, got {value!r}")
    return problems


def builtin_args_problems(runner: str, args: list[str], where: str = "benchmark.args") -> list[str]:
    """Why a built-in runner's args cannot run (empty: they can)."""
    if runner == "probe":
        return parse_probe_args(args, where)[2]
    if runner == "tcp-accept":
        return tcp_accept_problems(args, where)
    return []


__all__ = ["BUILTIN_RUNNERS", "PROBE_RESOURCES", "ProbeResource", "parse_probe_args", "tcp_accept_problems",
           "builtin_args_problems", "TCP_ACCEPT_OPTIONS"]
