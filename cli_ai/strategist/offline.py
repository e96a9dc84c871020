"""The offline strategist: deterministic, no network, the default without an LLM.

It ranks what cli-ai knows against the goal (BM25 over the catalogue's
entries and over the curated workload templates, `retrieval.py`) and then:

- a template for another target (Mosquitto, autoscaling, the request
  scheduler) that the words point to loads that target's ready spec;
- an entry the goal names precisely (its symptom or error message, its
  name's words) that no matching template covers plans from the catalogue:
  the best matching entries, each inside its safe range;
- otherwise the best matching template plans, its params narrowed by the
  catalogue;
- nothing that matches well enough is declined (GoalDeclined, exit 2), with
  what cli-ai can tune and example goals.

What runs on the machine may tip a close call between templates the words
already point to, never replace the words. The benchmark is one that the
plan's knobs can move (the catalogue's `moves`) and that runs here, else the
best one with what to install. The reasoning says which words matched which
entries, why this benchmark, and which of the goal's words matched nothing.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from cli_ai.errors import GoalDeclined, SpecError, StrategistError
from cli_ai.safety.catalog import lookup
from cli_ai.spec import load_spec, spec_from_dict
from cli_ai.strategist.base import PlanResult
from cli_ai.strategist.planning import (  # noqa: F401  (public names)
    TEMPLATES_FILE,
    Workload,
    _knob_range_text,
    _substitute,
    build_knob,
    choose_benchmark,
    compile_phrase,
    examples_dirs,
    load_templates,
    normalize,
    template_for,
    workloads,
)
from cli_ai.strategist.profile import SystemProfile
from cli_ai.strategist.retrieval import STOPWORDS, Hit, default_indexes, words

MIN_TEMPLATE = 2.0  # a template's BM25 score below this is not a match
MIN_TEMPLATE_ALONE = 1.6  # a template's floor when no catalogue entry matches
MIN_ENTRY = 2.0  # nor is an entry's
STRONG_ENTRY = 4.0  # an entry this well matched plans from the catalogue unless a template covers it
GROUP_FRACTION = 0.45  # entries within this fraction of the best join the plan
RUNNING_BONUS = 0.15  # a template whose service runs here gains this share of its score
INSTALLED_BONUS = 0.05
MAX_ENTRY_PARAMS = 5
LEAD_TIE = 0.8  # entries scoring this close to the best count as tied for the lead
OTHER_TARGET_CONTEXT = 1.0  # a target's template must score this much before its options are considered
DECLINE_OVER_ENTRY = 0.6  # a "not for cli-ai" match wins over an entry scoring less than this many times it
TRAINING = {"algorithm": "auto", "budget": 30}
EXAMPLE_GOALS = (
    "our nginx proxy logs 'too many open files'",
    "lots of TIME_WAIT sockets and cannot assign requested address",
    "my postgres stalls on writes",
)


def can_tune_text() -> str:
    return ("cli-ai tunes Linux kernel settings (sysctl: network, memory, files, scheduler limits), "
            "a Mosquitto MQTT broker, serverless autoscaling and request scheduling (simulated)")


def templated(target: str) -> bool:
    """Whether the planner assembles this target's specs from catalogue entries
    and templates (sysctl), rather than loading a ready spec or leaving them to the person."""
    from cli_ai.targets import get_target

    return get_target(target).planning == "templates"


def one_line(text: str) -> str:
    """A pasted log line as one line of text: control characters (tabs and
    newlines included) become spaces, runs of spaces one (spec fields are one line)."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", text).split())


def content_words(goal: str) -> list[str]:
    return [w for w in dict.fromkeys(words(goal)) if w not in STOPWORDS and len(w) > 1 and not w.isdigit()]


class OfflineStrategist:
    """Plans from the catalogue and the curated templates; never touches the network."""

    name = "offline"

    def __init__(self, *, examples_dir: str | Path | None = None):
        self.examples_dir = examples_dir
        self._target_hits: list[Hit] = []  # the ready-spec target's settings the goal matched
        self.declines: list[Hit] = []  # "not for cli-ai" documents the goal matched (set by rank)

    # ------------------------------------------------------------------ ranking
    def rank(self, goal: str, profile: SystemProfile | None) -> tuple[list[Hit], list[tuple[Hit, float, list[str]]], list[str]]:
        """(entry hits, [(template hit, score with services, evidence lines)], notes)."""
        entries_index, templates_index = default_indexes()
        text = normalize(goal)
        notes: list[str] = []
        excluded_targets: set[str] = set()
        templates = []
        self.declines = []
        ranked_entries = entries_index.rank(goal)
        # a target whose own log line or error message the goal quotes is named by it
        quoted = {h.doc.target for h in ranked_entries if h.phrases}
        for hit in templates_index.rank(goal):
            if hit.doc.kind == "decline":
                self.declines.append(hit)
                continue
            wl = workloads()[hit.doc.name]
            named = next((m.group(0) for p in wl.excludes if (m := p.search(text))), None)
            if named is not None:
                # a product this template is not for ("a kafka broker" is not Mosquitto)
                notes.append(f"{named!r} is named: cli-ai's {wl.title} target is not for it")
                excluded_targets.add(wl.target)
                continue
            if wl.requires and wl.target not in quoted and not any(p.search(text) for p in wl.requires):
                continue  # a product's target, and the goal names neither the product, its vocabulary nor its messages
            score, lines = hit.score, []
            if profile is not None:
                for svc in sorted(wl.services):
                    if profile.runs(svc):
                        score += hit.score * RUNNING_BONUS
                        lines.append(f"  {svc} is running here (+{hit.score * RUNNING_BONUS:.2f})")
                    elif profile.has_installed(svc):
                        score += hit.score * INSTALLED_BONUS
                        lines.append(f"  {svc} is installed here (+{hit.score * INSTALLED_BONUS:.2f})")
            templates.append((hit, round(score, 4), lines))
        templates.sort(key=lambda t: -t[1])
        # Another target's options count only when the goal speaks of that target
        # ("connection refused" is a kernel matter unless the goal is about MQTT).
        spoken = {t[0].doc.target for t in templates if t[1] >= OTHER_TARGET_CONTEXT}
        entries = [h for h in ranked_entries
                   if h.doc.target not in excluded_targets and (templated(h.doc.target) or h.doc.target in spoken)]
        from cli_ai.strategist.declines import known_names, weigh

        self.declines = weigh(goal, self.declines, known_names(d.name for d in entries_index.docs))
        return entries, templates, notes

    def plan(self, goal: str, profile: SystemProfile) -> PlanResult:
        if not goal or not goal.strip():
            raise StrategistError("the goal is empty; say what to tune, e.g. \"my postgres stalls on writes\"")
        self._target_hits = []
        entries, templates, notes = self.rank(goal, profile)
        reasoning = [f"goal: {goal.strip()!r}", *notes]
        top_e = entries[0] if entries and entries[0].score >= MIN_ENTRY else None
        # with no catalogue entry matching, a workload named in one word ("postgres") is enough
        top_t = templates[0] if templates and templates[0][1] >= (MIN_TEMPLATE if top_e else MIN_TEMPLATE_ALONE) \
            else None
        no = self.declines[0] if self.declines else None
        if no is not None and (no.decisive or no.score >= MIN_TEMPLATE * 0.5
                               and no.score >= (templates[0][1] if templates else 0.0)
                               and no.score >= DECLINE_OVER_ENTRY * (entries[0].score if entries else 0.0)):
            raise self._decline(goal, entries, templates, reason=no)
        from cli_ai.targets import get_target

        if top_t is not None and get_target(top_t[0].doc.target).planning != "templates":
            if top_e is None or top_e.doc.target == top_t[0].doc.target or top_e.score < STRONG_ENTRY:
                self._explain_template(reasoning, top_t, templates)
                self._explain_target_entries(reasoning, entries, top_t[0].doc.target)
                return self._ready_spec(workloads()[top_t[0].doc.name], goal, reasoning, profile)
        spoken = {t[0].doc.target: t[1] for t in reversed(templates)}  # each target's best template score
        # another target's option leads only when the goal speaks of that target most,
        # or nearly as much when the option itself is strongly matched ("batch the WAL flushes")
        if top_e is not None and not templated(top_e.doc.target) and spoken.get(top_e.doc.target, 0) >= MIN_TEMPLATE_ALONE \
                and templates and (templates[0][0].doc.target == top_e.doc.target
                                   or top_e.score >= STRONG_ENTRY and spoken[top_e.doc.target] >= LEAD_TIE * templates[0][1]):
            wl = template_for(top_e.doc.target)
            reasoning.append(f"best match: the {top_e.doc.target} option {top_e.doc.name} "
                             f"(score {top_e.score:g}): {top_e.evidence()}")
            self._explain_target_entries(reasoning, entries, top_e.doc.target)
            return self._ready_spec(wl, goal, reasoning, profile)
        # From here on the plan is a sysctl one: only kernel entries compete.
        entries = [h for h in entries if templated(h.doc.target)]
        top_e = entries[0] if entries and entries[0].score >= MIN_ENTRY else None
        # A template must score MIN_TEMPLATE to compete with matching entries; with
        # no entry matching, a workload named in one word ("database") is enough.
        floor = MIN_TEMPLATE if top_e is not None else MIN_TEMPLATE_ALONE
        sysctl_t = next((t for t in templates if templated(t[0].doc.target) and t[1] >= floor), None)
        if top_e is not None:
            # The template and the catalogue compete on the same evidence: a
            # template's score plus the matching entries it tunes, against the
            # best group of matching entries on their own.
            group = sum(h.score for h in self._group(entries)[:3])
            support = 0.0
            if sysctl_t is not None:
                tuned = {t["param"] for t in workloads()[sysctl_t[0].doc.name].params}
                support = sysctl_t[1] + sum(h.score for h in [h for h in entries if h.doc.name in tuned][:3])
                reasoning.append(f"template {sysctl_t[0].doc.name} with the entries it tunes: {support:.2f}; "
                                 f"the best matching entries on their own: {group:.2f}")
            if sysctl_t is None or (group > support and entries[0].score >= STRONG_ENTRY):
                return self._from_entries(entries, goal, profile, reasoning)
        if sysctl_t is not None:
            self._explain_template(reasoning, sysctl_t, templates)
            self._explain_entries(reasoning, entries)
            wl = workloads()[sysctl_t[0].doc.name]
            in_template = {t["param"] for t in wl.params}
            # a param the goal names outright (not one that shares a word or two
            # with it) must be one the benchmark moves
            named = next((h.doc.name for h in entries if h.score >= STRONG_ENTRY and h.doc.name in in_template), None)
            return self._from_template(wl, goal, profile, reasoning, required=named)
        raise self._decline(goal, entries, templates)

    # ------------------------------------------------------------------ explanations
    def _explain_template(self, reasoning: list[str], chosen, templates) -> None:
        hit, score, lines = chosen
        wl = workloads()[hit.doc.name]
        reasoning.append(f"workload: {wl.title} [{wl.id}], score {score:g}: matched {hit.evidence()}")
        reasoning.extend(lines)
        runner_up = next((t for t in templates if t[0].doc.name != hit.doc.name), None)
        if runner_up is not None:
            reasoning.append(f"runner-up: {workloads()[runner_up[0].doc.name].title} [{runner_up[0].doc.name}], "
                             f"score {runner_up[1]:g}: {runner_up[0].evidence()}")
        else:
            reasoning.append("runner-up: none (no other workload matched)")

    def _explain_target_entries(self, reasoning: list[str], entries: list[Hit], target: str) -> None:
        """Which of that target's settings the goal's words point to (the ready spec tunes its own set)."""
        mine = [h for h in entries if h.doc.target == target][:3]
        self._target_hits = mine
        if mine:
            reasoning.append(f"{target} settings the goal's words point to: "
                             + "; ".join(f"{h.doc.name} ({h.evidence()})" for h in mine))

    @staticmethod
    def _explain_entries(reasoning: list[str], entries: list[Hit]) -> None:
        best = [h for h in entries[:3] if h.score >= MIN_ENTRY]
        if best:
            reasoning.append("catalogue entries that match best: "
                             + "; ".join(f"{h.doc.name} ({h.score:g}: {h.evidence()})" for h in best))

    @staticmethod
    def _left_out(goal: str, used: list[Hit]) -> list[str]:
        matched = {w for h in used for w in h.matched}
        for h in used:
            matched.update(words(" ".join(h.phrases)))
        return [w for w in content_words(goal) if w not in matched]

    def _decline(self, goal: str, entries: list[Hit], templates, reason: Hit | None = None) -> GoalDeclined:
        near = [h for h in entries[:2]] + [t[0] for t in templates[:1]]
        closest = "; ".join(f"{h.doc.name} ({h.score:g}: {h.evidence()})" for h in near if h.score > 0)
        if reason is not None:
            headline = f"cli-ai does not plan this: {reason.doc.data['reason']}"
            first = f"{headline} (matched {reason.evidence()})"
        else:
            headline = "the goal matches nothing cli-ai can tune"
            first = headline + (f" (closest, too weak: {closest})" if closest else " (no word of it is in the catalogue)")
        problems = [
            first,
            can_tune_text(),
            "say what ails the machine, for example: " + "; ".join(repr(g) for g in EXAMPLE_GOALS),
        ]
        return GoalDeclined(headline, problems=problems)

    # ------------------------------------------------------------------ from catalogue entries
    @staticmethod
    def _group(entries: list[Hit]) -> list[Hit]:
        """The sysctl entries that match nearly as well as the best one."""
        if not entries:
            return []
        return [h for h in entries if templated(h.doc.target) and h.score >= GROUP_FRACTION * entries[0].score]

    def _from_entries(self, entries: list[Hit], goal: str, profile: SystemProfile, reasoning: list[str]) -> PlanResult:
        top = entries[0]
        group = self._group(entries)
        reasoning.append(f"planned from the catalogue: {top.doc.name} matches best (score {top.score:g}: {top.evidence()})")
        knobs: list[dict[str, Any]] = []
        skipped: list[str] = []
        used: list[Hit] = []
        from cli_ai.safety.constraints import exclusive_twin

        for h in group:
            entry = lookup(h.doc.name)
            if entry is None:
                continue
            twin = exclusive_twin(entry.name)
            if twin is not None and any(k["param"] == twin for k in knobs):
                skipped.append(f"{entry.name}: a spec tunes at most one of it and {twin}")
                continue
            if profile.sysctl_present(entry.name) is False:
                why = f" (removed in Linux {entry.removed_in})" if entry.removed_in else ""
                skipped.append(f"{entry.name}: not on this kernel {profile.kernel}{why}")
                continue
            knob, why_not = build_knob(_catalogue_template(entry), entry, profile)
            if knob is None:
                skipped.append(f"{entry.name}: {why_not}")
                continue
            knobs.append(knob)
            used.append(h)
        if not knobs:
            raise StrategistError(
                "the matching catalogue entries have no param this kernel offers",
                problems=["the matching catalogue entries have no param this kernel offers:", *skipped],
            )
        from cli_ai.strategist.relevance import moves_of

        params = [k["param"] for k in knobs]
        candidates = self._benchmarks_for(used, goal)
        try:
            # The best-matching param leads: the benchmark must be one it moves. A
            # near-tie (within LEAD_TIE) may lead instead when the best moves
            # nothing; otherwise the plan is refused rather than tuning the
            # runner-up in its place.
            scores = {h.doc.name: h.score for h in used}
            lead = next((p for p in params if moves_of(p) and scores.get(p, 0) >= LEAD_TIE * scores[params[0]]),
                        params[0])
            bid, bench, bench_lines, warnings = choose_benchmark(candidates, params, profile, required=lead)
        except LookupError:
            from cli_ai.errors import BenchmarkCannotMeasure

            raise BenchmarkCannotMeasure(
                f"no benchmark cli-ai runs can measure {lead}, the param this goal points to "
                f"({top.evidence()}), so no gain could be shown; write a spec with a benchmark of your own that "
                "does (`cli-ai examples` shows the shape), or set it yourself (sysctl -w) on your own judgement",
                params=(lead,),
            ) from None
        from cli_ai.strategist.relevance import moves_of

        keep = [k for k in knobs if moves_of(k["param"]) is None or bid in (moves_of(k["param"]) or {})]
        for k in knobs:
            if k not in keep:
                skipped.append(f"{k['param']}: it cannot move {bid}")
        keep = keep[:MAX_ENTRY_PARAMS]
        for h in used:
            if any(k["param"] == h.doc.name for k in keep):
                reasoning.append(f"  {h.doc.name}: matched {h.evidence()} (score {h.score:g})")
        left = self._left_out(goal, [h for h in used if any(k["param"] == h.doc.name for k in keep)])
        if left:
            reasoning.append(f"left out: the words {', '.join(repr(w) for w in left)} matched nothing this plan tunes")
        return self._finish(
            workload_name=f"{top.doc.name} ({_clip(one_line(goal), 60)})",
            summary=f"the catalogue entries that match the goal best, led by {top.doc.name}",
            knobs=keep, skipped=skipped, bid=bid, bench=bench, bench_lines=bench_lines, warnings=warnings,
            goal=goal, profile=profile, reasoning=reasoning, template=None, caveat=None,
        )

    @staticmethod
    def _benchmarks_for(used: list[Hit], goal: str) -> list[str]:
        """Benchmark ids the matching entries can move: one whose tool or service
        the goal names first, then the one whose description shares most of
        the goal's words, then by how much matching evidence moves it."""
        from cli_ai.strategist.relevance import moves_of

        table = load_templates()[1]
        goal_words = set(words(goal))
        weight: dict[str, float] = {}
        for h in used:
            for bid in (moves_of(h.doc.name) or {}):
                weight[bid] = weight.get(bid, 0.0) + h.score
        content = set(content_words(goal))
        named_here: dict[str, int] = {}
        fits: dict[str, int] = {}
        for bid in weight:
            b = table.get(bid, {})
            named = {b.get("tool", "")} | set(b.get("needs_running") or [])
            named_here[bid] = int(bool(goal_words & {w for n in named for w in words(n)}))
            # what the benchmark measures, in the goal's own words ("idle", "firewall")
            fits[bid] = len(content & set(words(b.get("fits", ""))))
        return sorted(weight, key=lambda b: (-named_here[b], -fits[b], -weight[b], b))


    # ------------------------------------------------------------------ targets with ready specs
    def _ready_spec(self, wl: Workload, goal: str, reasoning: list[str],
                    profile: SystemProfile | None = None) -> PlanResult:
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
                tuned = set(spec.params)
                for h in self._target_hits:
                    if h.doc.name not in tuned:
                        reasoning.append(f"  note: {h.doc.name} matches the goal ({h.evidence()}) but this spec does "
                                         f"not tune it; copy the spec (cli-ai examples copy {wl.example} .) and add it")
                from cli_ai.targets import get_target

                warnings = get_target(wl.target).plan_hints(profile)
                return PlanResult(
                    warnings=warnings,
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
    def _from_template(self, wl: Workload, goal: str, profile: SystemProfile, reasoning: list[str],
                       required: str | None = None) -> PlanResult:
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
        params = [k["param"] for k in knobs]
        try:
            bid, bench, bench_lines, warnings = choose_benchmark(
                list(wl.benchmarks), params, profile, required=required if required in params else None)
        except LookupError:
            from cli_ai.errors import BenchmarkCannotMeasure

            raise BenchmarkCannotMeasure(f"no benchmark cli-ai runs can measure the {wl.id} template's knobs") from None
        from cli_ai.strategist.relevance import moves_of

        keep = [k for k in knobs if moves_of(k["param"]) is None or bid in (moves_of(k["param"]) or {})]
        skipped += [f"{k['param']}: it cannot move {bid}" for k in knobs if k not in keep]
        return self._finish(
            workload_name=wl.title, summary=wl.summary, knobs=keep, skipped=skipped, bid=bid, bench=bench,
            bench_lines=bench_lines, warnings=warnings, goal=goal, profile=profile, reasoning=reasoning,
            template=wl.id, caveat=wl.caveats.get(bid),
        )

    def _finish(self, *, workload_name: str, summary: str, knobs: list[dict[str, Any]], skipped: list[str], bid: str,
                bench: dict[str, Any], bench_lines: list[str], warnings: list[str], goal: str, profile: SystemProfile,
                reasoning: list[str], template: str | None, caveat: str | None) -> PlanResult:
        """The spec from its knobs and benchmark, with the explanation."""
        reasoning.append("params (each range inside the catalogue's safe range):")
        for k in knobs:
            entry = lookup(k["param"])
            reasoning.append(
                f"  {k['param']} {_knob_range_text(k)} (safe {entry.range_text() if entry else '?'}): {k.get('description', '')}"
            )
        for s in skipped:
            reasoning.append(f"  skipped {s}")
        runner = bench["runner"]
        args = _substitute(list(bench.get("args", [])), profile)
        reasoning.append(f"benchmark: {runner} [{bid}]: {bench.get('fits', '')}; reward metric {bench['metric']}; "
                         f"the catalogue says every planned knob can move it")
        reasoning.extend(bench_lines)
        if bench.get("note"):
            reasoning.append(f"  note: {bench['note']}")
        if caveat:
            reasoning.append(f"  caveat: {caveat}")
        benchmark: dict[str, Any] = {"runner": runner, "timeout_s": bench.get("timeout_s", 120)}
        if args:
            benchmark["args"] = args
        training = dict(TRAINING)
        if runner in ("tcp-accept", "probe"):
            training["budget"] = 40 if runner == "tcp-accept" else 20
        spec_dict: dict[str, Any] = {
            "workload_name": workload_name,
            "description": f"Planned offline for the goal {_clip(one_line(goal), 300)!r}: {summary}.",
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
            what = f"the offline template {template}" if template else "the offline planner"
            raise StrategistError(
                f"{what} built an invalid spec (a cli-ai bug)",
                problems=[f"{what} built an invalid spec (a cli-ai bug):", *exc.problems],
            ) from None
        return PlanResult(
            spec_dict=spec_dict,
            spec=spec,
            provider="offline",
            template=template or "catalogue",
            reasoning=reasoning,
            warnings=warnings,
        )


def _catalogue_template(entry) -> dict[str, Any]:
    """A template line for a catalogue entry: its whole safe range (vectors and
    enums as the catalogue gives them)."""
    tpl: dict[str, Any] = {"param": entry.name, "why": entry.description}
    if entry.type == "enum":
        tpl["values"] = list(entry.values or ())
    elif entry.type == "vector":
        tpl["elements"] = [{"min": e.min, "max": e.max, **({"scale": "log"} if e.scale == "log" else {})}
                           for e in entry.elements or ()]
    elif entry.type in ("int", "float"):
        tpl["min"], tpl["max"] = entry.min, entry.max
        if entry.scale == "log":
            tpl["scale"] = "log"
    return tpl


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["OfflineStrategist", "normalize", "compile_phrase", "load_templates", "workloads", "can_tune_text"]
