"""The scheduler target's settings: replicas, arrivals, request lengths and the
service model, read from a spec's `scheduler` block with one-line errors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from cli_ai.errors import SpecError


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
