"""Workloads of the autoscaling environment: phases of task arrivals, read from YAML.

A workload file describes the function being scaled and the traffic it gets::

    name: default
    function:                 # optional; the env's arguments override these
      cold_start: 4.0         # seconds before a new worker takes tasks
      concurrency: 1          # tasks one worker runs at the same time
      queue_capacity: 400     # tasks the queue holds; more are rejected (missed)
    phases:
      - name: steady
        duration: 48          # seconds
        arrival: {shape: constant, rate: 6}          # tasks per second
        task_size: {distribution: uniform, low: 0.6, high: 1.4}   # seconds of work
        deadline: 6           # seconds from arrival; later = a QoS miss

Arrival shapes (all rates in tasks per second, times in seconds from the phase start):

- ``constant``: ``rate``.
- ``ramp``: linear from ``rate`` to ``end_rate`` over the phase.
- ``sinusoid``: ``rate + amplitude * sin(2*pi*(t/period + phase))``, never below 0.
- ``burst``: ``rate``, and ``burst_rate`` during ``burst_duration`` seconds every
  ``burst_interval`` seconds, the first burst at ``burst_start`` (default 0).

Task sizes (seconds of work on one worker slot): ``constant`` (``value``), ``uniform``
(``low``, ``high``), ``exponential`` (``mean``), ``lognormal`` (``mean``, ``sigma`` of the
underlying normal); any of them takes an optional ``max`` cap.

Arrivals are a non-homogeneous Poisson process, drawn by thinning, vectorised with numpy;
`generate_tasks` returns the whole episode's tasks sorted by arrival time, so the same
seed gives every policy exactly the same tasks (common random numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from cli_ai.errors import BadInputError

SHAPES = ("constant", "ramp", "sinusoid", "burst")
DISTRIBUTIONS = ("constant", "uniform", "exponential", "lognormal")
FUNCTION_KEYS = ("cold_start", "concurrency", "queue_capacity")

_ARRIVAL_KEYS = {
    "constant": ("rate",),
    "ramp": ("rate", "end_rate"),
    "sinusoid": ("rate", "amplitude", "period"),
    "burst": ("rate", "burst_rate", "burst_duration", "burst_interval"),
}
_ARRIVAL_OPTIONAL = {"sinusoid": ("phase",), "burst": ("burst_start",)}
_SIZE_KEYS = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "exponential": ("mean",),
    "lognormal": ("mean", "sigma"),
}


@dataclass(frozen=True)
class Arrival:
    shape: str = "constant"
    rate: float = 1.0
    end_rate: float = 0.0
    amplitude: float = 0.0
    period: float = 60.0
    phase: float = 0.0
    burst_rate: float = 0.0
    burst_duration: float = 0.0
    burst_interval: float = 1.0
    burst_start: float = 0.0

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        """Arrival rate (tasks/s) at times `t` (seconds from the phase start)."""
        t = np.asarray(t, dtype=float)
        if self.shape == "constant":
            return np.full_like(t, self.rate)
        if self.shape == "ramp":
            raise AssertionError("ramp needs the phase duration; use Phase.rate_at")
        if self.shape == "sinusoid":
            wave = np.sin(2.0 * math.pi * (t / self.period + self.phase))
            return np.maximum(0.0, self.rate + self.amplitude * wave)
        # burst
        since = t - self.burst_start
        in_burst = (since >= 0) & (np.mod(since, self.burst_interval) < self.burst_duration)
        return np.where(in_burst, self.burst_rate, self.rate)


@dataclass(frozen=True)
class TaskSize:
    distribution: str = "constant"
    value: float = 1.0
    low: float = 0.0
    high: float = 1.0
    mean: float = 1.0
    sigma: float = 0.5
    max: float | None = None

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        d = self.distribution
        if d == "constant":
            out = np.full(n, self.value)
        elif d == "uniform":
            out = rng.uniform(self.low, self.high, n)
        elif d == "exponential":
            out = rng.exponential(self.mean, n)
        else:
            mu = math.log(self.mean) - 0.5 * self.sigma**2
            out = rng.lognormal(mu, self.sigma, n)
        if self.max is not None:
            out = np.minimum(out, self.max)
        return np.maximum(out, 1e-6)

    @property
    def expected(self) -> float:
        """Mean task size (ignoring the `max` cap, which only lowers it)."""
        d = self.distribution
        if d == "constant":
            return self.value
        if d == "uniform":
            return 0.5 * (self.low + self.high)
        return self.mean

    @property
    def upper(self) -> float:
        """A size that almost no task exceeds (for observation bounds)."""
        d = self.distribution
        if d == "constant":
            top = self.value
        elif d == "uniform":
            top = self.high
        elif d == "exponential":
            top = self.mean * 4.6  # 99th percentile
        else:
            mu = math.log(self.mean) - 0.5 * self.sigma**2
            top = math.exp(mu + 2.33 * self.sigma)
        return min(top, self.max) if self.max is not None else top


@dataclass(frozen=True)
class Phase:
    name: str
    duration: float
    arrival: Arrival
    task_size: TaskSize
    deadline: float

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        if self.arrival.shape == "ramp":
            frac = np.clip(np.asarray(t, dtype=float) / self.duration, 0.0, 1.0)
            return self.arrival.rate + (self.arrival.end_rate - self.arrival.rate) * frac
        return self.arrival.rate_at(t)

    @property
    def peak_rate(self) -> float:
        a = self.arrival
        if a.shape == "constant":
            return a.rate
        if a.shape == "ramp":
            return max(a.rate, a.end_rate)
        if a.shape == "sinusoid":
            return max(0.0, a.rate + abs(a.amplitude))
        return max(a.rate, a.burst_rate)

    @property
    def mean_rate(self) -> float:
        grid = (np.arange(2000) + 0.5) * (self.duration / 2000)
        return float(np.mean(self.rate_at(grid)))


@dataclass(frozen=True)
class Workload:
    name: str
    phases: tuple[Phase, ...]
    cold_start: float = 4.0
    concurrency: int = 1
    queue_capacity: int = 400
    description: str | None = None
    source: str | None = None

    @property
    def duration(self) -> float:
        return float(sum(p.duration for p in self.phases))

    @property
    def peak_rate(self) -> float:
        return max(p.peak_rate for p in self.phases)

    @property
    def max_deadline(self) -> float:
        return max(p.deadline for p in self.phases)

    @property
    def max_task_size(self) -> float:
        return max(p.task_size.upper for p in self.phases)

    @property
    def mean_task_size(self) -> float:
        """Mean task size over the whole workload, weighted by expected arrivals."""
        weights = np.array([p.mean_rate * p.duration for p in self.phases])
        sizes = np.array([p.task_size.expected for p in self.phases])
        if weights.sum() <= 0:
            return float(sizes.mean())
        return float((weights * sizes).sum() / weights.sum())

    def per_worker_capacity(self, concurrency: int | None = None) -> float:
        """Tasks per second one warm worker completes: concurrency / mean task size."""
        return (concurrency or self.concurrency) / self.mean_task_size

    def ordered(self, order: Sequence[int]) -> "Workload":
        return replace(self, phases=tuple(self.phases[i] for i in order))

    def to_dict(self) -> dict[str, Any]:
        def arrival(a: Arrival) -> dict[str, Any]:
            keys = _ARRIVAL_KEYS[a.shape] + _ARRIVAL_OPTIONAL.get(a.shape, ())
            return {"shape": a.shape, **{k: getattr(a, k) for k in keys}}

        def size(s: TaskSize) -> dict[str, Any]:
            out = {"distribution": s.distribution, **{k: getattr(s, k) for k in _SIZE_KEYS[s.distribution]}}
            if s.max is not None:
                out["max"] = s.max
            return out

        return {
            "name": self.name,
            **({"description": self.description} if self.description else {}),
            "function": {k: getattr(self, k) for k in FUNCTION_KEYS},
            "phases": [
                {
                    "name": p.name,
                    "duration": p.duration,
                    "arrival": arrival(p.arrival),
                    "task_size": size(p.task_size),
                    "deadline": p.deadline,
                }
                for p in self.phases
            ],
        }


@dataclass
class TaskArrays:
    """An episode's tasks, sorted by arrival time (seconds from the episode start)."""

    arrival: np.ndarray
    size: np.ndarray
    deadline: np.ndarray  # absolute: arrival + the phase's relative deadline
    phase: np.ndarray  # index into the (possibly shuffled) phase list
    phase_starts: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return int(self.arrival.size)


def generate_tasks(workload: Workload, rng: np.random.Generator) -> TaskArrays:
    """Draw every task of one pass through the workload's phases."""
    arrivals, sizes, deadlines, phases, starts = [], [], [], [], []
    start = 0.0
    for i, p in enumerate(workload.phases):
        starts.append(start)
        peak = p.peak_rate
        if peak > 0 and p.duration > 0:
            n = rng.poisson(peak * p.duration)
            t = np.sort(rng.uniform(0.0, p.duration, n))
            keep = rng.uniform(0.0, peak, n) < p.rate_at(t)
            t = t[keep]
        else:
            t = np.zeros(0)
        arrivals.append(t + start)
        sizes.append(p.task_size.sample(rng, t.size))
        deadlines.append(t + start + p.deadline)
        phases.append(np.full(t.size, i, dtype=np.int32))
        start += p.duration
    return TaskArrays(
        arrival=np.concatenate(arrivals) if arrivals else np.zeros(0),
        size=np.concatenate(sizes) if sizes else np.zeros(0),
        deadline=np.concatenate(deadlines) if deadlines else np.zeros(0),
        phase=np.concatenate(phases) if phases else np.zeros(0, dtype=np.int32),
        phase_starts=np.array(starts),
    )


# --------------------------------------------------------------------------- parsing


def _num(value: Any, path: str, *, positive: bool = False, minimum: float | None = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInputError(f"{path}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise BadInputError(f"{path}: {value} is not a finite number")
    if positive and v <= 0:
        raise BadInputError(f"{path}: {value} must be above 0")
    if minimum is not None and v < minimum:
        raise BadInputError(f"{path}: {value} must be at least {minimum:g}")
    return v


def _check_keys(data: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
    import difflib

    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BadInputError(f"{path}: unknown field {key!r}{hint}; allowed: {', '.join(allowed)}")


def _parse_arrival(data: Any, path: str) -> Arrival:
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return Arrival(shape="constant", rate=_num(data, path))
    if not isinstance(data, Mapping):
        raise BadInputError(f"{path}: expected an object like {{shape: constant, rate: 5}}")
    shape = data.get("shape", "constant")
    if shape not in SHAPES:
        raise BadInputError(f"{path}.shape: {shape!r} is not one of {', '.join(SHAPES)}")
    required = _ARRIVAL_KEYS[shape]
    optional = _ARRIVAL_OPTIONAL.get(shape, ())
    _check_keys(data, ("shape", *required, *optional), path)
    values: dict[str, Any] = {}
    for key in required:
        if key not in data:
            raise BadInputError(f"{path}: a {shape} arrival needs {key!r}")
        positive = key in ("period", "burst_interval")
        values[key] = _num(data[key], f"{path}.{key}", positive=positive, minimum=None if key == "amplitude" else 0.0)
    for key in optional:
        if key in data:
            values[key] = _num(data[key], f"{path}.{key}", minimum=None if key == "phase" else 0.0)
    if shape == "burst" and values["burst_duration"] > values["burst_interval"]:
        raise BadInputError(f"{path}.burst_duration: {values['burst_duration']:g} exceeds burst_interval {values['burst_interval']:g}")
    return Arrival(shape=shape, **values)


def _parse_size(data: Any, path: str) -> TaskSize:
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return TaskSize(distribution="constant", value=_num(data, path, positive=True))
    if not isinstance(data, Mapping):
        raise BadInputError(f"{path}: expected an object like {{distribution: exponential, mean: 1.0}}")
    dist = data.get("distribution", "constant")
    if dist not in DISTRIBUTIONS:
        raise BadInputError(f"{path}.distribution: {dist!r} is not one of {', '.join(DISTRIBUTIONS)}")
    required = _SIZE_KEYS[dist]
    _check_keys(data, ("distribution", *required, "max"), path)
    values: dict[str, Any] = {}
    for key in required:
        if key not in data:
            raise BadInputError(f"{path}: a {dist} task size needs {key!r}")
        values[key] = _num(data[key], f"{path}.{key}", positive=key != "low")
    if dist == "uniform" and values["low"] > values["high"]:
        raise BadInputError(f"{path}.low: {values['low']:g} is above high {values['high']:g}; swap them")
    if dist == "uniform" and values["high"] <= 0:
        raise BadInputError(f"{path}.high: must be above 0")
    if "max" in data:
        values["max"] = _num(data["max"], f"{path}.max", positive=True)
    return TaskSize(distribution=dist, **values)


def parse_workload(data: Any, *, source: str | None = None, path: str = "workload") -> Workload:
    """Validate a decoded workload document; errors name the field that is wrong."""
    if not isinstance(data, Mapping):
        raise BadInputError(f"{path}: expected a mapping with 'phases', got {type(data).__name__}")
    _check_keys(data, ("name", "description", "function", "phases"), path)
    function = data.get("function", {}) or {}
    if not isinstance(function, Mapping):
        raise BadInputError(f"{path}.function: expected a mapping")
    _check_keys(function, FUNCTION_KEYS, f"{path}.function")
    phases_raw = data.get("phases")
    if not isinstance(phases_raw, list) or not phases_raw:
        raise BadInputError(f"{path}.phases: give a non-empty list of phases")
    phases = []
    for i, raw in enumerate(phases_raw):
        p = f"{path}.phases[{i}]"
        if not isinstance(raw, Mapping):
            raise BadInputError(f"{p}: expected a mapping")
        _check_keys(raw, ("name", "duration", "arrival", "task_size", "deadline"), p)
        for key in ("duration", "arrival", "task_size", "deadline"):
            if key not in raw:
                raise BadInputError(f"{p}: missing required field {key!r}")
        phases.append(
            Phase(
                name=str(raw.get("name", f"phase{i}")),
                duration=_num(raw["duration"], f"{p}.duration", positive=True),
                arrival=_parse_arrival(raw["arrival"], f"{p}.arrival"),
                task_size=_parse_size(raw["task_size"], f"{p}.task_size"),
                deadline=_num(raw["deadline"], f"{p}.deadline", positive=True),
            )
        )
    kwargs: dict[str, Any] = {}
    if "cold_start" in function:
        kwargs["cold_start"] = _num(function["cold_start"], f"{path}.function.cold_start")
    for key in ("concurrency", "queue_capacity"):
        if key in function:
            v = function[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise BadInputError(f"{path}.function.{key}: expected a whole number >= 1, got {v!r}")
            kwargs[key] = v
    return Workload(
        name=str(data.get("name", "workload")),
        phases=tuple(phases),
        description=data.get("description"),
        source=source,
        **kwargs,
    )


# The default multi-phase workload, embedded so that an installed wheel (which does
# not ship examples/) still has one; examples/workloads/autoscaling.yaml holds the same.
DEFAULT_WORKLOAD: dict[str, Any] = {
    "name": "default-multiphase",
    "description": "240 s in four phases: a quiet night, a ramp up, bursts, and a wave.",
    "function": {"cold_start": 4.0, "concurrency": 1, "queue_capacity": 400},
    "phases": [
        {
            "name": "night",
            "duration": 56,
            "arrival": {"shape": "constant", "rate": 3.0},
            "task_size": {"distribution": "uniform", "low": 0.6, "high": 1.4},
            "deadline": 5.0,
        },
        {
            "name": "ramp-up",
            "duration": 64,
            "arrival": {"shape": "ramp", "rate": 3.0, "end_rate": 10.0},
            "task_size": {"distribution": "uniform", "low": 0.6, "high": 1.4},
            "deadline": 5.0,
        },
        {
            "name": "bursts",
            "duration": 48,
            "arrival": {"shape": "burst", "rate": 8.0, "burst_rate": 16.0, "burst_duration": 8, "burst_interval": 24,
                        "burst_start": 8},
            "task_size": {"distribution": "exponential", "mean": 0.8, "max": 6.0},
            "deadline": 5.0,
        },
        {
            "name": "wave",
            "duration": 72,
            "arrival": {"shape": "sinusoid", "rate": 7.0, "amplitude": 3.0, "period": 96},
            "task_size": {"distribution": "lognormal", "mean": 1.0, "sigma": 0.4},
            "deadline": 5.0,
        },
    ],
}


def load_workload(source: str | Path | Mapping[str, Any] | Workload | None = None) -> Workload:
    """A Workload from a YAML path, a decoded mapping, or None for the default."""
    if isinstance(source, Workload):
        return source
    if source is None:
        return parse_workload(DEFAULT_WORKLOAD, source="<default>")
    if isinstance(source, Mapping):
        return parse_workload(source, source="<inline>")
    import yaml

    from cli_ai.core.files import read_untrusted_text

    p = Path(source)
    # Not a FIFO, a device, a directory or over 10 MB; one line, exit 2.
    text = read_untrusted_text(p, "workload file (see examples/workloads/autoscaling.yaml)")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise BadInputError(f"{p}: {where}not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    return parse_workload(data, source=str(p), path=str(p))
