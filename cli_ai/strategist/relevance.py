"""Can the plan's knobs move the plan's benchmark?

A knob that cannot move the benchmark turns every "gain" into noise: the
database template once tuned `vm.dirty_*` against `sysbench memory` on a
machine without PostgreSQL or fio. The catalogue says, for each knob, which
benchmarks its value can move (`knowledge.moves`, benchmark ids of the
strategist's benchmark table); this module names the benchmark a spec runs,
drops the knobs that cannot move it (with a note), and refuses a plan none of
whose knobs can, suggesting a benchmark that would measure them.

Every plan goes through it, the LLM's included. A `command` benchmark is the
person's own program: cli-ai cannot tell what it measures and says so.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from cli_ai.errors import BenchmarkCannotMeasure
from cli_ai.safety.catalog import CATALOG_FILE

PROBE_IDS = {
    "maps": "probe_maps", "files": "probe_files", "inotify-watches": "probe_inotify",
    "inotify-instances": "probe_inotify_instances", "pids": "probe_pids", "keepalive": "probe_keepalive",
    "dirs": "probe_dirs", "semaphores": "probe_sem", "shm-segments": "probe_shm", "msg-queue": "probe_msg",
    "aio": "probe_aio", "udp-burst": "probe_udp", "connect-timeout": "probe_connect_timeout",
    "dead-peer": "probe_dead_peer", "pipe-size": "probe_pipe_size",
}


def _args_of(bench: dict[str, Any]) -> list[str]:
    args = bench.get("args")
    if isinstance(args, list):
        return [str(a) for a in args]
    return []


def benchmark_id(spec_dict: dict[str, Any]) -> str | None:
    """The benchmark-table id of what this spec runs, or None when cli-ai cannot tell."""
    bench = spec_dict.get("benchmark") or {}
    runner = bench.get("runner")
    args = _args_of(bench)
    if runner is None and isinstance(spec_dict.get("benchmark_command"), str):
        import shlex

        try:
            argv = shlex.split(spec_dict["benchmark_command"])
        except ValueError:
            return None
        if not argv:
            return None
        runner, args = argv[0].rsplit("/", 1)[-1], argv[1:]
    if runner == "pgbench":
        return "pgbench"
    if runner == "wrk":
        joined = " ".join(args).lower()
        return "wrk_close" if "connection: close" in joined else "wrk"
    if runner == "redis-benchmark":
        return "redis"
    if runner == "tcp-accept":
        return "tcp_accept"
    if runner == "probe":
        from cli_ai.spec.builtin import parse_probe_args

        resource, _, problems = parse_probe_args(args)
        return None if problems or resource is None else PROBE_IDS.get(resource)
    if runner == "sysbench":
        mode = next((a for a in args if not a.startswith("-")), "")
        return {"cpu": "sysbench_cpu", "memory": "sysbench_memory"}.get(mode)
    if runner == "fio":
        rw = next((a.split("=", 1)[1] for a in args if a.startswith("--rw=")), "read")
        if rw in ("randwrite", "randrw", "rw"):
            return "fio_randwrite_sync"
        if rw == "write":
            return "fio_seqwrite"
        return "fio_seqread"
    return None


def _conditions() -> dict[str, dict[str, str]]:
    """param -> {benchmark id: the condition under which it moves it}."""
    import json

    data = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    return {name: dict((raw.get("knowledge") or {}).get("moves_when", {})) for name, raw in data.get("sysctl", {}).items()}


_CONDITIONS: dict[str, dict[str, str]] | None = None


def condition_notes(params: list[str], bid: str) -> list[str]:
    """What must hold for these params to move this benchmark (empty: nothing)."""
    global _CONDITIONS
    if _CONDITIONS is None:
        _CONDITIONS = _conditions()
    return [f"{p} moves {bid} only {_CONDITIONS[p][bid]}" for p in params if bid in _CONDITIONS.get(p, {})]


def _moves() -> dict[str, dict[str, str] | None]:
    """param -> {benchmark id: direction}, None for a param without knowledge."""
    import json

    data = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    out: dict[str, dict[str, str] | None] = {}
    for name, raw in data.get("sysctl", {}).items():
        k = raw.get("knowledge")
        out[name] = dict(k.get("moves", {})) if isinstance(k, dict) else None
    return out


_MOVES: dict[str, dict[str, str] | None] | None = None


def moves_of(param: str) -> dict[str, str] | None:
    global _MOVES
    if _MOVES is None:
        _MOVES = _moves()
    return _MOVES.get(param)


@dataclass
class Relevance:
    spec_dict: dict[str, Any]
    benchmark: str | None
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def suggest_benchmark(params: list[str]) -> str | None:
    """The benchmark id most of these params can move."""
    counts: dict[str, int] = {}
    for p in params:
        for b in (moves_of(p) or {}):
            counts[b] = counts.get(b, 0) + 1
    return max(sorted(counts), key=lambda b: counts[b]) if counts else None


def check_relevance(spec_dict: dict[str, Any], *, describe=None) -> Relevance:
    """Drop the knobs that cannot move the spec's benchmark; raise
    BenchmarkCannotMeasure when none can. `describe(bench_id)` names a
    benchmark for the suggestion (the strategist's table knows how to run it)."""
    bid = benchmark_id(spec_dict)
    knobs = list(spec_dict.get("action_space") or [])
    result = Relevance(spec_dict, bid)
    if bid is None:
        result.kept = [str(k.get("param")) for k in knobs]
        result.notes.append("benchmark relevance not checked: cli-ai cannot tell what this benchmark measures")
        return result
    kept_knobs = []
    for k in knobs:
        name = str(k.get("param"))
        moves = moves_of(name)
        if moves is None or bid in moves:
            kept_knobs.append(k)
            result.kept.append(name)
        else:
            result.dropped.append(name)
            result.notes.append(f"dropped {name}: it cannot move {bid}"
                                + (f" (it can move {', '.join(sorted(moves))})" if moves else
                                   " (no benchmark cli-ai runs measures it)"))
    if not kept_knobs:
        names = [str(k.get("param")) for k in knobs]
        better = suggest_benchmark(names)
        how = (describe(better) if describe and better else better) if better else None
        raise BenchmarkCannotMeasure(
            f"none of the planned knobs ({', '.join(names)}) can move the benchmark {bid}, so any gain would be noise; "
            + (f"measure them with {how}" if how else "no benchmark cli-ai runs measures them; "
               "write a spec with a benchmark of your own that does (target \"sysctl\", runner \"command\")"),
            params=tuple(names),
        )
    result.notes.extend(condition_notes(result.kept, bid))
    if result.dropped:
        new = copy.deepcopy(spec_dict)
        new["action_space"] = kept_knobs
        result.spec_dict = new
    return result


__all__ = ["benchmark_id", "check_relevance", "condition_notes", "suggest_benchmark", "moves_of", "Relevance", "PROBE_IDS"]
