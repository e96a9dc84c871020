"""The autoscaling environment: scale a serverless function's workers against a workload.

Tasks arrive in phases read from a workload YAML (see `autoscaling_workload`), wait in
one queue, run on workers that need a cold start, and complete on time, late, or expire.
Every ``step_duration`` seconds the agent picks one discrete action: scale down by one
of ``scale_steps``, do nothing, or scale up by one of them. By default ``scale_steps`` is
``(1,)``: three actions, 0 = down 1, 1 = no-op, 2 = up 1. With ``(1, 2)``, five actions:
-2, -1, 0, +1, +2. The worker count stays within [min_workers, max_workers].

Observation: nine numbers, float32, clipped to the bounds of `observation_space`:

====  ======================  =====================================================
 idx  name                    meaning
====  ======================  =====================================================
  0   queued                  tasks waiting in the queue now
  1   running                 tasks being processed by workers now
  2   completed_window        tasks completed on time in the last observation_window s
  3   missed_window           tasks that missed their deadline (late, expired in the
                              queue, or rejected by a full queue) in that window
  4   workers                 workers asked for: ready plus cold-starting
  5   avg_processing_time     mean response time (completion - arrival, seconds) of
                              the tasks completed in the window; 0 if none
  6   max_processing_time     the largest such response time
  7   arrival_rate            tasks that arrived in the window / window (tasks/s)
  8   qos_rate                on-time / (on-time + missed) in the window; 1 if none
====  ======================  =====================================================

Reward of a step (terms in ``info["reward_components"]``, summing to the reward)::

    qos          =  qos_weight * (qos - target_qos)       qos: on-time share of the tasks
                                                           that finished in this step (1 if none)
    worker_cost  = -worker_weight * workers_avg / max_workers
                                                           workers_avg: live workers averaged
                                                           over the step (cold-starting and
                                                           draining ones cost too)
    queue        = -queue_weight * min(1, queued / queue_target)
    scaling      = -scaling_weight  if the action changed the worker count

An episode is one pass through the workload's phases (optionally shuffled per reset): it
terminates when the workload is over and every task has finished, and is truncated after
``max_steps`` steps. The simulated platform is a discrete-event simulation; with
``platform="local"`` the same env drives real worker processes on this machine, where
``time_scale`` wall seconds stand for one workload second.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cli_ai.errors import BadInputError, SpecError
from cli_ai.tactician.envs.autoscaling_config import (  # noqa: F401  (part of this module's public names)
    METRIC_DIRECTIONS,
    METRICS,
    OBSERVATION_NAMES,
    PLATFORMS,
    AutoscalingConfig,
    RewardWeights,
)
from cli_ai.tactician.envs.autoscaling_platform import Platform, SimulatedPlatform
from cli_ai.tactician.envs.autoscaling_workload import Workload, generate_tasks, load_workload

ENV_ID = "cli_ai/Autoscaling-v0"

class AutoscalingEnv(gym.Env):
    """See the module docstring for observation, actions and reward."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        workload: str | Path | Mapping[str, Any] | Workload | None = None,
        config: AutoscalingConfig | Mapping[str, Any] | None = None,
        *,
        platform: Platform | str | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ):
        super().__init__()
        if isinstance(platform, str):  # the config's platform name, not an instance
            overrides["platform"] = platform
            platform = None
        if isinstance(config, Mapping):
            config = AutoscalingConfig.from_dict(config)
        config = config or AutoscalingConfig()
        if overrides:
            unknown = set(overrides) - {f.name for f in fields(AutoscalingConfig)}
            if unknown:
                raise TypeError(f"AutoscalingEnv got unknown options: {', '.join(sorted(unknown))}")
            if isinstance(overrides.get("reward"), Mapping):
                overrides["reward"] = RewardWeights(**overrides["reward"])
            if "scale_steps" in overrides:
                overrides["scale_steps"] = tuple(int(s) for s in overrides["scale_steps"])
            config = replace(config, **overrides)
        config.validate()
        self.config = config
        self.workload = load_workload(workload)
        self.render_mode = render_mode
        self.cold_start = self.workload.cold_start if config.cold_start is None else float(config.cold_start)
        self.concurrency = self.workload.concurrency if config.concurrency is None else int(config.concurrency)
        self.queue_capacity = self.workload.queue_capacity if config.queue_capacity is None else int(config.queue_capacity)

        if platform is None:
            platform = self._make_platform()
        self.platform = platform
        cap = platform.max_replicas
        self.max_workers = config.max_workers if cap is None else max(1, min(config.max_workers, cap))
        self.min_workers = min(config.min_workers, self.max_workers)
        self.initial_workers = min(config.initial_workers, self.max_workers)
        if getattr(platform, "concurrency", None) is not None:
            self.concurrency = int(platform.concurrency)

        steps = tuple(sorted(config.scale_steps))
        self.action_deltas: tuple[int, ...] = tuple(-s for s in reversed(steps)) + (0,) + steps
        self.noop_action = len(steps)
        self.action_space = spaces.Discrete(len(self.action_deltas))

        window = config.observation_window
        peak = self.workload.peak_rate
        per_window = math.ceil(peak * window * 1.5) + 10
        slowest = self.workload.max_deadline + self.workload.max_task_size
        self.obs_low = np.zeros(len(OBSERVATION_NAMES), dtype=np.float32)
        self.obs_high = np.array(
            [
                self.queue_capacity,
                config.max_workers * self.concurrency,
                per_window,
                per_window,
                config.max_workers,
                slowest,
                slowest,
                peak * 1.5 + 1.0,
                1.0,
            ],
            dtype=np.float32,
        )
        self.observation_space = spaces.Box(self.obs_low, self.obs_high, dtype=np.float32)
        self.observation_names = OBSERVATION_NAMES
        self.per_worker_capacity = self.workload.per_worker_capacity(self.concurrency)

        self._shuffle_rng = np.random.default_rng(config.phase_shuffle_seed)
        self.phase_order: tuple[int, ...] = tuple(range(len(self.workload.phases)))
        self._episode_workload = self.workload
        self._tasks = None
        self._t = 0.0
        self._steps = 0
        self._obs = self._initial_obs()

    # ------------------------------------------------------------------ construction helpers
    def _make_platform(self) -> Platform:
        if self.config.platform == "local":
            from cli_ai.tactician.envs.autoscaling_local import LocalPlatform

            return LocalPlatform(
                cold_start=self.cold_start,
                queue_capacity=self.queue_capacity,
                max_replicas=self.config.max_workers,
                time_scale=self.config.time_scale,
            )
        return SimulatedPlatform(
            cold_start=self.cold_start,
            concurrency=self.concurrency,
            queue_capacity=self.queue_capacity,
        )

    def env_config(self) -> dict[str, Any]:
        """What it takes to build this env again: the config and the workload."""
        return {"config": self.config.to_dict(), "workload": self.workload.to_dict()}


    def _initial_obs(self) -> np.ndarray:
        obs = np.zeros(len(OBSERVATION_NAMES), dtype=np.float32)
        obs[4] = self.initial_workers
        obs[8] = 1.0
        return obs

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        n = len(self.workload.phases)
        if "phase_order" in options:
            order = tuple(int(i) for i in options["phase_order"])
            if sorted(order) != list(range(n)):
                raise ValueError(f"phase_order must be a permutation of 0..{n - 1}")
        elif self.config.phase_shuffle and n > 1:
            order = tuple(int(i) for i in self._shuffle_rng.permutation(n))
        else:
            order = tuple(range(n))
        self.phase_order = order
        self._episode_workload = self.workload.ordered(order)
        self._tasks = generate_tasks(self._episode_workload, self.np_random)
        self._submitted = 0
        self._t = 0.0
        self._steps = 0
        self._recent: deque = deque(maxlen=int(math.ceil(self.config.observation_window / self.config.step_duration)) + 1)
        self._ws = 0.0
        self._last_stats = None
        self.platform.reset(self.initial_workers)
        self._obs = self._initial_obs()
        info = {"time": 0.0, "workers": self.initial_workers, "phase_order": [self.workload.phases[i].name for i in order],
                "tasks": len(self._tasks)}
        return self._obs.copy(), info

    def step(self, action):
        if self._tasks is None:
            raise RuntimeError("call reset() before step()")
        a = int(action)
        if not 0 <= a < len(self.action_deltas):
            raise ValueError(f"action {action!r} is outside 0..{len(self.action_deltas) - 1}")
        cfg = self.config
        platform = self.platform
        before = platform.stats()
        delta = self.action_deltas[a]
        current = before.workers
        wanted = current + delta
        new_workers = min(max(wanted, self.min_workers), self.max_workers)
        scaled = new_workers != current
        if scaled:
            platform.scale_to(new_workers)

        t0, t1 = self._t, self._t + cfg.step_duration
        tasks = self._tasks
        j = int(np.searchsorted(tasks.arrival, t1, side="left"))
        if j > self._submitted:
            sl = slice(self._submitted, j)
            platform.submit(tasks.arrival[sl], tasks.size[sl], tasks.deadline[sl])
            self._submitted = j
        platform.advance(t1)
        out = platform.poll()
        st = platform.stats()
        self._t = t1
        self._steps += 1
        self._recent.append(out)

        # windowed observation
        lo = t1 - cfg.observation_window
        done_ok = 0
        missed = 0
        rts: list[float] = []
        for o in self._recent:
            for t, rt, ok in zip(o.done_time, o.response, o.on_time):
                if t > lo:
                    rts.append(rt)
                    if ok:
                        done_ok += 1
                    else:
                        missed += 1
            for t in o.dropped_time:
                if t > lo:
                    missed += 1
        span = min(cfg.observation_window, t1)
        arrived_window = j - int(np.searchsorted(tasks.arrival, max(lo, 0.0), side="right")) if span > 0 else 0
        arrival_rate = arrived_window / span if span > 0 else 0.0
        avg_rt = float(sum(rts) / len(rts)) if rts else 0.0
        max_rt = float(max(rts)) if rts else 0.0
        finished_window = done_ok + missed
        qos_rate = done_ok / finished_window if finished_window else 1.0
        raw = np.array(
            [st.queued, st.running, done_ok, missed, st.workers, avg_rt, max_rt, arrival_rate, qos_rate],
            dtype=np.float32,
        )
        obs = np.clip(raw, self.obs_low, self.obs_high)
        self._obs = obs

        # reward
        step_ok = out.completed
        step_finished = len(out.on_time) + len(out.dropped_time)
        qos = step_ok / step_finished if step_finished else 1.0
        workers_avg = (st.worker_seconds - before.worker_seconds) / cfg.step_duration
        w = cfg.reward
        components = {
            "qos": w.qos_weight * (qos - w.target_qos),
            "worker_cost": -w.worker_weight * workers_avg / cfg.max_workers,
            "queue": -w.queue_weight * min(1.0, st.queued / w.queue_target),
            "scaling": -w.scaling_weight if scaled else 0.0,
        }
        reward = float(sum(components.values()))

        all_submitted = self._submitted >= len(tasks)
        terminated = bool(all_submitted and t1 >= self._episode_workload.duration and st.queued == 0 and st.running == 0)
        truncated = bool(not terminated and cfg.max_steps is not None and self._steps >= cfg.max_steps)
        finished_total = st.completed + st.missed
        info: dict[str, Any] = {
            "time": t1,
            "step": self._steps,
            "action": a,
            "delta": delta,
            "scaled": scaled,
            "clipped": new_workers != wanted,
            "workers": st.workers,
            "ready_workers": st.ready,
            "starting_workers": st.starting,
            "draining_workers": st.draining,
            "workers_avg": workers_avg,
            "queued": st.queued,
            "running": st.running,
            "arrived": st.arrived,
            "completed": st.completed,
            "late": st.late,
            "expired": st.expired,
            "rejected": st.rejected,
            "missed": st.missed,
            "processed": st.completed + st.late,
            "qos": qos,
            "qos_rate": qos_rate,
            "final_qos": st.completed / finished_total if finished_total else 1.0,
            "arrival_rate": arrival_rate,
            "avg_processing_time": avg_rt,
            "max_processing_time": max_rt,
            "qos_per_worker": qos / max(workers_avg, 1e-9),
            "phase": self.phase_at(t0),
            "reward": reward,
            "reward_components": components,
            **{f"reward_{k}": v for k, v in components.items()},
        }
        if cfg.reward_metric is not None:
            info["metric"] = float(info[cfg.reward_metric])
        return obs.copy(), reward, terminated, truncated, info

    def render(self):
        if self.render_mode != "ansi":
            return None
        o = self._obs
        return (
            f"t={self._t:7.1f}s workers={int(o[4]):3d} queued={int(o[0]):4d} running={int(o[1]):3d} "
            f"rate={o[7]:5.2f}/s qos={o[8]:.2f} rt={o[5]:.2f}s"
        )

    def close(self):
        self.platform.close()
        super().close()

    # ------------------------------------------------------------------ helpers
    def phase_at(self, t: float) -> str:
        start = 0.0
        for p in self._episode_workload.phases:
            if t < start + p.duration:
                return p.name
            start += p.duration
        return "drain"

    @property
    def now(self) -> float:
        return self._t


# --------------------------------------------------------------------------- spec


#: knobs an autoscaling spec may declare in its action_space
SPEC_KNOBS = ("scale_step", "workers")
_TARGET_KEYS = tuple(f.name for f in fields(AutoscalingConfig) if f.name not in ("reward", "reward_metric")) + (
    "workload",
    "reward",
)


def config_from_spec(spec) -> tuple[AutoscalingConfig, Any]:
    """The env config and workload source that an autoscaling spec describes.

    ``spec.target_config`` (the spec's ``autoscaling`` block) gives the env settings by
    name (see the schema). The action space may declare two knobs:

    - ``scale_step`` (int, min..max): the scaling steps, so ``min 1, max 2`` gives five
      actions -2, -1, 0, +1, +2; without it the block's ``scale_steps`` (default [1]) holds;
    - ``workers`` (int, min..max): the range of the worker count (min_workers, max_workers).

    ``reward_metric`` names the value that goes into ``info["metric"]`` (one of METRICS).
    """
    tc = dict(spec.target_config or {})
    problems = []
    for key in tc:
        if key not in _TARGET_KEYS:
            problems.append(f"autoscaling.{key}: unknown setting; allowed: {', '.join(_TARGET_KEYS)}")
    kwargs: dict[str, Any] = {k: v for k, v in tc.items() if k in _TARGET_KEYS and k != "workload"}
    for i, knob in enumerate(spec.action_space):
        where = f"action_space[{i}]"
        if knob.param not in SPEC_KNOBS:
            problems.append(f"{where}.param: {knob.param!r} is not an autoscaling knob; use one of {', '.join(SPEC_KNOBS)}")
            continue
        if knob.type != "int":
            problems.append(f"{where}.type: the {knob.param} knob must be an int")
            continue
        lo, hi = int(knob.min), int(knob.max)
        if knob.param == "scale_step":
            if lo < 1:
                problems.append(f"{where}.min: a scale step must be at least 1, got {lo}")
                continue
            kwargs["scale_steps"] = list(range(lo, hi + 1))
        else:
            if lo < 0:
                problems.append(f"{where}.min: the worker count cannot be below 0, got {lo}")
                continue
            kwargs["min_workers"], kwargs["max_workers"] = lo, hi
            if "initial_workers" not in kwargs:
                default = knob.default if knob.default is not None else max(lo, min(hi, AutoscalingConfig.initial_workers))
                kwargs["initial_workers"] = int(default)
    if spec.reward_metric is not None:
        if spec.reward_metric not in METRICS:
            problems.append(f"reward_metric: {spec.reward_metric!r} is not an autoscaling metric; use one of {', '.join(METRICS)}")
        else:
            kwargs["reward_metric"] = spec.reward_metric
            want = METRIC_DIRECTIONS[spec.reward_metric]
            if want is not None and spec.metric_direction != want:
                problems.append(
                    f"metric_direction: {spec.reward_metric} is to {want}; set \"metric_direction\": \"{want}\""
                )
    if "max_steps" not in kwargs and spec.training_config.given("max_steps_per_episode"):
        kwargs["max_steps"] = spec.training_config.max_steps_per_episode
    if problems:
        raise SpecError(problems[0], problems=problems)
    workload = tc.get("workload")
    if isinstance(workload, str) and spec.source and not Path(workload).is_absolute():
        candidate = Path(spec.source).resolve().parent / workload
        if candidate.exists():
            workload = str(candidate)
    try:
        config = AutoscalingConfig.from_dict(kwargs)
        config.validate()
    except BadInputError as exc:
        raise SpecError(exc.problems[0], problems=[f"autoscaling.{p}" for p in exc.problems]) from None
    except TypeError as exc:
        raise SpecError(f"autoscaling.reward: {exc}") from None
    return config, workload


def make_env(spec, *, seed: int | None = None) -> gym.Env:
    """The env a spec with ``target: "autoscaling"`` describes, seeded if `seed`
    is given (reached through `targets.AutoscalingTarget.policy_env`)."""
    config, workload = config_from_spec(spec)
    env = AutoscalingEnv(workload=workload, config=config)
    if seed is None:
        seed = spec.training_config.seed
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="cli_ai.tactician.envs.autoscaling:AutoscalingEnv")


register()
