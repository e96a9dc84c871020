"""The dry run's stand-in for a benchmark: a deterministic, noisy, smooth
response surface over the spec's knobs with a known optimum.

Its numbers are simulated and every output that shows them says so. It lets
the whole loop (agent, env, reward, guard, run directory) run in seconds with
no root, no tools and nothing written to the machine.
"""

from __future__ import annotations

import hashlib
import time
from typing import Mapping

import numpy as np

from cli_ai.core.backend import Value
from cli_ai.tactician.knobs import KnobSpace


# Each simulated system metric's range (fractions, or a load per core).
SYSTEM_RANGES = {
    "cpu_utilization": (0.45, 0.85),
    "iowait": (0.02, 0.10),
    "memory_used": (0.35, 0.45),
    "memory_pressure": (0.01, 0.06),
    "io_pressure": (0.02, 0.12),
    "cpu_pressure": (0.03, 0.08),
    "load_average": (0.4, 0.6),
    "context_switches": (0.5, 0.7),
    "swap_used": (0.0, 0.0),
}


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


class SurrogateBenchmark:
    """metric(values) = level * response(u) * (1 + noise), u = normalized knobs.

    The response is a Gaussian bump around an optimum drawn from the knob names
    (and the seed), so every spec gets its own landscape, but a fixed one. For a
    `minimize` metric the surface is inverted: the optimum is the lowest point.
    """

    def __init__(
        self,
        space: KnobSpace,
        *,
        direction: str = "maximize",
        seed: int | None = None,
        noise: float = 0.01,
        width: float = 0.6,
        level: float | None = None,
        start: Mapping[str, Value] | None = None,
        min_distance: float = 0.5,
    ):
        """
        :param start: the configuration the run starts from; the optimum is
            drawn at least `min_distance` (RMS per dimension, in normalized
            units) away from it, so the dry run has something to find, as a
            real tune presumes the defaults can be improved on.
        """
        self.space = space
        self.direction = direction
        self.noise = noise
        self.width = width
        landscape = np.random.default_rng(_stable_seed(*space.names, seed or 0))
        self.optimum_action = landscape.uniform(-0.7, 0.7, size=space.dims)
        if start is not None and space.dims:
            origin = space.to_action(start).astype(np.float64)
            for _ in range(100):
                if np.sqrt(np.mean((self.optimum_action - origin) ** 2)) >= min_distance:
                    break
                self.optimum_action = landscape.uniform(-0.7, 0.7, size=space.dims)
        self.level = level if level is not None else float(landscape.uniform(500, 5000))
        # The simulated system metrics used to be linear in the score, which
        # leaked the objective into the observation and the stability reward
        # (the dry run overstated what an agent can learn). Now each
        # configuration gets its own draw, a hash of its values: they move with
        # the knobs, and say nothing about the score (not even how far the
        # optimum is, as any smooth function of the knobs would).
        self._system_seed = seed or 0
        self.rng = np.random.default_rng(_stable_seed("noise", seed or 0))
        self.calls = 0

    def quality(self, values: Mapping[str, Value]) -> float:
        """1 at the optimum, falling smoothly towards 0 away from it."""
        u = self.space.to_action(values).astype(np.float64)
        if u.size == 0:
            return 1.0
        d2 = float(np.sum((u - self.optimum_action) ** 2)) / u.size
        return float(np.exp(-d2 / (2 * self.width**2)))

    def optimum(self) -> dict[str, Value]:
        return self.space.to_native(self.optimum_action)

    def measure(self, values: Mapping[str, Value]) -> tuple[float, dict[str, float]]:
        """(metric, simulated system metrics) for one evaluation."""
        self.calls += 1
        q = self.quality(values)
        eps = float(self.rng.normal(0.0, self.noise))
        if self.direction == "minimize":
            metric = self.level * (1.6 - 0.8 * q) * (1 + eps)
        else:
            metric = self.level * (0.4 + 0.8 * q) * (1 + eps)
        return metric, self.system(values)

    def system(self, values: Mapping[str, Value]) -> dict[str, float]:
        """Simulated system metrics: a deterministic draw per configuration,
        inside a plausible range, independent of the score."""
        key = sorted((k, _canonical(v)) for k, v in values.items())
        rng = np.random.default_rng(_stable_seed("system", self._system_seed, *key))
        return {name: float(rng.uniform(low, high)) if high > low else float(low)
                for name, (low, high) in SYSTEM_RANGES.items()}


def _canonical(value: Value) -> str:
    """A value's text for hashing: floats to 9 significant digits, so a value
    that went through a round trip hashes as the same configuration."""
    if isinstance(value, float):
        return f"{value:.9g}"
    if isinstance(value, (tuple, list)):
        return ",".join(_canonical(v) for v in value)
    return str(value)


class SimulatedObserver:
    """System metrics of the dry run, taken from the surrogate's last evaluation."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def snapshot(self) -> float:
        return time.monotonic()

    def since(self, snapshot: object) -> dict[str, float]:
        return dict(self.last)
