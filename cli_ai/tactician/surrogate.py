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
        # The simulated system metrics depend on the knobs through directions
        # of their own, drawn apart from the optimum: they used to be linear in
        # the score, which leaked the objective into the observation and the
        # stability reward (the dry run overstated what an agent can learn).
        # Each direction is made orthogonal to the optimum's, so moving along it
        # tells nothing about the score (with one knob, the metrics stay flat).
        system_rng = np.random.default_rng(_stable_seed("system", *space.names, seed or 0))
        o = self.optimum_action.astype(np.float64)
        self._system_directions = {}
        for name in SYSTEM_RANGES:
            w = system_rng.normal(0.0, 1.0, size=space.dims)
            if float(o @ o) > 0:
                w = w - (float(w @ o) / float(o @ o)) * o
            self._system_directions[name] = w
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
        """Simulated system metrics: each a smooth function of the knobs along
        its own random direction (independent of where the optimum is), inside
        a plausible range."""
        u = self.space.to_action(values).astype(np.float64)
        out = {}
        for name, (low, high) in SYSTEM_RANGES.items():
            direction = self._system_directions[name]
            z = float(direction @ u) / max(1.0, np.sqrt(u.size)) if u.size else 0.0
            out[name] = low + (high - low) / (1.0 + np.exp(-2.0 * z))
        return out


class SimulatedObserver:
    """System metrics of the dry run, taken from the surrogate's last evaluation."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def snapshot(self) -> float:
        return time.monotonic()

    def since(self, snapshot: object) -> dict[str, float]:
        return dict(self.last)
