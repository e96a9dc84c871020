"""The words sent to an LLM strategist: system rules, the goal with the machine
profile and the relevant catalogue entries, and the repair message."""

from __future__ import annotations

import copy
import json
from typing import Any

from cli_ai.safety.catalog import CatalogEntry, load_catalog
from cli_ai.spec.builtin import PROBE_RESOURCES
from cli_ai.strategist.policy import RUNNER_METRICS
from cli_ai.strategist.profile import SystemProfile

MAX_ANSWER_ECHO = 6000  # characters of a bad answer sent back for repair

SYSTEM_PROMPT = """\
You are the strategist of cli-ai, a Linux kernel tuner. From a person's goal and a \
profile of their machine you write a tuning spec: one JSON object that a \
reinforcement-learning tactician searches by setting sysctls and running a benchmark.

Rules (cli-ai checks every one of them and sends violations back to you):
1. Answer with the spec only: one JSON object, no prose around it. Put a short \
rationale (why these params, why this benchmark) in its "description" field.
2. "target" is "sysctl" for kernel settings. Tune 2 to 6 params, named exactly as in the \
SAFETY CATALOGUE below (the entries that match the goal; cli-ai refuses any other name), and \
never use one listed as absent on this kernel. For a Mosquitto MQTT broker, serverless \
autoscaling or request scheduling across replicas, answer only \
{"target": "mosquitto" | "autoscaling" | "scheduler", "description": ".."}: cli-ai loads its \
ready spec for that target.
3. Every range lies inside the catalogue's safe range (min >= safe min, max <= safe \
max) with min < max. Types: whole-number ranges are {"type": "int", "min": .., "max": ..}; \
0/1 flags are {"type": "bool"}; choices are {"type": "enum", "values": [..]} using listed \
values; multi-value params are {"type": "vector", "elements": [{"min": .., "max": ..}, ..]} \
with one range per field (min == max holds a field fixed). "scale": "log" suits ranges \
spanning orders of magnitude.
4. The benchmark is one of the runners below, written as \
"benchmark": {"runner": "<runner>", "args": ["..", ".."]} where args follow the program \
name. No shell: cli-ai runs one program with its arguments, never through a shell, so \
no ; | & > < $ ` and no second command. Prefer a runner whose tool the profile lists as \
installed and, for pgbench, wrk and redis-benchmark, whose server is running; otherwise \
use {"runner": "tcp-accept"} (cli-ai's built-in loopback TCP benchmark, no args) or sysbench. \
The benchmark must be one the params can move: each catalogue entry lists the benchmarks \
it moves (cli-ai drops a param that cannot move yours, and refuses a plan where none can). \
For limits (files, maps, inotify, pids, keepalive) use the built-in probe runner.
5. "reward_metric" is one of the runner's metrics named below (the first is the usual \
choice); "metric_direction" is "maximize".
6. Optionally set "training_config": {"algorithm": "auto", "budget": <benchmark runs, 10-100>}.
"""

RUNNER_GUIDE = {
    "pgbench": 'args like ["-c", "16", "-j", "4", "-T", "20", "testdb"] (never -i, -f or -l)',
    "wrk": 'args like ["-t4", "-c400", "-d20s", "http://127.0.0.1:80/"] (one http(s) URL; never -s)',
    "sysbench": 'args like ["cpu", "--threads=4", "--time=20", "run"] (built-in tests cpu, memory, threads, mutex, fileio, oltp_*; ends with run)',
    "redis-benchmark": 'args like ["-h", "127.0.0.1", "-p", "6379", "-q", "-n", "200000", "-t", "set"] (no custom commands)',
    "fio": 'args like ["--name=cli-ai", "--rw=randwrite", "--bs=8k", "--size=256M", '
    '"--runtime=20", "--time_based", "--ioengine=psync", "--unlink=1", "--output-format=json"] '
    "(fio writes in a private directory of its own: never --directory, --filename, --output or --exec_*; "
    "--name is a plain name)",
    "probe": 'args ["--resource", "<resource>", "--count", "<N>"]: cli-ai\'s built-in capacity probe asks the '
    "kernel for N units and reports how many it granted; resources (unit of N): "
    + "; ".join(f"{r.name} ({r.unit})" for r in PROBE_RESOURCES.values()),
    "tcp-accept": "no args needed (optional --connections N, --concurrency N, --accept-delay-ms X, --timeout X): "
    "an accept storm over loopback whose rate depends on the listen backlog and SYN handling",
}

EXAMPLE_SPEC = {
    "workload_name": "Web server with many concurrent connections",
    "description": "Bursts of new connections overflow the accept and SYN queues; wrk measures the running nginx.",
    "target": "sysctl",
    "reward_metric": "requests_per_second",
    "metric_direction": "maximize",
    "benchmark": {"runner": "wrk", "args": ["-t4", "-c400", "-d20s", "http://127.0.0.1:80/"], "timeout_s": 120},
    "action_space": [
        {"param": "net.core.somaxconn", "type": "int", "min": 128, "max": 65535},
        {"param": "net.ipv4.tcp_max_syn_backlog", "type": "int", "min": 128, "max": 65535},
        {"param": "net.ipv4.tcp_slow_start_after_idle", "type": "bool"},
    ],
    "training_config": {"algorithm": "auto", "budget": 30},
}


def response_schema() -> dict[str, Any]:
    """The project's tuning-spec schema, as sent in response_format (no $schema/$id)."""
    from cli_ai.spec import schema

    s = copy.deepcopy(schema())
    s.pop("$schema", None)
    s.pop("$id", None)
    return s


def _entry_line(e: CatalogEntry, *, detail: bool) -> str:
    unit = f" {e.unit}" if e.unit else ""
    line = f"{e.name} | {e.type} | safe {e.range_text()}{unit}"
    if detail:
        desc = " ".join(e.description.split())
        line += f" | {desc[:160]}"
    return line


RETRIEVED_ENTRIES = 8  # catalogue entries the prompt carries: the best matches for the goal
RETRIEVED_FRACTION = 0.3  # and only those scoring at least this share of the best


def retrieved_entries(goal: str, profile: SystemProfile | None) -> list[tuple[CatalogEntry, dict[str, Any]]]:
    """The sysctl entries that match the goal best (the offline planner's
    retrieval), present on this kernel, with their knowledge."""
    import json as _json

    from cli_ai.safety.catalog import CATALOG_FILE
    from cli_ai.strategist.offline import templated
    from cli_ai.strategist.retrieval import default_indexes

    catalog = load_catalog()
    raw = _json.loads(CATALOG_FILE.read_text(encoding="utf-8"))["sysctl"]
    absent = set(profile.absent_sysctls or ()) if profile else set()
    out = []
    hits = default_indexes()[0].rank(goal)
    for hit in hits:
        name = hit.doc.name
        if hit.score < RETRIEVED_FRACTION * hits[0].score:
            break
        if not templated(hit.doc.target) or name in absent or name not in catalog:
            continue
        out.append((catalog[name], raw[name].get("knowledge") or {}))
        if len(out) >= RETRIEVED_ENTRIES:
            break
    return out


def catalogue_section(goal: str, profile: SystemProfile | None) -> str:
    """The catalogue entries that match the goal (name, range, what it does,
    its symptoms and the benchmarks it moves), and the absent ones by name."""
    absent = set(profile.absent_sysctls or ()) if profile else set()
    entries = retrieved_entries(goal, profile)
    lines = ["SAFETY CATALOGUE: the entries that match this goal "
             "(name | type | safe range | what it does | symptoms | benchmarks it moves)"]
    if not entries:
        lines.append("(no entry matches the goal's words; if it is not a tuning request, say so in "
                     "\"description\" and tune nothing you cannot justify)")
    for e, k in entries:
        symptoms = "; ".join(str(x) for x in (k.get("symptoms") or [])[:3])
        moves = ", ".join(sorted(k.get("moves") or {})) or "none cli-ai runs"
        lines.append(f"- {_entry_line(e, detail=True)} | {symptoms} | {moves}")
    if absent:
        lines.append("Absent on this kernel (never use): " + ", ".join(sorted(absent)))
    return "\n".join(lines)


def benchmark_ids_section() -> str:
    """What the benchmark ids in the catalogue lines mean, as runner + args."""
    from cli_ai.strategist.planning import load_templates

    lines = ["BENCHMARK IDS (id: runner args)"]
    for bid, b in load_templates()[1].items():
        lines.append(f"- {bid}: {b['runner']} {' '.join(b.get('args', []))}".rstrip())
    return "\n".join(lines)


def runners_section(profile: SystemProfile | None) -> str:
    lines = ["BENCHMARK RUNNERS (runner: reward_metric; usage)"]
    for runner, guide in RUNNER_GUIDE.items():
        metrics = " or ".join(RUNNER_METRICS[runner])
        status = ""
        if profile is not None and runner != "tcp-accept":
            status = " [installed]" if profile.has_tool(runner) else " [not installed]"
        lines.append(f"- {runner}{status}: {metrics}; {guide}")
    return "\n".join(lines)


def user_prompt(goal: str, profile: SystemProfile | None) -> str:
    parts = [f"GOAL: {goal.strip()}", ""]
    if profile is not None:
        parts.append("MACHINE PROFILE")
        parts += [f"- {line}" for line in profile.summary_lines()]
        parts.append("")
    parts.append(catalogue_section(goal, profile))
    parts.append("")
    parts.append(runners_section(profile))
    parts.append("")
    parts.append(benchmark_ids_section())
    parts.append("")
    parts.append("EXAMPLE of the format (a different workload; do not copy its params blindly):")
    parts.append(json.dumps(EXAMPLE_SPEC, indent=1))
    parts.append("")
    parts.append("Write the tuning spec for the GOAL now, as one JSON object.")
    return "\n".join(parts)


def build_messages(goal: str, profile: SystemProfile | None) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_prompt(goal, profile)},
    ]


def repair_message(problems: list[str], *, same_as: int | None = None) -> str:
    """The problems sent back; `same_as`: the round whose answer this one repeats."""
    lines = ["Your spec cannot be used as it is. cli-ai's checks report:"]
    if same_as:
        lines = [f"Your answer is the same as your answer in round {same_as}, so it has the same problems. "
                 "Sending it again cannot pass: change the spec so that each problem below is fixed."]
    lines += [f"- {p}" for p in problems]
    lines.append(
        "Fix every problem and answer with the complete corrected spec as one JSON object, nothing else."
    )
    return "\n".join(lines)


def echo_answer(content: str) -> str:
    """A bad answer as sent back in the conversation (bounded)."""
    if len(content) <= MAX_ANSWER_ECHO:
        return content
    return content[:MAX_ANSWER_ECHO] + "\n[... answer truncated ...]"


__all__ = [
    "SYSTEM_PROMPT",
    "build_messages",
    "repair_message",
    "response_schema",
    "user_prompt",
    "catalogue_section",
]
