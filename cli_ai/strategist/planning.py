"""The strategist's data: workload templates and the benchmark table
(templates.json), and how a knob and a benchmark are built from them and the
safety catalogue for this machine."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cli_ai.safety.catalog import CatalogEntry
from cli_ai.strategist.profile import SystemProfile

TEMPLATES_FILE = Path(__file__).with_name("templates.json")
GAP_WORDS = 3


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
    """Words people use for a workload; the weight is how many times they
    count in the template's text for retrieval (retrieval._template_text)."""

    pattern: str
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
    # A product's own target: the goal must name one of these (the product, its
    # tools or its own vocabulary) before the template's other words count.
    requires: tuple[re.Pattern[str], ...] = ()


@lru_cache(maxsize=1)
def load_templates() -> tuple[tuple[Workload, ...], dict[str, dict[str, Any]]]:
    data = json.loads(TEMPLATES_FILE.read_text(encoding="utf-8"))
    workloads = []
    for raw in data["workloads"]:
        phrases = tuple(Phrase(p, float(w)) for p, w in raw.get("phrases", []))
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
                requires=tuple(compile_phrase(p) for p in raw.get("requires", [])),
            )
        )
    return tuple(workloads), data["benchmarks"]


def template_for(target: str) -> Workload | None:
    """The template that plans a ready-spec target (its example file)."""
    return next((w for w in load_templates()[0] if w.target == target and w.example), None)


def workloads() -> dict[str, Workload]:
    return {w.id: w for w in load_templates()[0]}


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


def _available(b: dict[str, Any], profile: SystemProfile) -> str | None:
    """None when this benchmark can run here, else why not."""
    if b.get("builtin"):
        return None
    tool = b["tool"]
    if not profile.has_tool(tool):
        return f"{tool}: not installed"
    needs = b.get("needs_running") or []
    if needs and not any(profile.runs(s) for s in needs):
        return f"{tool}: installed, but no {' / '.join(needs)} is running for it to measure"
    return None


def choose_benchmark(
    candidates: list[str], params: list[str], profile: SystemProfile, required: str | None = None
) -> tuple[str, dict[str, Any], list[str], list[str]]:
    """(id, benchmark entry, reasoning lines, warnings): the first candidate
    that some of `params` can move (the catalogue's `moves`) and that runs
    here; then any other benchmark they move, most params first. When none
    runs here, the best one is planned with what to install. `required` (the
    param the goal names most clearly) must be one the benchmark can move."""
    from cli_ai.strategist.relevance import moves_of

    table = load_templates()[1]

    def movers(bid: str) -> list[str]:
        found = [p for p in params if moves_of(p) is None or bid in (moves_of(p) or {})]
        return found if required is None or required in found else []

    others = sorted((bid for bid in table if bid not in candidates and movers(bid)),
                    key=lambda bid: -len(movers(bid)))
    passed: list[str] = []
    relevant: list[tuple[str, str]] = []
    for bid in [*candidates, *others]:
        if bid not in table:
            continue
        if not movers(bid):
            passed.append(f"{bid}: {required} cannot move it" if required else f"{bid}: none of the planned knobs can move it")
            continue
        why_not = _available(table[bid], profile)
        if why_not is None:
            return bid, table[bid], [f"  passed over {p}" for p in passed], []
        relevant.append((bid, why_not))
        passed.append(why_not)
    if not relevant:
        raise LookupError("no benchmark in the table can be moved by these knobs")
    bid, why_not = relevant[0]
    b = table[bid]
    if why_not.endswith("not installed"):
        warning = f"{b['tool']} is not installed here; install it before running this spec (e.g. apt-get install {b['tool']})"
    else:
        warning = f"{why_not}; start it before running this spec"
    return bid, b, [f"  passed over {p}" for p in passed], [warning]


def examples_dirs(extra: str | Path | None = None) -> list[Path]:
    here = Path(__file__).resolve().parent.parent
    dirs = [Path(extra)] if extra else []
    dirs += [here / "examples", here.parent / "examples"]
    return dirs
