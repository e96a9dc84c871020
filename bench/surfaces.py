"""Response surfaces for bench/search.py: noisy stand-ins for a benchmark whose
result depends on a handful of knobs, each with a known best.

Each surface is a `Surface`: knobs in the tuning spec's own format (the
command target's `action_space`, with defaults: where a run starts), and a
noise-free function `f(values) -> score` (higher is better) that raises
`Crash` in a region where the "program" fails. A measurement is
`f * (1 + cv * N(0, 1))`, the multiplicative noise of a real benchmark.

Run as a program it is the benchmark of a `command`-target spec:

    python3 -I bench/surfaces.py SURFACE STATE_FILE NOISE_SEED name=value ...

prints `score: <value>` (or exits 1 in the crash region). STATE_FILE counts
the evaluations, so the noise of the n-th evaluation of a run is the same
whether it is measured through the command target or in-process.

Only the standard library is imported: each evaluation is a new process.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping


class Crash(Exception):
    """The configuration makes the program fail."""


@dataclass(frozen=True)
class Surface:
    name: str
    description: str
    knobs: tuple[dict[str, Any], ...]  # action_space entries (command target), each with a "default"
    f: Callable[[Mapping[str, Any]], float]
    cv: float  # run-to-run noise (coefficient of variation)

    @property
    def defaults(self) -> dict[str, Any]:
        return {k["param"]: _native(k, k["default"]) for k in self.knobs}


def _native(knob: Mapping[str, Any], value: Any) -> Any:
    if knob["type"] == "vector":
        return tuple(value)
    return value


# --------------------------------------------------------------------------- helpers


def unit(knob: Mapping[str, Any], x: float, lo: float | None = None, hi: float | None = None) -> float:
    """x's position in its range, 0..1 (log ranges in orders of magnitude)."""
    lo = knob["min"] if lo is None else lo
    hi = knob["max"] if hi is None else hi
    if knob.get("scale") == "log":
        return (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (x - lo) / (hi - lo)


def hump(u: float, centre: float, width: float) -> float:
    return math.exp(-(((u - centre) / width) ** 2))


def _k(spec: tuple[dict[str, Any], ...], name: str) -> dict[str, Any]:
    return next(k for k in spec if k["param"] == name)


# --------------------------------------------------------------------------- 1. smooth

SMOOTH = (
    {"param": "workers", "type": "int", "min": 1, "max": 64, "default": 4},
    {"param": "batch", "type": "int", "min": 1, "max": 512, "default": 16},
    {"param": "ratio", "type": "float", "min": 0.0, "max": 1.0, "default": 0.5},
    {"param": "buffer_kb", "type": "int", "min": 4, "max": 65536, "scale": "log", "default": 64},
)


def smooth(v: Mapping[str, Any]) -> float:
    """One broad optimum with interactions: more workers pay off only with
    bigger batches; the buffer saturates; the ratio has a sweet spot."""
    w = unit(_k(SMOOTH, "workers"), v["workers"])
    b = unit(_k(SMOOTH, "batch"), v["batch"])
    r = v["ratio"]
    buf = unit(_k(SMOOTH, "buffer_kb"), v["buffer_kb"])
    parallel = hump(w, 0.55 + 0.2 * b, 0.35)
    batching = hump(b, 0.6, 0.4)
    ratio = hump(r, 0.3, 0.35)
    buffer = 1 - 0.7 * math.exp(-4 * buf) - 0.15 * max(0.0, buf - 0.8) / 0.2
    return 1000.0 * (0.3 + 0.7 * parallel * batching) * (0.6 + 0.4 * ratio) * buffer


# --------------------------------------------------------------------------- 2. rugged

RUGGED = (
    {"param": "a", "type": "float", "min": -5.0, "max": 5.0, "default": -3.0},
    {"param": "b", "type": "float", "min": -5.0, "max": 5.0, "default": 3.5},
    {"param": "c", "type": "int", "min": 0, "max": 200, "default": 20},
)


def rugged(v: Mapping[str, Any]) -> float:
    """A broad trend under ripples: many local optima, one global."""
    a, b = v["a"], v["b"]
    c = unit(_k(RUGGED, "c"), v["c"])
    trend = hump(a, 1.5, 3.0) * hump(b, -1.0, 3.0) * (0.5 + 0.5 * hump(c, 0.7, 0.4))
    ripples = (math.cos(2.2 * a) ** 2) * (math.cos(1.7 * b + 0.5) ** 2) * (0.6 + 0.4 * math.cos(12 * c) ** 2)
    return 800.0 * (0.25 + 0.45 * trend + 0.3 * trend * ripples + 0.1 * ripples)


# --------------------------------------------------------------------------- 3. irrelevant dimensions

IRRELEVANT = tuple(
    [
        {"param": "threads", "type": "int", "min": 1, "max": 128, "default": 8},
        {"param": "cache_mb", "type": "int", "min": 16, "max": 16384, "scale": "log", "default": 128},
        {"param": "prefetch", "type": "float", "min": 0.0, "max": 1.0, "default": 0.1},
    ]
    + [{"param": f"noop{i}", "type": "int", "min": 0, "max": 1000, "default": 500} for i in range(7)]
)


def irrelevant(v: Mapping[str, Any]) -> float:
    """Ten knobs, three of which matter (the rest do nothing at all)."""
    t = unit(_k(IRRELEVANT, "threads"), v["threads"])
    cache = unit(_k(IRRELEVANT, "cache_mb"), v["cache_mb"])
    p = v["prefetch"]
    return 500.0 * (0.35 + 0.65 * hump(t, 0.4, 0.3)) * (0.5 + 0.5 * hump(cache, 0.75, 0.3)) * (0.8 + 0.2 * hump(p, 0.6, 0.3))


# --------------------------------------------------------------------------- 4. crash region

CRASH = (
    {"param": "heap_mb", "type": "int", "min": 64, "max": 8192, "scale": "log", "default": 256},
    {"param": "conns", "type": "int", "min": 10, "max": 2000, "default": 100},
    {"param": "timeout_ms", "type": "int", "min": 10, "max": 5000, "default": 1000},
    {"param": "compress", "type": "bool", "default": False},
)


def crash(v: Mapping[str, Any]) -> float:
    """More memory and more connections go faster until, together, they
    exhaust memory and the program dies: the optimum lies near the edge."""
    heap = unit(_k(CRASH, "heap_mb"), v["heap_mb"])
    conns = unit(_k(CRASH, "conns"), v["conns"])
    if heap + conns > 1.25:
        raise Crash("out of memory: heap and connection buffers exceed the machine")
    t = unit(_k(CRASH, "timeout_ms"), v["timeout_ms"])
    speed = (0.2 + 0.8 * heap) * (0.3 + 0.7 * math.sqrt(conns))
    timeouts = 0.7 + 0.3 * hump(t, 0.25, 0.3)
    compression = 1.08 if v["compress"] else 1.0
    return 300.0 * speed * timeouts * compression


# --------------------------------------------------------------------------- 5. categoricals and bools

CATEGORICAL = (
    {"param": "algo", "type": "enum", "values": ["cubic", "reno", "bbr", "vegas"], "default": "cubic"},
    {"param": "sched", "type": "enum", "values": ["none", "mq-deadline", "kyber"], "default": "mq-deadline"},
    {"param": "nodelay", "type": "bool", "default": False},
    {"param": "pacing", "type": "bool", "default": True},
    {"param": "window", "type": "int", "min": 1, "max": 100, "default": 10},
    {"param": "depth", "type": "int", "min": 1, "max": 256, "default": 32},
)

_ALGO_GAIN = {"cubic": 1.0, "reno": 0.85, "bbr": 1.2, "vegas": 0.9}
_ALGO_WINDOW = {"cubic": 0.5, "reno": 0.4, "bbr": 0.8, "vegas": 0.3}
_SCHED_GAIN = {"none": 1.1, "mq-deadline": 1.0, "kyber": 0.95}


def categorical(v: Mapping[str, Any]) -> float:
    """Enum choices whose best numeric settings differ: bbr wants a large
    window, and pacing only helps with bbr; nodelay helps alone."""
    w = unit(_k(CATEGORICAL, "window"), v["window"])
    d = unit(_k(CATEGORICAL, "depth"), v["depth"])
    algo, sched = v["algo"], v["sched"]
    score = _ALGO_GAIN[algo] * _SCHED_GAIN[sched] * (0.4 + 0.6 * hump(w, _ALGO_WINDOW[algo], 0.25))
    score *= 0.6 + 0.4 * hump(d, 0.3 if sched == "none" else 0.6, 0.3)
    score *= 1.1 if v["nodelay"] else 1.0
    if v["pacing"]:
        score *= 1.12 if algo == "bbr" else 0.93
    return 400.0 * score


# --------------------------------------------------------------------------- 6. log-scaled knobs

LOGSCALE = (
    {"param": "rmem", "type": "vector", "elements": [{"min": 4096, "max": 4096},
                                                     {"min": 16384, "max": 4194304, "scale": "log"},
                                                     {"min": 65536, "max": 67108864, "scale": "log"}],
     "default": [4096, 87380, 262144]},
    {"param": "backlog", "type": "int", "min": 16, "max": 65536, "scale": "log", "default": 128},
    {"param": "budget_us", "type": "int", "min": 100, "max": 100000, "scale": "log", "default": 2000},
)


def logscale(v: Mapping[str, Any]) -> float:
    """Buffers and queues over orders of magnitude: each has a best order
    of magnitude, far from the default."""
    _, default, maximum = v["rmem"]
    el = _k(LOGSCALE, "rmem")["elements"]
    d = unit({"scale": "log"}, default, el[1]["min"], el[1]["max"])
    m = unit({"scale": "log"}, maximum, el[2]["min"], el[2]["max"])
    q = unit(_k(LOGSCALE, "backlog"), v["backlog"])
    us = unit(_k(LOGSCALE, "budget_us"), v["budget_us"])
    buffers = (0.4 + 0.6 * hump(d, 0.55, 0.25)) * (0.5 + 0.5 * hump(m, 0.7, 0.3))
    return 2000.0 * buffers * (0.5 + 0.5 * hump(q, 0.65, 0.25)) * (0.75 + 0.25 * hump(us, 0.3, 0.3))


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        Surface("smooth", "4 knobs (int, float, log int), one broad optimum with interactions", SMOOTH, smooth, 0.02),
        Surface("rugged", "3 knobs, a trend under ripples: many local optima", RUGGED, rugged, 0.03),
        Surface("irrelevant", "10 knobs, 3 of which matter", IRRELEVANT, irrelevant, 0.03),
        Surface("crash", "4 knobs, the optimum at the edge of a crash region", CRASH, crash, 0.03),
        Surface("categorical", "2 enums, 2 bools, 2 ints with interactions", CATEGORICAL, categorical, 0.04),
        Surface("logscale", "log-scaled knobs over orders of magnitude, a vector with a fixed element", LOGSCALE,
                logscale, 0.05),
    )
}


def noisy(surface: Surface, values: Mapping[str, Any], seed: int, index: int) -> float:
    """The index-th measurement of a run: f * (1 + cv * N(0, 1)), reproducible."""
    value = surface.f(values)
    rng = random.Random(f"{surface.name}|{seed}|{index}")
    return value * (1.0 + surface.cv * rng.gauss(0.0, 1.0))


def parse_value(knob: Mapping[str, Any], text: str) -> Any:
    t = knob["type"]
    if t == "int":
        return int(text)
    if t == "float":
        return float(text)
    if t == "bool":
        return text == "true"
    if t == "vector":
        return tuple(int(x) for x in text.split())
    return text


def main(argv: list[str]) -> int:
    name, state, seed = argv[0], argv[1], int(argv[2])
    surface = SURFACES[name]
    knobs = {k["param"]: k for k in surface.knobs}
    values = {}
    for arg in argv[3:]:
        key, _, text = arg.partition("=")
        values[key] = parse_value(knobs[key], text)
    try:
        with open(state) as fh:
            index = int(fh.read() or 0)
    except FileNotFoundError:
        index = 0
    with open(state, "w") as fh:
        fh.write(str(index + 1))
    try:
        print(f"score: {noisy(surface, values, seed, index):.6f}")
    except Crash as exc:
        print(f"fatal: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
