"""The offline strategist: deterministic, no network, the default without an LLM.

It reads the goal for weighted phrases (not lone keywords: "stalls on writes",
"lots of TIME_WAIT sockets", "too many open connections"), lets the system
profile tip the balance (a running PostgreSQL makes a database reading more
likely), and fills the winning template from `templates.json`. Every param and
range comes from the safety catalogue, narrowed by the template; params this
kernel lacks are skipped. The benchmark is the first candidate that fits and is
installed (and has its server running), else cli-ai's built-in `tcp-accept` or
sysbench. The reasoning lists the matched phrases with their weights, the
runner-up, and why each param is there.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cli_ai.errors import SpecError, StrategistError
from cli_ai.safety.catalog import CatalogEntry, lookup
from cli_ai.spec import load_spec, spec_from_dict
from cli_ai.strategist.base import PlanResult
from cli_ai.strategist.profile import SystemProfile

TEMPLATES_FILE = Path(__file__).with_name("templates.json")
MIN_SCORE = 1.0  # below this, nothing was recognised: the general template plans
CLOSE_CALL = 1.0  # a lead smaller than this is reported as a close call
INSTALLED_FACTOR = 0.25  # an installed, idle service counts this much of a running one
GAP_WORDS = 3
TRAINING = {"algorithm": "auto", "budget": 30}


# --------------------------------------------------------------------------- phrases


def normalize(text: str) -> str:
    """Lower case, punctuation and separators as single spaces: 'TIME_WAIT' -> 'time wait'."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _token(tok: str) -> str:
    if tok.endswith("*"):
        return re.escape(tok[:-1]) + r"[a-z0-9]*"
    return re.escape(tok)


def compile_phrase(pattern: str) -> re.Pattern[str]:
    """'stall* ... write*' -> a regex over normalized text.

    Segments separated by '...' follow each other with up to three words in
    between; inside a segment, '|' separates alternative word sequences;
    'word*' matches words starting with 'word'."""
    segments = []
    for seg in pattern.split("..."):
        alts = []
        for alt in seg.split("|"):
            words = alt.split()
            if not words:
                raise ValueError(f"empty alternative in phrase {pattern!r}")
            alts.append(" ".join(_token(w) for w in words))
        segments.append("(?:" + "|".join(alts) + ")")
    gap = r" (?:[a-z0-9]+ ){0,%d}" % GAP_WORDS
    return re.compile(r"\b" + gap.join(segments) + r"\b")


@dataclass(frozen=True)
class Phrase:
    pattern: str
    weight: float
    regex: re.Pattern[str] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Match:
    phrase: str
    text: str
    weight: float


@dataclass(frozen=True)
class Workload:
    id: str
    title: str
    summary: str
    phrases: tuple[Phrase, ...]
    services: dict[str, float]
    target: str = "sysctl"
    example: str | None = None
    params: tuple[dict[str, Any], ...] = ()
    benchmarks: tuple[str, ...] = ()
    max_params: int = 6
    caveats: dict[str, str] = field(default_factory=dict)
    # Products this template is not for: naming one cancels its phrases.
    excludes: tuple[re.Pattern[str], ...] = ()


@dataclass
class WorkloadScore:
    workload: Workload
    matches: list[Match] = field(default_factory=list)
    services: list[tuple[str, float, str]] = field(default_factory=list)  # (service, weight, "running"/"installed")
    excluded_by: str | None = None  # the product named that this template is not for

    @property
    def phrase_score(self) -> float:
        return round(sum(m.weight for m in self.matches), 3)

    @property
    def score(self) -> float:
        return round(self.phrase_score + sum(w for _, w, _ in self.services), 3)

    def evidence(self) -> str:
        parts = [f"{m.text!r} (+{m.weight:g})" for m in self.matches]
        parts += [f"{svc} {how} (+{w:g})" for svc, w, how in self.services]
        return ", ".join(parts) or "nothing"


@lru_cache(maxsize=1)
def load_templates() -> tuple[tuple[Workload, ...], dict[str, dict[str, Any]]]:
    data = json.loads(TEMPLATES_FILE.read_text(encoding="utf-8"))
    workloads = []
    for raw in data["workloads"]:
        phrases = tuple(Phrase(p, float(w), compile_phrase(p)) for p, w in raw.get("phrases", []))
        workloads.append(
            Workload(
                id=raw["id"],
                title=raw["title"],
                summary=raw["summary"],
                phrases=phrases,
                services=dict(raw.get("services", {})),
                target=raw.get("target", "sysctl"),
                example=raw.get("example"),
                params=tuple(raw.get("params", ())),
                benchmarks=tuple(raw.get("benchmarks", ())),
                max_params=int(raw.get("max_params", 6)),
                caveats=dict(raw.get("caveats", {})),
                excludes=tuple(compile_phrase(p) for p in raw.get("excludes", [])),
            )
        )
    return tuple(workloads), data["benchmarks"]


def workloads() -> dict[str, Workload]:
    return {w.id: w for w in load_templates()[0]}


def recognise(goal: str, profile: SystemProfile | None = None) -> list[WorkloadScore]:
    """Every workload with its evidence, best first (ties keep the template order).
    The 'general' template has no phrases and comes last unless nothing scores."""
    text = normalize(goal)
    scored: list[WorkloadScore] = []
    for wl in load_templates()[0]:
        ws = WorkloadScore(wl)
        for ph in wl.phrases:
            m = ph.regex.search(text)
            if m:
                ws.matches.append(Match(ph.pattern, m.group(0), ph.weight))
        excluded = next((m.group(0) for p in wl.excludes if (m := p.search(text))), None)
        if excluded is not None:
            # a product this template is not for ("a kafka broker" is not Mosquitto)
            ws.matches, ws.excluded_by = [], excluded
        # What runs here informs a plan the words already point to; it never
        # replaces them (a running broker made any goal, gibberish included, a
        # Mosquitto plan).
        if profile is not None and ws.matches:
            for svc, weight in sorted(wl.services.items()):
                if profile.runs(svc):
                    ws.services.append((svc, weight, "running"))
                elif profile.has_installed(svc):
                    ws.services.append((svc, round(weight * INSTALLED_FACTOR, 3), "installed"))
        scored.append(ws)
    order = {wl.id: i for i, wl in enumerate(load_templates()[0])}
    scored.sort(key=lambda s: (-s.score, order[s.workload.id]))
    return scored


# --------------------------------------------------------------------------- building


def _fmt(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _knob_range_text(knob: dict[str, Any]) -> str:
    kind = knob.get("type", "int")
    if kind == "bool":
        return "on/off"
    if kind == "enum":
        return " | ".join(map(str, knob["values"]))
    if kind == "vector":
        return " ".join(
            str(e["min"]) if e["min"] == e["max"] else f"[{e['min']}..{e['max']}]" for e in knob["elements"]
        )
    return f"{_fmt(knob['min'])}..{_fmt(knob['max'])}"


def build_knob(tpl: dict[str, Any], entry: CatalogEntry, profile: SystemProfile) -> tuple[dict[str, Any] | None, str | None]:
    """The knob a template asks for, inside the catalogue's safe range; or (None, why not)."""
    name = tpl["param"]
    kind = tpl.get("type") or ("int" if entry.type in ("int", "float") else entry.type)
    knob: dict[str, Any] = {"param": name, "type": kind}
    if kind == "bool":
        if entry.type != "bool":
            return None, f"the catalogue lists it as {entry.type}, not an on/off flag"
    elif kind == "enum":
        allowed = [v for v in tpl["values"] if v in (entry.values or ())]
        if name == "net.ipv4.tcp_congestion_control" and profile.congestion_controls is not None:
            missing = [v for v in allowed if v not in profile.congestion_controls]
            allowed = [v for v in allowed if v in profile.congestion_controls]
            if missing and len(allowed) < 2:
                return None, f"this kernel offers only {', '.join(profile.congestion_controls)} (no {', '.join(missing)})"
        if len(allowed) < 2:
            return None, "fewer than two safe values to choose from"
        knob["values"] = allowed
    elif kind == "vector":
        safe = entry.elements or ()
        if entry.type != "vector" or len(safe) != len(tpl["elements"]):
            return None, "the template's fields do not match the catalogue"
        elements = []
        for el, s in zip(tpl["elements"], safe):
            lo, hi = max(el["min"], s.min), min(el["max"], s.max)
            if lo > hi:
                return None, "no overlap with the safe range"
            e = {"min": int(lo), "max": int(hi)}
            if el.get("scale") == "log" and lo > 0 and lo < hi:
                e["scale"] = "log"
            elements.append(e)
        if all(e["min"] == e["max"] for e in elements):
            return None, "every field would be fixed"
        knob["elements"] = elements
    else:
        if entry.type not in ("int", "float"):
            return None, f"the catalogue lists it as {entry.type}"
        lo = max(tpl["min"], entry.min)
        hi = min(tpl["max"], entry.max)
        pct = tpl.get("cap_percent_of_memory")
        if pct and profile.memory_mb:
            cap = int(profile.memory_mb * 1024 * pct / 100)  # KiB
            hi = min(hi, max(cap, lo * 2))  # keep some room on a small machine
        if kind == "int":
            lo, hi = int(lo), int(hi)
        if lo >= hi:
            return None, f"no room to search inside the safe range {entry.range_text()}"
        knob["min"], knob["max"] = lo, hi
        if tpl.get("scale") == "log" and lo > 0:
            knob["scale"] = "log"
    if tpl.get("why"):
        knob["description"] = tpl["why"]
    return knob, None


def _substitute(args: list[str], profile: SystemProfile) -> list[str]:
    cpus = max(1, profile.cpu_count or 1)
    values = {"cpus": str(cpus), "jobs": str(min(cpus, 8))}
    return [re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), a) for a in args]


def choose_benchmark(
    wl: Workload, profile: SystemProfile
) -> tuple[str, dict[str, Any], list[str], list[str]]:
    """(id, benchmark entry, reasoning lines, warnings): the first candidate that fits here."""
    table = load_templates()[1]
    passed: list[str] = []
    candidates = list(wl.benchmarks)
    if wl.id not in ("cpu_compute",) and "tcp_accept" not in candidates and "sysbench_memory" not in candidates:
        candidates.append("sysbench_memory")
    for bid in candidates:
        b = table[bid]
        if b.get("builtin"):
            return bid, b, [f"  passed over {p}" for p in passed], []
        tool = b["tool"]
        if not profile.has_tool(tool):
            passed.append(f"{tool}: not installed")
            continue
        needs = b.get("needs_running") or []
        if needs and not any(profile.runs(s) for s in needs):
            passed.append(f"{tool}: installed, but no {' / '.join(needs)} is running for it to measure")
            continue
        return bid, b, [f"  passed over {p}" for p in passed], []
    # Nothing fits here: plan the last candidate and say what to install.
    bid = candidates[-1]
    b = table[bid]
    warning = f"{b['tool']} is not installed here; install it before running this spec (e.g. apt-get install {b['tool']})"
    return bid, b, [f"  passed over {p}" for p in passed], [warning]


def examples_dirs(extra: str | Path | None = None) -> list[Path]:
    here = Path(__file__).resolve().parent.parent
    dirs = [Path(extra)] if extra else []
    dirs += [here / "examples", here.parent / "examples"]
    return dirs


class OfflineStrategist:
    """Plans from curated templates; never touches the network."""

    name = "offline"

    def __init__(self, *, examples_dir: str | Path | None = None):
        self.examples_dir = examples_dir

    def plan(self, goal: str, profile: SystemProfile) -> PlanResult:
        if not goal or not goal.strip():
            raise StrategistError("the goal is empty; say what to tune, e.g. \"my postgres stalls on writes\"")
        ranking = recognise(goal, profile)
        best = ranking[0]
        general = workloads()["general"]
        chosen = best.workload if best.score >= MIN_SCORE else general
        reasoning = [f"goal: {goal.strip()!r}"]
        if chosen is general:
            reasoning.append(
                "recognised no specific workload (no phrase scored"
                + (f" {MIN_SCORE:g} or more" if best.score else "")
                + "): using the general-purpose template; name the workload for a better plan "
                "(e.g. 'postgres OLTP', 'many web connections', 'TIME_WAIT sockets')"
            )
            for s in ranking:
                if s.excluded_by:
                    reasoning.append(f"  {s.excluded_by!r} is named: the {s.workload.title} template is not for it")
            runner_up = best if best.score > 0 else None
        else:
            reasoning.append(f"workload: {chosen.title} [{chosen.id}], score {best.score:g}")
            for m in best.matches:
                reasoning.append(f"  matched {m.text!r} via phrase '{m.phrase}' (+{m.weight:g})")
            for svc, w, how in best.services:
                reasoning.append(f"  {svc} is {how} here (+{w:g})")
            runner_up = next((s for s in ranking[1:] if s.score > 0), None)
        if runner_up is not None and runner_up.workload is not chosen:
            reasoning.append(
                f"runner-up: {runner_up.workload.title} [{runner_up.workload.id}], score {runner_up.score:g}: "
                f"{runner_up.evidence()}"
            )
            if chosen is not general and best.score - runner_up.score < CLOSE_CALL:
                reasoning.append(
                    "  close call: describe the workload in more words if the runner-up is what you meant"
                )
        elif chosen is not general:
            reasoning.append("runner-up: none (no other workload matched)")
        from cli_ai.targets import get_target

        if get_target(chosen.target).planning != "templates":
            return self._ready_spec(chosen, goal, reasoning)
        return self._from_template(chosen, goal, profile, reasoning)

    # ------------------------------------------------------------------ targets with ready specs
    def _ready_spec(self, wl: Workload, goal: str, reasoning: list[str]) -> PlanResult:
        looked = []
        for d in examples_dirs(self.examples_dir):
            path = d / (wl.example or "")
            looked.append(str(path))
            if path.is_file():
                try:
                    spec = load_spec(path)
                except SpecError as exc:
                    raise StrategistError(
                        f"the ready spec {path} for the {wl.target} target is invalid", problems=[
                            f"the ready spec {path} for the {wl.target} target is invalid:", *exc.problems
                        ]
                    ) from None
                reasoning.append(f"template: {wl.id}: {wl.summary}")
                reasoning.append(f"loaded the ready spec {path} (target {wl.target}); its knobs are the {wl.target} settings it lists")
                return PlanResult(
                    spec_dict=spec.to_dict(),
                    spec=spec,
                    provider="offline",
                    template=wl.id,
                    reasoning=reasoning,
                )
        raise StrategistError(
            f"the {wl.target} target plans from the ready spec examples/{wl.example}, which is missing "
            f"(looked in {', '.join(looked)}); reinstall cli-ai or write the spec yourself"
        )

    # ------------------------------------------------------------------ sysctl templates
    def _from_template(self, wl: Workload, goal: str, profile: SystemProfile, reasoning: list[str]) -> PlanResult:
        reasoning.append(f"template: {wl.id}: {wl.summary}")
        knobs: list[dict[str, Any]] = []
        skipped: list[str] = []
        for tpl in wl.params:
            name = tpl["param"]
            if len(knobs) >= wl.max_params:
                break
            entry = lookup(name)
            if entry is None:  # templates are tested against the catalogue; never invent a param
                skipped.append(f"{name}: not in the safety catalogue")
                continue
            if profile.sysctl_present(name) is False:
                why = f" (removed in Linux {entry.removed_in})" if entry.removed_in else ""
                skipped.append(f"{name}: not on this kernel {profile.kernel}{why}")
                continue
            need_numa = (tpl.get("requires") or {}).get("numa_nodes_min")
            if need_numa and (profile.numa_nodes or 1) < need_numa:
                skipped.append(f"{name}: only helps NUMA machines; this one has {profile.numa_nodes or 1} node")
                continue
            knob, why_not = build_knob(tpl, entry, profile)
            if knob is None:
                skipped.append(f"{name}: {why_not}")
                continue
            knobs.append(knob)
        if not knobs:
            raise StrategistError(
                f"the {wl.id} template has no param this kernel offers",
                problems=[f"the {wl.id} template has no param this kernel offers:"] + skipped,
            )
        reasoning.append("params (each range inside the catalogue's safe range):")
        for k in knobs:
            entry = lookup(k["param"])
            reasoning.append(
                f"  {k['param']} {_knob_range_text(k)} (safe {entry.range_text() if entry else '?'}): {k.get('description', '')}"
            )
        for s in skipped:
            reasoning.append(f"  skipped {s}")
        bid, bench, bench_lines, warnings = choose_benchmark(wl, profile)
        runner = bench["runner"]
        args = _substitute(list(bench.get("args", [])), profile)
        reasoning.append(f"benchmark: {runner} [{bid}]: {bench.get('fits', '')}; reward metric {bench['metric']}")
        reasoning.extend(bench_lines)
        if bench.get("note"):
            reasoning.append(f"  note: {bench['note']}")
        if bid in wl.caveats:
            reasoning.append(f"  caveat: {wl.caveats[bid]}")
        benchmark: dict[str, Any] = {"runner": runner, "timeout_s": bench.get("timeout_s", 120)}
        if args:
            benchmark["args"] = args
        training = dict(TRAINING)
        if runner == "tcp-accept":
            training["budget"] = 40
        spec_dict: dict[str, Any] = {
            "workload_name": wl.title,
            "description": f"Planned offline for the goal {_clip(goal.strip(), 300)!r}: {wl.summary}.",
            "target": "sysctl",
            "reward_metric": bench["metric"],
            "metric_direction": "maximize",
            "benchmark": benchmark,
            "action_space": knobs,
            "training_config": training,
        }
        try:
            spec = spec_from_dict(copy.deepcopy(spec_dict))
        except SpecError as exc:  # a template bug; say so plainly
            raise StrategistError(
                f"the offline template {wl.id} built an invalid spec (a cli-ai bug)",
                problems=[f"the offline template {wl.id} built an invalid spec (a cli-ai bug):", *exc.problems],
            ) from None
        return PlanResult(
            spec_dict=spec_dict,
            spec=spec,
            provider="offline",
            template=wl.id,
            reasoning=reasoning,
            warnings=warnings,
        )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["OfflineStrategist", "recognise", "normalize", "compile_phrase", "load_templates", "workloads"]
