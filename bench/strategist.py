"""How often the strategist plans what a person meant (issue 16 item 6).

Every goal of bench/strategist_goals.json (everyday phrasing: symptoms, pasted
error messages, workloads, tools, requests cli-ai must decline) goes through
`cli_ai.strategist.make_plan(goal, dry_run=True)`. A plan is right when its
target is the expected one, it tunes at least one of the goal's `any_of`
params (none listed: the target alone decides) and none of its `forbidden`
ones; a goal marked "decline" is right only when the planner raises
GoalDeclined. A refusal because no benchmark cli-ai runs can show the
goal's param (BenchmarkCannotMeasure, exit 3, the design of issue 16 item
4) is right when the param it names is one of the goal's `any_of`; the
report counts those apart ("right, refused: no benchmark"). Any other
StrategistError is a failure to plan.

The offline planner runs against a fixed SystemProfile (FIXED_PROFILE below:
a 6.8 kernel, every benchmark tool installed, no service running), so the score does not
depend on the machine; `--profile host` uses this machine's, `--profile
FILE.json` a saved one (`runs/<stamp>/profile.json`). With an endpoint
(`--base-url`, OPENAI_BASE_URL or OPENAI_API_KEY) the LLM path
(provider "openai", no offline fallback) is scored on the same goals.

    python bench/strategist.py                        # offline, seconds
    python bench/strategist.py --json strategist.json
    python bench/strategist.py --goals bench/strategist_goals_holdout.json   # the held-out set
    python bench/strategist.py --base-url http://127.0.0.1:8080/v1 --model qwen2.5-coder --limit 7 --skip-offline
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from cli_ai.errors import BenchmarkCannotMeasure, CliAiError, GoalDeclined, StrategistError  # noqa: E402
from cli_ai.strategist.profile import Disk, NetInterface, SystemProfile  # noqa: E402
from cli_ai.text import one_line  # noqa: E402

GOALS_FILE = HERE / "strategist_goals.json"
TARGETS = ("sysctl", "mosquitto", "postgres", "autoscaling", "scheduler")
DECLINE = "decline"
EXPECTED = TARGETS + (DECLINE,)

# A plain 8-core server with an SSD and every benchmark tool the planner may
# pick: what is measured is the reading of the goal, not which tools this
# machine happens to have. Its kernel is a current one, so the CFS knobs that
# moved to debugfs in Linux 5.13 are absent, as they are on every kernel a
# person runs today.
FIXED_PROFILE = SystemProfile(
    cpu_count=8,
    cpu_model="x86_64 server CPU",
    memory_mb=32768,
    swap_mb=4096,
    kernel="6.8.0",
    distribution="Ubuntu 24.04",
    numa_nodes=1,
    disks=[Disk("nvme0n1", rotational=False, size_gb=960)],
    interfaces=[NetInterface("eth0", speed_mbps=10000, up=True)],
    services_running=[],
    services_installed=[],
    benchmark_tools=["pgbench", "wrk", "sysbench", "redis-benchmark", "fio", "mosquitto_pub", "mosquitto_sub"],
    absent_sysctls=["kernel.sched_latency_ns", "kernel.sched_migration_cost_ns", "kernel.sched_min_granularity_ns",
                    "kernel.sched_wakeup_granularity_ns"],
    congestion_controls=["reno", "cubic", "bbr"],
)

# Why a goal was missed, in the order the judge checks.
MISS_KINDS = ("crash", "failed to plan", "declined", "not declined", "wrong target", "no expected param", "forbidden param")


@dataclass(frozen=True)
class Goal:
    goal: str
    kind: str
    target: str
    any_of: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    why: str = ""


@dataclass
class Row:
    """One goal, planned and judged (the --json rows)."""

    goal: str
    kind: str
    expected: str
    right: bool
    miss: str | None  # one of MISS_KINDS, None when right
    planned_target: str | None
    planned_params: list[str]
    template: str | None
    detail: str
    seconds: float
    provider: str


# --------------------------------------------------------------------------- the goal set


def load_goals(path: str | Path = GOALS_FILE) -> list[Goal]:
    """The goal file, its shape checked; a bad entry is a ValueError naming it."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    entries = data.get("goals") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected an object with a 'goals' list")
    goals = []
    for i, e in enumerate(entries):
        where = f"{path}: goals[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("goal"), str) or not e["goal"].strip():
            raise ValueError(f"{where}: 'goal' must be a non-empty string")
        if e.get("target") not in EXPECTED:
            raise ValueError(f"{where}: 'target' must be one of {', '.join(EXPECTED)}, not {e.get('target')!r}")
        lists = {}
        for key in ("any_of", "forbidden"):
            value = e.get(key, [])
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise ValueError(f"{where}: '{key}' must be a list of param names")
            lists[key] = tuple(value)
        if e["target"] == DECLINE and (lists["any_of"] or lists["forbidden"]):
            raise ValueError(f"{where}: a declined goal lists no params")
        goals.append(Goal(e["goal"], str(e.get("kind", "")), e["target"], lists["any_of"], lists["forbidden"], str(e.get("why", ""))))
    return goals


def postgres_settings() -> list[str]:
    from cli_ai.targets.postgres.catalog import CATALOG_FILE

    return [k for k in json.loads(Path(CATALOG_FILE).read_text(encoding="utf-8"))["settings"]]


def unknown_params(goals: Iterable[Goal], catalog: dict[str, Any]) -> list[str]:
    """'goal: param' for every param that is neither a sysctl nor a mosquitto entry of the catalogue,
    nor a PostgreSQL setting of the postgres target's catalogue."""
    known = set(catalog.get("sysctl", {})) | set(catalog.get("mosquitto", {})) | set(postgres_settings())
    return [f"{g.goal}: {p}" for g in goals for p in g.any_of + g.forbidden if p not in known]


# --------------------------------------------------------------------------- judging


def judge(goal: Goal, outcome: Any, *, seconds: float = 0.0, provider: str = "offline") -> Row:
    """Right or wrong, and why: `outcome` is the PlanResult or the exception make_plan raised."""
    planned_target = template = None
    params: list[str] = []
    if isinstance(outcome, BaseException):
        detail = f"{type(outcome).__name__}: {one_line(outcome)}"
        if isinstance(outcome, GoalDeclined):
            miss = None if goal.target == DECLINE else "declined"
        elif isinstance(outcome, BenchmarkCannotMeasure) and goal.target == "sysctl" and goal.any_of:
            # understood, and honestly refused: the named param is right, no benchmark could show a gain
            params = list(outcome.params)
            miss = None if set(params) & set(goal.any_of) else "failed to plan"
        elif isinstance(outcome, (StrategistError, CliAiError)):
            miss = "failed to plan"
        else:
            miss = "crash"
    else:
        planned_target, template = outcome.spec.target, outcome.template
        params = list(outcome.spec.params)
        detail = f"planned {planned_target}" + (f" ({template})" if template else "") + ": " + (", ".join(params) or "no params")
        bad = [p for p in params if p in goal.forbidden]
        if goal.target == DECLINE:
            miss = "not declined"
        elif planned_target != goal.target:
            miss = "wrong target"
        elif goal.any_of and not set(params) & set(goal.any_of):
            miss = "no expected param"
        elif bad:
            miss = "forbidden param"
            detail += f" (forbidden: {', '.join(bad)})"
        else:
            miss = None
    return Row(goal.goal, goal.kind, goal.target, miss is None, miss, planned_target, params, template, detail,
               round(seconds, 4), provider)


def evaluate(goals: Iterable[Goal], plan: Callable[[str], Any], *, provider: str,
             progress: Callable[[int, Row], None] | None = None,
             scrub: Callable[[str], str] | None = None) -> list[Row]:
    """Plan every goal with `plan(goal_text)` and judge it; an exception is an outcome, never the end of the run.
    `scrub` takes secrets out of each row's detail (an endpoint's error may quote its URL)."""
    rows = []
    for i, goal in enumerate(goals, 1):
        started = time.perf_counter()
        try:
            outcome: Any = plan(goal.goal)
        except Exception as exc:  # noqa: BLE001 - a planner crash is a miss to report, not the end of the run
            outcome = exc
        row = judge(goal, outcome, seconds=time.perf_counter() - started, provider=provider)
        if scrub:
            row.detail = scrub(row.detail)
        rows.append(row)
        if progress:
            progress(i, row)
    return rows


# --------------------------------------------------------------------------- the report


def _pct(right: int, total: int) -> str:
    return f"{100 * right / total:.0f} %" if total else "-"


def summarize(rows: list[Row], title: str) -> str:
    out = [title, ""]
    out.append(f"{'expected':<12} {'right':>5} / {'total':<5} {'rate':>5}")
    for target in EXPECTED:
        sel = [r for r in rows if r.expected == target]
        if sel:
            right = sum(r.right for r in sel)
            out.append(f"{target:<12} {right:>5} / {len(sel):<5} {_pct(right, len(sel)):>5}")
    right = sum(r.right for r in rows)
    out.append(f"{'overall':<12} {right:>5} / {len(rows):<5} {_pct(right, len(rows)):>5}")
    declines = [r for r in rows if r.expected == DECLINE]
    wrongly = sum(r.miss == "declined" for r in rows)
    out.append("")
    out.append(f"declines right: {sum(r.right for r in declines)} of {len(declines)}; "
               f"tuning goals declined by mistake: {wrongly} of {len(rows) - len(declines)}")
    refused = [r for r in rows if r.right and r.detail.startswith("BenchmarkCannotMeasure")]
    if refused:
        out.append(f"right, refused: no benchmark shows the param ({len(refused)}): "
                   + "; ".join(f"{one_line(r.goal)[:50]} -> {', '.join(r.planned_params)}" for r in refused))
    if rows:
        times = sorted(r.seconds for r in rows)
        out.append(f"time per plan: median {1000 * statistics.median(times):.1f} ms, mean {1000 * statistics.fmean(times):.1f} ms, "
                   f"max {1000 * times[-1]:.1f} ms; total {sum(times):.2f} s")
    kinds = Counter(r.kind for r in rows)
    right_kinds = Counter(r.kind for r in rows if r.right)
    out.append("by phrasing: " + ", ".join(f"{k} {right_kinds[k]}/{n}" for k, n in sorted(kinds.items())))
    misses = [r for r in rows if not r.right]
    if misses:
        by_kind = Counter(r.miss for r in misses)
        out.append("misses by kind: " + ", ".join(f"{k} {by_kind[k]}" for k in MISS_KINDS if by_kind[k]))
        out.append("")
        out.append(f"misses ({len(misses)}):")
        for r in misses:
            out.append(f"  [{r.miss}] expected {r.expected}: {one_line(r.goal)}")
            out.append(f"      {one_line(r.detail)[:300]}")
    return "\n".join(out)


# --------------------------------------------------------------------------- command line


def load_profile(choice: str) -> SystemProfile:
    if choice == "fixed":
        return FIXED_PROFILE
    if choice == "host":
        from cli_ai.strategist.profile import gather_profile

        return gather_profile()
    return SystemProfile.from_dict(json.loads(Path(choice).read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--goals", default=str(GOALS_FILE), help="the goal set (default: bench/strategist_goals.json)")
    ap.add_argument("--profile", default="fixed", help="fixed (default), host, or a profile.json file")
    ap.add_argument("--target", choices=EXPECTED, action="append", help="only goals expecting this target (repeatable)")
    ap.add_argument("--limit", type=int, help="only the first N goals (the LLM takes minutes per plan)")
    ap.add_argument("--base-url", help="OpenAI-compatible endpoint for the LLM path (else OPENAI_BASE_URL)")
    ap.add_argument("--model", help="model name for the LLM path (else CLI_AI_MODEL)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per LLM request (default 600)")
    ap.add_argument("--skip-offline", action="store_true", help="score only the LLM path")
    ap.add_argument("--json", metavar="FILE", help="write every row as JSON")
    args = ap.parse_args(argv)

    try:
        goals = load_goals(args.goals)
    except (OSError, ValueError) as exc:
        print(f"error: --goals: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        profile = load_profile(args.profile)
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: --profile: {one_line(exc)} (give fixed, host or a profile.json file)", file=sys.stderr)
        return 2
    if args.target:
        goals = [g for g in goals if g.target in args.target]
    if args.limit is not None:
        goals = goals[: max(args.limit, 0)]

    from cli_ai.strategist import make_plan
    from cli_ai.strategist.openai_strategist import llm_configured

    runs: list[tuple[str, Callable[[str], Any]]] = []
    if not args.skip_offline:
        runs.append(("offline", lambda text: make_plan(text, provider="offline", profile=profile, dry_run=True)))
    if llm_configured(args.base_url, None):
        runs.append(("openai", lambda text: make_plan(text, provider="openai", profile=profile, dry_run=True,
                                                      base_url=args.base_url, model=args.model, timeout=args.timeout)))
    elif args.skip_offline:
        print("error: --skip-offline needs an LLM endpoint: --base-url or OPENAI_BASE_URL", file=sys.stderr)
        return 2

    def progress(i: int, row: Row) -> None:
        print(f"[{i}/{len(goals)}] {row.seconds:.1f} s {'right' if row.right else row.miss}: {one_line(row.goal)[:70]}",
              file=sys.stderr, flush=True)

    from cli_ai.core.secrets import Scrubber, url_secrets

    scrub = Scrubber(*url_secrets(args.base_url or os.environ.get("OPENAI_BASE_URL")), from_env=True)
    all_rows: list[Row] = []
    for provider, plan in runs:
        rows = evaluate(goals, plan, provider=provider, progress=progress if provider == "openai" else None, scrub=scrub)
        all_rows += rows
        print(summarize(rows, f"strategist ({provider}), profile {args.profile}, {len(goals)} goals from {args.goals}"))
        print()
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in all_rows], indent=1) + "\n", encoding="utf-8")
        print(f"rows written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
