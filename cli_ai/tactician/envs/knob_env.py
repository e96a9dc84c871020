"""KnobTuningEnv: apply values, run the benchmark, observe the system, reward.

One step is one benchmark evaluation. `reset()` measures the baseline with the
original values the first time, `baseline_runs` times so the noise is known
(later resets only re-observe: a benchmark run is the expensive thing the
budget counts). Actions are absolute: the action vector is the whole
configuration, mapped into the safe ranges by `KnobSpace`. So the reward of a
step depends on its action alone: for the agents this env is a bandit, and
their discount factor is 0 unless the spec sets one or PER-DDPG runs
with a preset (`agents.factory.plan_knob_agent`).
`step_values` is the same step for an optimiser that proposes native values.

A failed step (value refused, benchmark crash, timeout, metric missing) gets a
finite penalty and counts toward the failure limit; the env never raises for
it, except `TooManyFailures` when the limit is reached, which stops the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np

from cli_ai.errors import BackendWriteError, BenchmarkError, TargetError
from cli_ai.safety.guard import FailureCounter
from cli_ai.core.backend import Value
from cli_ai.tactician.knobs import KnobSpace
from cli_ai.tactician.observe import Observer, select
from cli_ai.tactician.rewards import Measurement, Reward, WeightedReward
from cli_ai.tactician.rewards.base import failure_reward

ENV_ID = "cli_ai/KnobTuning-v0"


@dataclass(frozen=True)
class Evaluation:
    """One benchmark evaluation as the env needs it."""

    metric: float
    metrics: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    throughput: float | None = None
    latency_ms: float | None = None
    system: dict[str, float] | None = None  # set when the evaluator measured the system itself


Evaluator = Callable[[Mapping[str, Value]], Evaluation]


class KnobTuningEnv(gym.Env):
    """Backend + benchmark + observer + reward, as a gymnasium env."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        space: KnobSpace,
        evaluate: Evaluator,
        *,
        apply: Callable[[Mapping[str, Value]], None],
        read: Callable[[Sequence[str]], dict[str, Value]],
        observer: Observer,
        reward: Reward | None = None,
        state_metrics: Sequence[str] = ("cpu_utilization", "iowait", "memory_used", "memory_pressure"),
        max_steps_per_episode: int = 50,
        failure_penalty: float = -1.0,
        failures: FailureCounter | None = None,
        baseline_runs: int = 1,
    ):
        """
        :param space: the knobs and their normalized <-> native mapping
        :param evaluate: runs the benchmark for the values just applied
        :param apply: writes values (a Guard's `apply`, so every write is journaled)
        :param read: reads current values (for the observation)
        :param observer: system metrics over each benchmark window
        :param reward: scores a measurement against the baseline (default: seed 004's weighted)
        :param state_metrics: which system metrics go into the observation, in order
        :param max_steps_per_episode: episode length (truncation)
        :param failure_penalty: reward of a failed step (finite); never more than
            the reward's floor minus a margin, so a failure is worse than any valid outcome
        :param failures: consecutive-failure limit shared with the run
        :param baseline_runs: how many times the original values are measured
        """
        super().__init__()
        if space.dims == 0:
            raise ValueError("the action space has no dimension to tune (every element is fixed)")
        self.space = space
        self.evaluate = evaluate
        self._apply = apply
        self._read = read
        self.observer = observer
        self.reward_fn: Reward = reward or WeightedReward()
        self.state_metrics = list(state_metrics)
        self.max_steps_per_episode = max_steps_per_episode
        self.failure_penalty = float(failure_penalty)
        self.failures = failures or FailureCounter(3)
        self.baseline_runs = max(1, int(baseline_runs))
        n_obs = len(self.state_metrics) + space.dims
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(n_obs,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(space.dims,), dtype=np.float32)
        self.baseline: Evaluation | None = None
        self.baseline_values: dict[str, Value] = {}
        self.baseline_evaluations: list[Evaluation] = []
        self.evaluations = 0
        self._episode_steps = 0
        self._last_system: dict[str, float] = {}

    # ------------------------------------------------------------------ helpers
    def _observation(self) -> np.ndarray:
        values = self._read(self.space.names)
        obs = np.concatenate(
            [np.asarray(select(self._last_system, self.state_metrics), dtype=np.float32), self.space.to_action(values)]
        )
        return np.clip(obs, -1.0, 1.0).astype(np.float32)

    def _run(self, values: Mapping[str, Value]) -> tuple[Evaluation, dict[str, float]]:
        snap = self.observer.snapshot()
        self.evaluations += 1
        result = self.evaluate(values)
        system = result.system if result.system is not None else self.observer.since(snap)
        return result, system

    def measure_baseline(self) -> Evaluation:
        """Benchmark the original values `baseline_runs` times; the reward is
        relative to their mean. Any failure here stops the run: a baseline that
        cannot be measured leaves nothing to compare with."""
        self.baseline_values = self._read(self.space.names)
        runs: list[tuple[Evaluation, dict[str, float]]] = []
        for _ in range(self.baseline_runs):
            runs.append(self._run(self.baseline_values))
        self.baseline_evaluations = [r for r, _ in runs]
        result, system = _mean_evaluation(runs)
        self._last_system = system
        self.baseline = result
        self.reward_fn.reset(self._measurement(result, system))
        return result

    @staticmethod
    def _measurement(result: Evaluation, system: Mapping[str, float]) -> Measurement:
        return Measurement(
            metric=result.metric,
            throughput=result.throughput,
            latency_ms=result.latency_ms,
            iowait=system.get("iowait", 0.0),
            memory_pressure=system.get("memory_pressure", 0.0),
            extra=dict(result.metrics),
        )

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._episode_steps = 0
        info: dict[str, Any] = {}
        if self.baseline is None:
            base = self.measure_baseline()
            info = {"baseline": True, "metric": base.metric, "values": dict(self.baseline_values),
                    "duration_s": base.duration_s, "metrics": dict(base.metrics),
                    "runs": [{"metric": r.metric, "metrics": dict(r.metrics), "duration_s": r.duration_s}
                             for r in self.baseline_evaluations]}
        return self._observation(), info

    def step(self, action):
        return self.step_values(self.space.to_native(np.asarray(action, dtype=np.float64)))

    def step_values(self, values: Mapping[str, Value]):
        """One evaluation of a whole configuration of native values (already
        inside the safe ranges): apply, benchmark, observe, score."""
        values = self.space.repair(values)  # never a configuration that breaks a rule between knobs
        self._episode_steps += 1
        truncated = self._episode_steps >= self.max_steps_per_episode
        started = time.monotonic()
        try:
            self._apply(values)
            result, system = self._run(values)
        except (BackendWriteError, BenchmarkError, TargetError) as exc:
            info = {"values": values, "failed": True, "error": str(exc), "metric": float("nan"),
                    "duration_s": time.monotonic() - started, "reward_components": {}}
            self.failures.failure(str(exc))  # raises TooManyFailures at the limit
            return self._observation(), failure_reward(self.reward_fn, self.failure_penalty), False, truncated, info
        self.failures.success()
        self._last_system = system
        scored = self.reward_fn.score(self._measurement(result, system))
        terminated = bool(scored.components.get("terminate", False))
        info = {
            "values": values,
            "failed": False,
            "metric": result.metric,
            "metrics": dict(result.metrics),
            "duration_s": result.duration_s,
            "reward_components": dict(scored.components),
            "system": dict(system),
        }
        return self._observation(), float(scored.reward), terminated, truncated, info


def _mean_evaluation(runs: Sequence[tuple[Evaluation, Mapping[str, float]]]) -> tuple[Evaluation, dict[str, float]]:
    """One evaluation standing for several of the same configuration: the mean
    of each number the runs share (a single run is returned as it is)."""
    if len(runs) == 1:
        result, system = runs[0]
        return result, dict(system)

    def mean(xs):
        xs = [float(x) for x in xs if x is not None and np.isfinite(x)]
        return float(np.mean(xs)) if xs else None

    evals = [r for r, _ in runs]
    shared = set.intersection(*(set(r.metrics) for r in evals))
    metrics = {k: mean(r.metrics[k] for r in evals) for k in sorted(shared)}
    systems = [dict(s) for _, s in runs]
    system_keys = set.intersection(*(set(s) for s in systems)) if systems else set()
    merged = Evaluation(
        metric=mean(r.metric for r in evals),
        metrics={k: v for k, v in metrics.items() if v is not None},
        duration_s=float(sum(r.duration_s for r in evals)),
        throughput=mean(r.throughput for r in evals),
        latency_ms=mean(r.latency_ms for r in evals),
    )
    return merged, {k: mean(s[k] for s in systems) or 0.0 for k in sorted(system_keys)}


def register() -> None:
    """Register the env id (it needs constructor arguments, so `gym.make` passes kwargs)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="cli_ai.tactician.envs.knob_env:KnobTuningEnv")


register()
