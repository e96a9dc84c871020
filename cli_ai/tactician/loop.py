"""The tuning loop: an agent searches an env within a budget of evaluations.

`Tracker` sees every evaluation (through `RecordingWrapper`), keeps the best
configuration, emits a `step` event per evaluation and says when the budget is
spent; the agent's callback stops learning then. The loop never prints.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import gymnasium as gym

from cli_ai.events import Event, EventSink, null_sink
from cli_ai.tactician.backends.base import Value, to_json_value


@dataclass
class StepRecord:
    """One benchmark evaluation. Index 0 is the baseline."""

    index: int
    values: dict[str, Value]
    metric: float | None
    reward: float | None = None
    components: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    system: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    failed: bool = False
    error: str | None = None
    is_best: bool = False
    improvement_pct: float | None = None
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["values"] = {k: to_json_value(v) for k, v in self.values.items()}
        if d["metric"] is not None and not math.isfinite(d["metric"]):
            d["metric"] = None
        return d


def improvement_pct(value: float, baseline: float, direction: str) -> float:
    """Percent better than the baseline (positive is better in either direction)."""
    if baseline == 0 or not (math.isfinite(value) and math.isfinite(baseline)):
        return 0.0
    change = (value - baseline) / abs(baseline) * 100.0
    return -change if direction == "minimize" else change


def is_better(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "minimize" else a > b


class Tracker:
    """Best-so-far, budget and events over the evaluations of one run."""

    def __init__(self, *, direction: str, budget: int, sink: EventSink = null_sink):
        self.direction = direction
        self.budget = budget
        self.sink = sink
        self.records: list[StepRecord] = []
        self.baseline: StepRecord | None = None
        self.best: StepRecord | None = None
        self.started = time.monotonic()

    @property
    def evaluations(self) -> int:
        return len(self.records)

    @property
    def exhausted(self) -> bool:
        return self.evaluations >= self.budget

    @property
    def failed_steps(self) -> int:
        return sum(1 for r in self.records if r.failed)

    def record_baseline(self, info: Mapping[str, Any]) -> StepRecord:
        rec = StepRecord(
            index=0,
            values=dict(info.get("values", {})),
            metric=float(info["metric"]),
            metrics=dict(info.get("metrics", {})),
            duration_s=float(info.get("duration_s", 0.0)),
            is_best=True,
            improvement_pct=0.0,
            elapsed_s=time.monotonic() - self.started,
        )
        self.records.append(rec)
        self.baseline = rec
        self.best = rec
        self.sink(Event("baseline", {"record": rec, "budget": self.budget}))
        return rec

    def record_step(self, reward: float, info: Mapping[str, Any]) -> StepRecord:
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
        )
        if not failed and metric is not None and math.isfinite(metric):
            if self.baseline is not None:
                rec.improvement_pct = improvement_pct(metric, self.baseline.metric, self.direction)
            if self.best is None or is_better(metric, self.best.metric, self.direction):
                rec.is_best = True
                self.best = rec
        self.records.append(rec)
        self.sink(Event("step", {"record": rec, "evaluations": self.evaluations, "budget": self.budget,
                                 "best": self.best}))
        return rec


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
