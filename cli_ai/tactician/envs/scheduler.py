"""SchedulerEnv: route LLM-serving requests among replicas (issue 8).

The simulated cluster
---------------------
N replicas, each with a relative `speed` (2.0 = twice as fast as 1.0), a
`max_batch_size` and its own FIFO queue. Requests arrive from a Poisson process
of `arrival.rate` requests/s, or a bursty one (a two-state Markov-modulated
Poisson process: calm periods at `rate`, bursts at `rate * burst_multiplier`,
with exponentially distributed durations of mean `mean_calm_s` and
`mean_burst_s`). Each request has a prompt length and an output length drawn
from `prompt_tokens` and `output_tokens` (constant, uniform or lognormal,
clipped to [min, max]).

Service model (documented, deliberately simple, event-driven and exact):
- a request's work, in seconds on a speed-1 replica serving it alone, is
  `prompt_tokens * prefill_ms_per_token / 1000 + output_tokens * decode_ms_per_token / 1000`
  (prefill cost proportional to the prompt, decode cost per generated token);
- a replica serves up to `max_batch_size` requests at once (continuous
  batching); with b requests in the batch each progresses at
  `speed / (1 + batch_slowdown * (b - 1))` work-seconds per second, so the
  per-token time grows mildly with the batch while the replica's total rate
  grows sub-linearly (processor sharing inside the batch; a request's
  prefill is part of its work and shares the batch like its decode, a
  simplification of chunked prefill);
- when the batch is full, new requests wait in the replica's queue and join the
  batch, in order, as members finish.
A request's latency is its completion time minus its arrival time.

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
import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cli_ai.errors import SpecError
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


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ReplicaConfig:
    name: str
    speed: float = 1.0
    max_batch_size: int = 8


@dataclass(frozen=True)
class LengthDist:
    distribution: str = "lognormal"
    mean: float = 256.0
    sigma: float = 0.8
    min: int = 1
    max: int = 4096

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.distribution == "constant":
            x = np.full(n, self.mean)
        elif self.distribution == "uniform":
            x = rng.integers(self.min, self.max + 1, size=n).astype(float)
        else:  # lognormal with the given mean: mu = ln(mean) - sigma^2 / 2
            mu = math.log(self.mean) - self.sigma**2 / 2.0
            x = rng.lognormal(mu, self.sigma, size=n)
        return np.clip(np.rint(x), self.min, self.max).astype(np.int64)

    def expected(self) -> float:
        """The mean of the distribution (before clipping)."""
        if self.distribution == "uniform":
            return (self.min + self.max) / 2.0
        return float(min(max(self.mean, self.min), self.max))


@dataclass(frozen=True)
class ArrivalConfig:
    process: str = "poisson"
    rate: float = 8.0
    burst_multiplier: float = 3.0
    mean_burst_s: float = 3.0
    mean_calm_s: float = 15.0

    @property
    def mean_rate(self) -> float:
        if self.process != "bursty":
            return self.rate
        total = self.mean_calm_s + self.mean_burst_s
        return self.rate * (self.mean_calm_s + self.burst_multiplier * self.mean_burst_s) / total


@dataclass(frozen=True)
class SchedulerConfig:
    """The spec's `scheduler` block with defaults filled."""

    replicas: tuple[ReplicaConfig, ...] = (
        ReplicaConfig("fast", 2.0), ReplicaConfig("mid-a", 1.0), ReplicaConfig("mid-b", 1.0), ReplicaConfig("slow", 0.5),
    )
    arrival: ArrivalConfig = field(default_factory=ArrivalConfig)
    prompt_tokens: LengthDist = field(default_factory=lambda: LengthDist("lognormal", 512.0, 0.8, 16, 4096))
    output_tokens: LengthDist = field(default_factory=lambda: LengthDist("lognormal", 96.0, 0.9, 1, 1024))
    prefill_ms_per_token: float = 0.2
    decode_ms_per_token: float = 20.0
    batch_slowdown: float = 0.05
    episode_requests: int = 400
    window_s: float = 10.0
    reward_latency: str = "littles_law"
    balance_signal: str = "drain_time"

    @property
    def n(self) -> int:
        return len(self.replicas)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.replicas]

    def work_s(self, prompt: np.ndarray | float, output: np.ndarray | float):
        return prompt * self.prefill_ms_per_token / 1000.0 + output * self.decode_ms_per_token / 1000.0

    @property
    def mean_work_s(self) -> float:
        return float(self.work_s(self.prompt_tokens.expected(), self.output_tokens.expected()))

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["replicas"] = [asdict(r) for r in self.replicas]
        return d


_TOP_KEYS = {
    "replicas", "arrival", "prompt_tokens", "output_tokens", "service", "max_batch_size", "episode_requests",
    "window_s", "reward_latency", "balance_signal",
}


def _number(problems: list[str], path: str, value: Any, *, lo: float | None = None, lo_open: bool = False,
            hi: float | None = None, whole: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.append(f"{path}: expected a finite number, got {value!r}")
        return None
    if whole and not float(value).is_integer():
        problems.append(f"{path}: {value} is not a whole number")
        return None
    if lo is not None and (value <= lo if lo_open else value < lo):
        problems.append(f"{path}: {value} must be {'above' if lo_open else 'at least'} {lo}")
        return None
    if hi is not None and value > hi:
        problems.append(f"{path}: {value} must be at most {hi}")
        return None
    return int(value) if whole else float(value)


def _length(problems: list[str], path: str, raw: Any, default: LengthDist) -> LengthDist:
    if raw is None:
        return default
    if not isinstance(raw, Mapping):
        problems.append(f"{path}: expected an object like {{\"distribution\": \"lognormal\", \"mean\": 256}}")
        return default
    allowed = {"distribution", "mean", "sigma", "min", "max"}
    for k in raw:
        if k not in allowed:
            problems.append(f"{path}: unknown field {k!r}; allowed: {', '.join(sorted(allowed))}")
    dist = raw.get("distribution", default.distribution)
    if dist not in ("constant", "uniform", "lognormal"):
        problems.append(f"{path}.distribution: {dist!r} is not one of constant, uniform, lognormal")
        dist = default.distribution
    mean = _number(problems, f"{path}.mean", raw.get("mean", default.mean), lo=0, lo_open=True)
    sigma = _number(problems, f"{path}.sigma", raw.get("sigma", default.sigma), lo=0)
    lo = _number(problems, f"{path}.min", raw.get("min", default.min), lo=1, whole=True)
    hi = _number(problems, f"{path}.max", raw.get("max", default.max), lo=1, hi=10_000_000, whole=True)
    if lo is not None and hi is not None and lo > hi:
        problems.append(f"{path}.min: {lo} is above max {hi}; swap them")
    if None in (mean, sigma, lo, hi):
        return default
    return LengthDist(dist, mean, sigma, lo, hi)


def scheduler_config(raw: Mapping[str, Any] | None, *, route_names: Sequence[str] | None = None,
                     episode_requests: int | None = None) -> SchedulerConfig:
    """Validate the spec's `scheduler` block (every problem at once, with its
    path) and fill defaults. `route_names` (the route knob's values) name the
    replicas the block leaves unnamed; `episode_requests` is the fallback
    episode length when the block has none."""
    raw = dict(raw or {})
    base = SchedulerConfig()
    problems: list[str] = []
    for k in raw:
        if k not in _TOP_KEYS and not k.startswith("$"):
            problems.append(f"scheduler: unknown field {k!r}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    default_batch = _number(problems, "scheduler.max_batch_size", raw.get("max_batch_size", 8), lo=1, hi=4096, whole=True) or 8

    replicas: list[ReplicaConfig] = []
    rep_raw = raw.get("replicas")
    if rep_raw is None:
        if route_names is not None and len(route_names) != base.n:
            rep_raw = [{} for _ in route_names]
        else:
            replicas = [ReplicaConfig(r.name, r.speed, default_batch) for r in base.replicas]
    if rep_raw is not None:
        if not isinstance(rep_raw, list) or not 1 <= len(rep_raw) <= 64:
            problems.append("scheduler.replicas: expected a list of 1 to 64 replicas like {\"name\": \"a\", \"speed\": 1.0}")
            rep_raw = []
        for i, r in enumerate(rep_raw):
            p = f"scheduler.replicas[{i}]"
            if not isinstance(r, Mapping):
                problems.append(f"{p}: expected an object like {{\"name\": \"a\", \"speed\": 1.0}}")
                continue
            for k in r:
                if k not in ("name", "speed", "max_batch_size"):
                    problems.append(f"{p}: unknown field {k!r}; allowed: max_batch_size, name, speed")
            fallback = str(route_names[i]) if route_names is not None and i < len(route_names) else f"r{i}"
            name = r.get("name", fallback)
            if not isinstance(name, str) or not name:
                problems.append(f"{p}.name: expected a non-empty string")
                name = fallback
            speed = _number(problems, f"{p}.speed", r.get("speed", 1.0), lo=0, lo_open=True, hi=1000)
            batch = _number(problems, f"{p}.max_batch_size", r.get("max_batch_size", default_batch), lo=1, hi=4096, whole=True)
            replicas.append(ReplicaConfig(name, speed or 1.0, batch or default_batch))
        names = [r.name for r in replicas]
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.append(f"scheduler.replicas[{i}].name: {name!r} is used twice; give each replica its own name")

    arr_raw = raw.get("arrival", {})
    arrival = base.arrival
    if not isinstance(arr_raw, Mapping):
        problems.append("scheduler.arrival: expected an object like {\"process\": \"poisson\", \"rate\": 8}")
    else:
        allowed = {"process", "rate", "burst_multiplier", "mean_burst_s", "mean_calm_s"}
        for k in arr_raw:
            if k not in allowed:
                problems.append(f"scheduler.arrival: unknown field {k!r}; allowed: {', '.join(sorted(allowed))}")
        process = arr_raw.get("process", base.arrival.process)
        if process not in ("poisson", "bursty"):
            problems.append(f"scheduler.arrival.process: {process!r} is not one of poisson, bursty")
            process = "poisson"
        vals = [
            _number(problems, "scheduler.arrival.rate", arr_raw.get("rate", base.arrival.rate), lo=0, lo_open=True, hi=1e6),
            _number(problems, "scheduler.arrival.burst_multiplier", arr_raw.get("burst_multiplier", base.arrival.burst_multiplier), lo=1, hi=1000),
            _number(problems, "scheduler.arrival.mean_burst_s", arr_raw.get("mean_burst_s", base.arrival.mean_burst_s), lo=0, lo_open=True),
            _number(problems, "scheduler.arrival.mean_calm_s", arr_raw.get("mean_calm_s", base.arrival.mean_calm_s), lo=0, lo_open=True),
        ]
        if None not in vals:
            arrival = ArrivalConfig(process, *vals)

    svc = raw.get("service", {})
    if not isinstance(svc, Mapping):
        problems.append("scheduler.service: expected an object like {\"decode_ms_per_token\": 20}")
        svc = {}
    for k in svc:
        if k not in ("prefill_ms_per_token", "decode_ms_per_token", "batch_slowdown"):
            problems.append(f"scheduler.service: unknown field {k!r}; allowed: batch_slowdown, decode_ms_per_token, prefill_ms_per_token")
    prefill = _number(problems, "scheduler.service.prefill_ms_per_token", svc.get("prefill_ms_per_token", base.prefill_ms_per_token), lo=0, hi=1e4)
    decode = _number(problems, "scheduler.service.decode_ms_per_token", svc.get("decode_ms_per_token", base.decode_ms_per_token), lo=0, hi=1e5)
    slowdown = _number(problems, "scheduler.service.batch_slowdown", svc.get("batch_slowdown", base.batch_slowdown), lo=0, hi=10)
    if prefill == 0 and decode == 0:
        problems.append("scheduler.service: prefill_ms_per_token and decode_ms_per_token are both 0; requests would take no time")

    n_req_default = episode_requests if episode_requests is not None else base.episode_requests
    n_req = _number(problems, "scheduler.episode_requests", raw.get("episode_requests", n_req_default), lo=1, hi=1_000_000, whole=True)
    window = _number(problems, "scheduler.window_s", raw.get("window_s", base.window_s), lo=0, lo_open=True, hi=1e6)
    reward_latency = raw.get("reward_latency", base.reward_latency)
    if reward_latency not in ("littles_law", "completed"):
        problems.append(f"scheduler.reward_latency: {reward_latency!r} is not one of littles_law, completed")
    balance = raw.get("balance_signal", base.balance_signal)
    if balance not in ("queued", "drain_time"):
        problems.append(f"scheduler.balance_signal: {balance!r} is not one of queued, drain_time")
    prompt = _length(problems, "scheduler.prompt_tokens", raw.get("prompt_tokens"), base.prompt_tokens)
    output = _length(problems, "scheduler.output_tokens", raw.get("output_tokens"), base.output_tokens)
    if route_names is not None and replicas and len(route_names) != len(replicas):
        problems.append(
            f"action_space: the route knob lists {len(route_names)} values but scheduler.replicas has "
            f"{len(replicas)} replicas; give one value per replica"
        )
    if problems:
        raise SpecError(f"{len(problems)} problem(s) in the scheduler block", problems=problems)
    return SchedulerConfig(
        replicas=tuple(replicas), arrival=arrival, prompt_tokens=prompt, output_tokens=output,
        prefill_ms_per_token=prefill, decode_ms_per_token=decode, batch_slowdown=slowdown,
        episode_requests=n_req, window_s=window, reward_latency=reward_latency, balance_signal=balance,
    )


# --------------------------------------------------------------------------- simulation


class _Replica:
    """One replica: a batch served by processor sharing, and a FIFO queue.

    Every batch member progresses at the same rate, so the replica keeps one
    'virtual work' clock V; a member admitted at V0 with work w finishes when V
    reaches V0 + w (a heap ordered by that finishing point)."""

    __slots__ = ("speed", "max_batch", "slowdown", "V", "t", "heap", "queue", "queued_work", "sum_finish",
                 "area", "lat_ema", "completed")

    def __init__(self, speed: float, max_batch: int, slowdown: float):
        self.speed = speed
        self.max_batch = max_batch
        self.slowdown = slowdown
        self.V = 0.0
        self.t = 0.0
        self.heap: list[tuple[float, int]] = []
        self.queue: deque[int] = deque()
        self.queued_work = 0.0
        self.sum_finish = 0.0
        self.area = 0.0  # integral of the number of requests here over time
        self.lat_ema = 0.0
        self.completed = 0

    def rate(self, b: int) -> float:
        return self.speed / (1.0 + self.slowdown * (b - 1))

    def outstanding(self) -> int:
        return len(self.heap) + len(self.queue)

    def remaining_work(self) -> float:
        return self.sum_finish - len(self.heap) * self.V + self.queued_work

    def drain_s(self) -> float:
        b = len(self.heap)
        if b == 0:
            return 0.0
        return self.remaining_work() / (self.rate(b) * b)

    def admit(self, rid: int, work: float) -> None:
        if len(self.heap) < self.max_batch:
            f = self.V + work
            heapq.heappush(self.heap, (f, rid))
            self.sum_finish += f
        else:
            self.queue.append(rid)
            self.queued_work += work

    def advance(self, t_end: float, work: np.ndarray, done: list[tuple[int, float]]) -> None:
        """Serve until t_end; finished (request, time) pairs go to `done`."""
        heap = self.heap
        while heap:
            b = len(heap)
            r = self.speed / (1.0 + self.slowdown * (b - 1))
            f, rid = heap[0]
            t_done = self.t + (f - self.V) / r
            if t_done > t_end:
                break
            heapq.heappop(heap)
            self.area += (b + len(self.queue)) * (t_done - self.t)
            self.V = f
            self.t = t_done
            self.sum_finish -= f
            done.append((rid, t_done))
            if self.queue:
                nxt = self.queue.popleft()
                w = work[nxt]
                self.queued_work -= w
                nf = self.V + w
                heapq.heappush(heap, (nf, nxt))
                self.sum_finish += nf
        if heap:
            b = len(heap)
            self.V += (t_end - self.t) * self.speed / (1.0 + self.slowdown * (b - 1))
        if t_end > self.t:
            n = len(heap) + len(self.queue)
            if n:
                self.area += n * (t_end - self.t)
            self.t = t_end
        if not heap and not self.queue:
            self.queued_work = 0.0
            self.sum_finish = 0.0


def generate_traffic(cfg: SchedulerConfig, rng: np.random.Generator, n: int | None = None) -> dict[str, np.ndarray]:
    """Arrival times (n + 1: the last closes the final step), prompt and output
    lengths and work of one episode's requests."""
    n = cfg.episode_requests if n is None else n
    a = cfg.arrival
    m = n + 1
    if a.process == "poisson":
        arrivals = np.cumsum(rng.exponential(1.0 / a.rate, size=m))
    else:
        arrivals = np.empty(m)
        t = 0.0
        bursting = bool(rng.random() < a.mean_burst_s / (a.mean_burst_s + a.mean_calm_s))
        switch = t + rng.exponential(a.mean_burst_s if bursting else a.mean_calm_s)
        i = 0
        while i < m:
            rate = a.rate * (a.burst_multiplier if bursting else 1.0)
            nxt = t + rng.exponential(1.0 / rate)
            if nxt > switch:  # memoryless: restart the draw at the switch with the new rate
                t = switch
                bursting = not bursting
                switch = t + rng.exponential(a.mean_burst_s if bursting else a.mean_calm_s)
                continue
            t = nxt
            arrivals[i] = t
            i += 1
    prompt = cfg.prompt_tokens.sample(rng, n)
    output = cfg.output_tokens.sample(rng, n)
    work = cfg.work_s(prompt.astype(float), output.astype(float))
    return {"arrival": arrivals, "prompt": prompt, "output": output, "work": np.asarray(work, dtype=float)}


def _variance(xs: Sequence[float]) -> float:
    """Population variance of a short list (faster than numpy for a few replicas)."""
    n = len(xs)
    if n == 0:
        return 0.0
    m = sum(xs) / n
    return sum((x - m) * (x - m) for x in xs) / n


def _sorted_percentile(sorted_xs: Sequence[float], q: float) -> float:
    """numpy's default (linear) percentile of an already sorted sequence."""
    pos = (len(sorted_xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def latency_summary(latencies_s: np.ndarray, elapsed_s: float) -> dict[str, float]:
    """mean/p50/p95/p99 latency (ms) and throughput (requests/s) of finished requests."""
    lat = np.asarray(latencies_s, dtype=float)
    if lat.size == 0:
        return {"mean_latency_ms": 0.0, "p50_latency_ms": 0.0, "p95_latency_ms": 0.0, "p99_latency_ms": 0.0,
                "throughput": 0.0, "completed": 0}
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return {
        "mean_latency_ms": float(lat.mean() * 1000.0),
        "p50_latency_ms": float(p50 * 1000.0),
        "p95_latency_ms": float(p95 * 1000.0),
        "p99_latency_ms": float(p99 * 1000.0),
        "throughput": float(lat.size / elapsed_s) if elapsed_s > 0 else 0.0,
        "completed": int(lat.size),
    }


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
        self._replicas = [_Replica(r.speed, r.max_batch_size, cfg.batch_slowdown) for r in cfg.replicas]
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
        self._imbalance_sum += math.sqrt(_variance(drains))
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

    def _complete(self, replica: _Replica, rid: int, t: float) -> None:
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
        return _variance(x)

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
        return _sorted_percentile(lat, q) * 1000.0

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
