"""SchedulerEnv: route LLM-serving requests among replicas (issue 8).

The cluster it simulates is described in `scheduler_sim`, its settings in
`scheduler_config`.

One step = one arriving request
-------------------------------
The action, `Discrete(N)`, sends the current request to replica `action`; the
simulation then runs until the next request arrives, which the next
observation describes. An episode is `episode_requests` requests; after the
last one is routed the episode ends (`truncated=True`: a workload cut short,
not a terminal state) and the cluster is drained so that the episode's
statistics cover every request. An episode's traffic (arrival times and
lengths) is drawn from the env's seeded generator at reset, before any
decision, so `reset(seed=s)` gives every policy the same requests.

Observation (`Box(0, 10, (5N + 4,), float32)`, clipped): per replica, in this
order, `[queued, in_flight, backlog, recent_latency, speed]` with counts
divided by the largest `max_batch_size`, backlog = remaining work / speed in
units of (mean request work * largest max_batch_size), recent latency = EMA of
the latency of the replica's finished requests over twice the mean request
work, speed over the fastest speed; then `[arrival_rate, prompt_tokens,
output_tokens, request_work]` of the cluster and of the request to route:
the arrival rate over the last `window_s` (over the nominal rate), the
request's lengths over their configured maxima, its work over the mean work.

Reward: the seed-003 calculator (`cli_ai.tactician.rewards`, mode instant,
delta or hybrid) fed each step with
- throughput: requests finished in the last `window_s` seconds, per second;
- latency: with `reward_latency: "littles_law"` (default) the mean number of
  requests in the system during the step divided by the arrival rate over the
  last window (Little's law: an estimate of the current mean latency that
  reacts at once to a bad routing decision); with `"completed"` the mean
  latency of the requests finished in the last window;
- balance signal (`extra["balance"]`), by `balance_signal`: with
  `"drain_time"` (default) the variance across replicas of their drain times
  (remaining work / current service rate, so a fast replica may hold more)
  in units of the mean request work; with `"queued"` the variance of their
  queue lengths (requests waiting for a batch slot) in units of their
  max_batch_size. Each value is capped at 10, so the signal stays in
  [0, 25] and one runaway queue cannot swamp the return. `"queued"` is 0
  while every batch has room, so it says nothing about long requests piling
  up on one replica; with it PPO learned a good mean but a p95 latency no
  better than least-outstanding (docs/benchmarks/scheduler.md).

`info` carries `metric` (the spec's reward_metric over the requests finished so
far in the episode; on the last step, after the drain, the whole episode's
value), `reward_components` (the reward breakdown) and `stats` (raw numbers);
the last step of an episode adds `episode_summary` (mean/p50/p95/p99 latency,
throughput, imbalance and per-replica counts of the whole episode).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Any, Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cli_ai.errors import SpecError
from cli_ai.tactician.envs.scheduler_config import SchedulerConfig, scheduler_config
from cli_ai.tactician.envs.scheduler_sim import Replica, generate_traffic, latency_summary, sorted_percentile, variance
from cli_ai.tactician.rewards import Measurement, Reward, make_reward

ENV_ID = "cli_ai/Scheduler-v0"
OBS_CLIP = 10.0
REPLICA_FEATURES = ("queued", "in_flight", "backlog", "recent_latency", "speed")
GLOBAL_FEATURES = ("arrival_rate", "prompt_tokens", "output_tokens", "request_work")
METRICS = {
    # name: (direction, description)
    "p95_latency_ms": ("minimize", "95th percentile latency of finished requests, ms"),
    "p99_latency_ms": ("minimize", "99th percentile latency, ms"),
    "p50_latency_ms": ("minimize", "median latency, ms"),
    "mean_latency_ms": ("minimize", "mean latency, ms"),
    "throughput": ("maximize", "finished requests per second of simulated time"),
    "imbalance_s": ("minimize", "mean standard deviation of the replicas' drain times, s"),
}
DEFAULT_REWARD: dict[str, Any] = {"mode": "hybrid"}
# cdbtuner would read the zero throughput of an episode's first steps as invalid
# measurements and end the episode; weighted needs a benchmark baseline.
REWARD_MODES = ("instant", "delta", "hybrid")

class SchedulerEnv(gym.Env):
    """Route each arriving request to one of N simulated replicas (see the
    module docstring for the model, observation and reward)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        config: SchedulerConfig | Mapping[str, Any] | None = None,
        reward: Any = None,
        reward_metric: str = "p95_latency_ms",
    ):
        super().__init__()
        self.cfg = config if isinstance(config, SchedulerConfig) else scheduler_config(config)
        if reward_metric not in METRICS:
            raise SpecError(f"reward_metric: {reward_metric!r} is not one the scheduler reports ({', '.join(METRICS)})")
        self.reward_metric = reward_metric
        self.reward_config = DEFAULT_REWARD if reward is None else reward
        self.reward_fn: Reward = make_reward(self.reward_config, "maximize")
        cfg = self.cfg
        self.n = cfg.n
        self.action_space = spaces.Discrete(self.n)
        self.obs_size = len(REPLICA_FEATURES) * self.n + len(GLOBAL_FEATURES)
        self.observation_space = spaces.Box(0.0, OBS_CLIP, shape=(self.obs_size,), dtype=np.float32)
        self._count_scale = float(max(r.max_batch_size for r in cfg.replicas))
        self._mean_work = max(cfg.mean_work_s, 1e-9)
        self._lat_scale = 2.0 * self._mean_work
        self._max_speed = max(r.speed for r in cfg.replicas)
        self._nominal_rate = cfg.arrival.mean_rate
        self._speeds = np.array([r.speed / self._max_speed for r in cfg.replicas], dtype=np.float32)
        self._traffic: dict[str, np.ndarray] | None = None
        self._i = 0

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        cfg = self.cfg
        self._traffic = generate_traffic(cfg, self.np_random)
        n = cfg.episode_requests
        self._replicas = [Replica(r.speed, r.max_batch_size, cfg.batch_slowdown) for r in cfg.replicas]
        self._route = np.full(n, -1, dtype=np.int64)
        self._finish = np.full(n, np.nan)
        self._latencies: list[float] = []
        self._sorted_latencies: list[float] = []  # for the per-step percentile metric
        self._latency_sum = 0.0
        self._arrivals_window: deque[float] = deque()
        self._done_window: deque[tuple[float, float]] = deque()
        self._completed = 0
        self._imbalance_sum = 0.0
        self._steps = 0
        self._i = 0
        self._end: float | None = None
        self._now = float(self._traffic["arrival"][0])
        self._t0 = self._now  # the clock of the statistics starts with the first request
        self._arrivals_window.append(self._now)
        self._advance(self._now)
        self.reward_fn.reset(None)
        return self._obs(), {"metric": 0.0, "stats": self._stats(), "reward_components": {}}

    def step(self, action):
        if self._traffic is None:
            raise RuntimeError("call reset() before step()")
        if self._i >= self.cfg.episode_requests:
            raise RuntimeError("the episode is over (every request was routed); call reset()")
        a = int(action)
        if not 0 <= a < self.n:
            raise ValueError(f"action {action!r} is outside Discrete({self.n})")
        i = self._i
        tr = self._traffic
        self._route[i] = a
        self._replicas[a].admit(i, float(tr["work"][i]))
        area_before = sum(r.area for r in self._replicas)
        t_prev = self._now
        t_next = float(tr["arrival"][i + 1])
        self._advance(t_next)
        self._now = t_next
        self._i = i + 1
        self._steps += 1
        last = self._i >= self.cfg.episode_requests
        if not last:
            self._arrivals_window.append(t_next)
        dt = max(t_next - t_prev, 1e-12)
        in_system = (sum(r.area for r in self._replicas) - area_before) / dt
        drains = [r.drain_s() for r in self._replicas]
        self._imbalance_sum += math.sqrt(variance(drains))
        m = self._measurement(in_system, self._balance(drains))
        result = self.reward_fn.score(m)
        if last:
            self._drain()
        info = {
            "metric": self._metric_value(),
            "reward_components": result.components,
            "stats": self._stats(drains),
        }
        if last:
            info["episode_summary"] = self.episode_summary()
            # The metric covers every request finished in the episode: it is
            # the episode's own value, not one step's (see policy_training).
            info["episode_metric"] = info["metric"]
        terminated = bool(result.terminate)
        return self._obs(), float(result.reward), terminated, last and not terminated, info

    # ------------------------------------------------------------------ internals
    def _advance(self, t_end: float) -> None:
        done: list[tuple[int, float]] = []
        work = self._traffic["work"]
        for r in self._replicas:
            done.clear()
            r.advance(t_end, work, done)
            for rid, t in done:
                self._complete(r, rid, t)
        cutoff = t_end - self.cfg.window_s
        while self._arrivals_window and self._arrivals_window[0] < cutoff:
            self._arrivals_window.popleft()
        while self._done_window and self._done_window[0][0] < cutoff:
            self._done_window.popleft()

    def _complete(self, replica: Replica, rid: int, t: float) -> None:
        lat = t - float(self._traffic["arrival"][rid])
        self._finish[rid] = t
        self._latencies.append(lat)
        bisect.insort(self._sorted_latencies, lat)
        self._latency_sum += lat
        self._done_window.append((t, lat))
        self._completed += 1
        replica.completed += 1
        replica.lat_ema = lat if replica.completed == 1 else 0.8 * replica.lat_ema + 0.2 * lat

    def _drain(self) -> None:
        """Finish every request left after the last arrival (statistics only)."""
        work = self._traffic["work"]
        done: list[tuple[int, float]] = []
        end = self._now
        for r in self._replicas:
            done.clear()
            r.advance(math.inf, work, done)
            for rid, t in done:
                self._complete(r, rid, t)
                end = max(end, t)
            r.t = end
        self._end = end

    def _elapsed(self) -> float:
        return max(self._now - self._t0, 1e-12)

    def _arrival_rate(self) -> float:
        w = self.cfg.window_s
        elapsed = self._elapsed()
        if elapsed >= w:
            return len(self._arrivals_window) / w
        # blend the nominal rate in until a whole window has passed
        return (len(self._arrivals_window) + self._nominal_rate * (w - elapsed)) / w

    def _balance(self, drains: list[float]) -> float:
        """The imbalance signal: variance across replicas of their queue
        lengths in units of their max_batch_size (or of their drain times in
        units of the mean request work), each capped at OBS_CLIP, so the
        signal stays within [0, OBS_CLIP² / 4]."""
        if self.cfg.balance_signal == "drain_time":
            x = [min(d / self._mean_work, OBS_CLIP) for d in drains]
        else:
            x = [min(len(r.queue) / r.max_batch, OBS_CLIP) for r in self._replicas]
        return variance(x)

    def _measurement(self, in_system: float, balance: float) -> Measurement:
        w = min(self.cfg.window_s, self._elapsed())
        throughput = len(self._done_window) / w
        if self.cfg.reward_latency == "completed":
            latency_s = float(np.mean([lat for _, lat in self._done_window])) if self._done_window else 0.0
        else:
            latency_s = in_system / max(self._arrival_rate(), 1e-9)
        return Measurement(
            metric=throughput, throughput=throughput, latency_ms=latency_s * 1000.0,
            extra={"balance": balance, "in_system": in_system},
        )

    def _metric_value(self) -> float:
        if self.reward_metric == "imbalance_s":
            return self._imbalance_sum / max(self._steps, 1)
        end = self._end if self._end is not None else self._now
        lat = self._sorted_latencies
        if not lat:
            return 0.0
        name = self.reward_metric
        if name == "throughput":
            return len(lat) / max(end - self._t0, 1e-12)
        if name == "mean_latency_ms":
            return self._latency_sum / len(lat) * 1000.0
        q = {"p50_latency_ms": 50.0, "p95_latency_ms": 95.0, "p99_latency_ms": 99.0}[name]
        return sorted_percentile(lat, q) * 1000.0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.obs_size, dtype=np.float32)
        cs, mw = self._count_scale, self._mean_work
        for k, r in enumerate(self._replicas):
            j = k * len(REPLICA_FEATURES)
            obs[j] = len(r.queue) / cs
            obs[j + 1] = len(r.heap) / cs
            obs[j + 2] = r.remaining_work() / r.speed / (mw * cs)
            obs[j + 3] = r.lat_ema / self._lat_scale
            obs[j + 4] = self._speeds[k]
        g = len(REPLICA_FEATURES) * self.n
        obs[g] = self._arrival_rate() / self._nominal_rate
        i = self._i
        if i < self.cfg.episode_requests:
            tr = self._traffic
            obs[g + 1] = tr["prompt"][i] / self.cfg.prompt_tokens.max
            obs[g + 2] = tr["output"][i] / self.cfg.output_tokens.max
            obs[g + 3] = tr["work"][i] / mw
        np.clip(obs, 0.0, OBS_CLIP, out=obs)
        return obs

    def _stats(self, drains: list[float] | None = None) -> dict[str, Any]:
        reps = self._replicas
        return {
            "time_s": float(self._now - self._t0),
            "arrived": int(self._i if self._i >= self.cfg.episode_requests else self._i + 1),
            "routed": int(self._i),
            "completed": int(self._completed),
            "in_system": int(sum(r.outstanding() for r in reps)),
            "queued": [len(r.queue) for r in reps],
            "in_flight": [len(r.heap) for r in reps],
            "drain_s": [float(x) for x in (drains if drains is not None else [r.drain_s() for r in reps])],
            "arrival_rate": float(self._arrival_rate()),
            "imbalance_s": float(self._imbalance_sum / max(self._steps, 1)),
        }

    # ------------------------------------------------------------------ for evaluation
    def episode_summary(self) -> dict[str, Any]:
        """Statistics of the episode so far (complete after the last step):
        latency percentiles, throughput, imbalance, per-replica counts."""
        end = self._end if self._end is not None else self._now
        out = latency_summary(np.asarray(self._latencies), end - self._t0)
        out["imbalance_s"] = float(self._imbalance_sum / max(self._steps, 1))
        out["routed"] = int(self._i)
        out["per_replica"] = {
            name: {"routed": int((self._route[: self._i] == k).sum()), "completed": self._replicas[k].completed}
            for k, name in enumerate(self.cfg.names)
        }
        return out

    def latencies_s(self) -> np.ndarray:
        return np.asarray(self._latencies, dtype=float)


def obs_index(n_replicas: int, feature: str, replica: int | None = None) -> int:
    """Index of a feature in the observation vector (for baselines and tests)."""
    if feature in REPLICA_FEATURES:
        if replica is None:
            raise ValueError(f"{feature} is a per-replica feature; give the replica")
        return replica * len(REPLICA_FEATURES) + REPLICA_FEATURES.index(feature)
    return len(REPLICA_FEATURES) * n_replicas + GLOBAL_FEATURES.index(feature)


# --------------------------------------------------------------------------- from a spec


def route_knob_names(spec) -> list[str]:
    """The values of the spec's `route` knob, which must be the only knob."""
    knobs = list(spec.action_space)
    route = [k for k in knobs if k.param == "route"]
    hint = ('declare the routing action as {"param": "route", "type": "enum", '
            '"values": [one name per replica]}')
    problems = []
    for i, k in enumerate(knobs):
        if k.param != "route":
            problems.append(f"action_space[{i}].param: {k.param!r} is not a knob of the scheduler target; {hint}")
    if not route:
        problems.append(f"action_space: the scheduler target needs its routing knob; {hint}")
    elif route[0].type != "enum":
        problems.append(f"action_space: the route knob must have type \"enum\"; {hint}")
    if problems:
        raise SpecError(f"{len(problems)} problem(s) in the action space", problems=problems)
    return [str(v) for v in route[0].values]


def make_env(spec, *, seed: int | None = None) -> gym.Env:
    """The SchedulerEnv of a spec with `target: "scheduler"`: replicas and
    traffic from its `scheduler` block, the reward from its `reward` block
    (mode instant, delta or hybrid; a spec without a reward block
    gets `hybrid` with seed 003's defaults), `info["metric"]` from its
    reward_metric (default p95_latency_ms). The episode length is
    `scheduler.episode_requests`, else training_config.max_steps_per_episode
    when the spec sets it, else 400. Seeded with `seed`, else
    training_config.seed. A spec of ``target: "scheduler"``: reached through
    `targets.SchedulerTarget.policy_env` and `cli-ai scheduler compare`, which
    check the target first."""
    names = route_knob_names(spec)
    tc = spec.training_config
    fallback_len = tc.max_steps_per_episode if tc.given("max_steps_per_episode") else None
    cfg = scheduler_config(spec.target_config, route_names=names, episode_requests=fallback_len)
    metric = spec.reward_metric or "p95_latency_ms"
    if metric not in METRICS:
        raise SpecError(f"reward_metric: {metric!r} is not one the scheduler reports; use one of {', '.join(METRICS)}")
    want = METRICS[metric][0]
    if spec.metric_direction != want:
        raise SpecError(f"metric_direction: {metric} is to {want}; set \"metric_direction\": \"{want}\"")
    reward: Any = spec.reward if "reward" in spec.raw else DEFAULT_REWARD
    mode = reward["mode"] if isinstance(reward, Mapping) else reward.mode
    if mode not in REWARD_MODES:
        raise SpecError(f"reward.mode: {mode!r} does not fit the scheduler target; use one of {', '.join(REWARD_MODES)}")
    env = SchedulerEnv(cfg, reward=reward, reward_metric=metric)
    if seed is None:
        seed = tc.seed
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def register() -> None:
    """Register `cli_ai/Scheduler-v0` with gymnasium (idempotent)."""
    if ENV_ID not in gym.envs.registry:
        gym.register(id=ENV_ID, entry_point="cli_ai.tactician.envs.scheduler:SchedulerEnv")


register()
