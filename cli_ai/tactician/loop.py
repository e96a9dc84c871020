"""The tuning loop: an optimiser or an agent searches within a budget of evaluations.

A run has three phases, all inside the budget: the baseline (the current
values, measured a few times so the noise is known), the search (an optimiser
through ask-and-tell, `run_optimizer`, or an RL agent through the gymnasium
env, `run_agent`), and the re-measurement of the top few configurations
(`recheck`), so that the best is what the evidence supports and not the
single luckiest sample (`Tracker.select_best`).

`Tracker` sees every evaluation (through `RecordingWrapper` or the optimiser
driver), emits a `baseline` / `step` event per evaluation and says when the
budget is spent; an agent's callback stops learning then. The loop never prints.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import gymnasium as gym

from cli_ai.events import Event, EventSink, null_sink
from cli_ai.core.backend import Value, to_json_value
from cli_ai.core.records import StepRecord  # noqa: F401  (part of this module's public names)


def improvement_pct(value: float, baseline: float, direction: str) -> float:
    """Percent better than the baseline (positive is better in either direction)."""
    if baseline == 0 or not (math.isfinite(value) and math.isfinite(baseline)):
        return 0.0
    change = (value - baseline) / abs(baseline) * 100.0
    return -change if direction == "minimize" else change


def is_better(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "minimize" else a > b


def config_key(values: Mapping[str, Value]) -> str:
    """A canonical text of a configuration, to group repeated measurements."""
    return json.dumps({k: to_json_value(v) for k, v in sorted(values.items())}, sort_keys=True, default=str)


def coefficient_of_variation(xs: Sequence[float]) -> float | None:
    """stdev / |mean| of repeated measurements (None below two or at mean 0)."""
    xs = [x for x in xs if math.isfinite(x)]
    if len(xs) < 2:
        return None
    mean = statistics.fmean(xs)
    return statistics.stdev(xs) / abs(mean) if mean else None


@dataclass
class Candidate:
    """One configuration with all its successful measurements."""

    values: dict[str, Value]
    metrics: list[float]
    records: list[StepRecord]
    is_baseline: bool = False

    @property
    def mean(self) -> float:
        return statistics.fmean(self.metrics)

    @property
    def runs(self) -> int:
        return len(self.metrics)


class Tracker:
    """Best-so-far, budget and events over the evaluations of one run.

    `budget` counts every evaluation (baseline runs and re-measurements too);
    `search_limit`, when set, stops the search phase early so the last few
    evaluations are left for `recheck`."""

    def __init__(self, *, direction: str, budget: int, sink: EventSink = null_sink):
        self.direction = direction
        self.budget = budget
        self.search_limit = budget
        self.sink = sink
        self.records: list[StepRecord] = []
        self.baseline: StepRecord | None = None  # the first baseline run
        self.best: StepRecord | None = None  # the best single measurement
        self.started = time.monotonic()

    @property
    def evaluations(self) -> int:
        return len(self.records)

    @property
    def exhausted(self) -> bool:
        return self.evaluations >= min(self.search_limit, self.budget)

    @property
    def remaining(self) -> int:
        return max(0, min(self.search_limit, self.budget) - self.evaluations)

    @property
    def failed_steps(self) -> int:
        return sum(1 for r in self.records if r.failed)

    @property
    def baseline_records(self) -> list[StepRecord]:
        return [r for r in self.records if r.phase == "baseline"]

    @property
    def baseline_metric(self) -> float | None:
        """The mean of the baseline runs: what improvements are measured against."""
        runs = [r.metric for r in self.baseline_records if r.usable]
        return statistics.fmean(runs) if runs else None

    @property
    def baseline_cv(self) -> float | None:
        return coefficient_of_variation([r.metric for r in self.baseline_records if r.usable])

    def improvement(self, metric: float) -> float | None:
        base = self.baseline_metric
        return None if base is None else improvement_pct(metric, base, self.direction)

    def record_baseline(self, info: Mapping[str, Any]) -> StepRecord:
        """The baseline runs of the current values (`info["runs"]`, or one run)."""
        runs = list(info.get("runs") or [info])
        values = dict(info.get("values", {}))
        first = None
        for run in runs:
            rec = StepRecord(
                index=len(self.records),
                values=dict(values),
                metric=float(run["metric"]),
                metrics=dict(run.get("metrics", {})),
                duration_s=float(run.get("duration_s", 0.0)),
                elapsed_s=time.monotonic() - self.started,
                phase="baseline",
            )
            self.records.append(rec)
            first = first or rec
        base = self.baseline_metric
        for rec in self.baseline_records:
            rec.improvement_pct = improvement_pct(rec.metric, base, self.direction) if base is not None else 0.0
        self.baseline = first
        self.best = max(self.baseline_records, key=self._score)
        self.best.is_best = True
        self.sink(Event("baseline", {"record": first, "budget": self.budget, "runs": self.baseline_records,
                                     "mean": base, "cv": self.baseline_cv}))
        return first

    def _rank(self, metric: float) -> float:
        """Larger is better, whichever the direction."""
        return metric if self.direction == "maximize" else -metric

    def _score(self, rec: StepRecord) -> float:
        return self._rank(rec.metric)

    def record_step(self, reward: float, info: Mapping[str, Any], *, phase: str = "search") -> StepRecord:
        failed = bool(info.get("failed", False))
        metric = info.get("metric")
        metric = float(metric) if metric is not None else None
        rec = StepRecord(
            index=len(self.records),
            values=dict(info.get("values", {})),
            metric=metric,
            reward=float(reward),
            components=dict(info.get("reward_components", {})),
            metrics=dict(info.get("metrics", {})),
            system=dict(info.get("system", {})),
            duration_s=float(info.get("duration_s", 0.0)),
            failed=failed,
            error=info.get("error"),
            elapsed_s=time.monotonic() - self.started,
            phase=phase,
        )
        if rec.usable:
            rec.improvement_pct = self.improvement(metric)
            if self.best is None or is_better(metric, self.best.metric, self.direction):
                rec.is_best = True
                self.best = rec
        self.records.append(rec)
        self.sink(Event("step", {"record": rec, "evaluations": self.evaluations, "budget": self.budget,
                                 "best": self.best}))
        return rec

    # ------------------------------------------------------------------ evidence
    def candidates(self) -> list[Candidate]:
        """Every configuration measured, with all its measurements; one that
        failed even once is left out (a best that sometimes crashes is not one)."""
        groups: dict[str, Candidate] = {}
        broken: set[str] = set()
        for rec in self.records:
            key = config_key(rec.values)
            if not rec.usable:
                broken.add(key)
                continue
            cand = groups.setdefault(key, Candidate(dict(rec.values), [], [], rec.phase == "baseline"))
            cand.metrics.append(float(rec.metric))
            cand.records.append(rec)
        return [c for k, c in groups.items() if k not in broken or c.is_baseline]

    def top_candidates(self, k: int) -> list[Candidate]:
        """The k most promising configurations other than the baseline, by mean."""
        others = [c for c in self.candidates() if not c.is_baseline]
        return sorted(others, key=lambda c: self._rank(c.mean), reverse=True)[:k]

    def select_best(self) -> Candidate | None:
        """The configuration the evidence supports: among the baseline and the
        configurations measured more than once, the best mean. With no
        re-measurement at all (tiny budgets) it is the best single measurement."""
        cands = self.candidates()
        if not cands:
            return None
        repeated = [c for c in cands if c.runs >= 2 or c.is_baseline]
        pool = repeated if any(not c.is_baseline for c in repeated) else cands
        return max(pool, key=lambda c: self._rank(c.mean))


#: Below this budget every evaluation goes to the search: on bench/search.py
#: at budget 20, two re-measurements instead of two more search evaluations
#: cost `auto` 82 -> 98 % on the smooth surface (docs/benchmarks.md), and the
#: verification after the budget still guards against a lucky sample.
RECHECK_MIN_BUDGET = 30


def recheck_runs(budget: int) -> int:
    """Evaluations kept back to re-measure the top few: about a tenth of the
    budget, none on small budgets, at most five."""
    return 0 if budget < RECHECK_MIN_BUDGET else min(5, budget // 10)


def recheck(env, tracker: Tracker) -> None:
    """Spend what is left of the budget re-measuring the top configurations
    once each, best first (so the final choice compares like with like)."""
    tracker.search_limit = tracker.budget
    for cand in tracker.top_candidates(tracker.remaining):
        if tracker.exhausted:
            break
        _, reward, _, _, info = env.step_values(cand.values)
        tracker.record_step(reward, info, phase="recheck")


def run_optimizer(optimizer, env, tracker: Tracker, *, batch: int = 1) -> None:
    """Drive an ask-and-tell optimiser until the search budget is spent.

    `env` is a `KnobTuningEnv` (its `step_values` applies through the Guard,
    benchmarks, scores, and counts failures). The baseline runs are told to
    the optimiser first. Proposals come `batch` at a time; here they are
    evaluated one after the other, and a parallel executor would evaluate
    them at once without any change to the optimiser."""
    from cli_ai.tactician.optimizers.base import Outcome

    for rec in tracker.baseline_records:
        optimizer.observe(rec.values, Outcome(rec.metric, rec.failed, rec.error))
    while not tracker.exhausted:
        for proposal in optimizer.ask(min(batch, tracker.remaining)):
            _, reward, _, _, info = env.step_values(proposal.values)
            rec = tracker.record_step(reward, info)
            optimizer.tell(proposal, Outcome(rec.metric, rec.failed, rec.error))


class RecordingWrapper(gym.Wrapper):
    """Feeds every reset/step of the wrapped env to a Tracker."""

    def __init__(self, env: gym.Env, tracker: Tracker):
        super().__init__(env)
        self.tracker = tracker

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        if info.get("baseline"):
            self.tracker.record_baseline(info)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.tracker.record_step(reward, info)
        return obs, reward, terminated, truncated, info


def budget_callback(tracker: Tracker):
    """An SB3 callback that stops learning when the budget is spent."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _BudgetCallback(BaseCallback):
        def _on_step(self) -> bool:
            return not tracker.exhausted

    return _BudgetCallback()


def reward_breakdown_callback():
    """An SB3 callback that sends every step's `info["reward_components"]` to
    SB3's logger (mean per logging interval, under `reward/`): with
    `tensorboard_log` set, the breakdown lands in TensorBoard."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _RewardBreakdown(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals.get("infos", ()):
                for key, value in (info.get("reward_components") or {}).items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                        self.logger.record_mean(f"reward/{key}", float(value))
                metric = info.get("metric")
                if isinstance(metric, (int, float)) and math.isfinite(metric):
                    self.logger.record_mean("reward/metric", float(metric))
            return True

    return _RewardBreakdown()


def sb3_callbacks(tracker, *, breakdown: bool = False):
    """The budget stop, plus the reward breakdown when it is logged somewhere."""
    from stable_baselines3.common.callbacks import CallbackList

    callbacks = [budget_callback(tracker)]
    if breakdown:
        callbacks.append(reward_breakdown_callback())
    return CallbackList(callbacks)


def run_agent(agent, tracker: Tracker, steps: int, *, breakdown: bool = False) -> None:
    """Let the agent learn for at most `steps` env steps, stopping at the budget."""
    if hasattr(agent, "policy"):  # an SB3 model
        agent.learn(total_timesteps=steps, callback=sb3_callbacks(tracker, breakdown=breakdown), progress_bar=False)
    else:
        agent.learn(steps, callback=lambda info: not tracker.exhausted)
