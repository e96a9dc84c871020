"""Tabular SARSA(λ) for the autoscaling env (seed 002).

Observations are discretised per dimension: dimension ``i`` of the observation is cut
into ``bins[i]`` equal intervals between the env's observation bounds ``low[i]`` and
``high[i]``; values outside fall into the first or last interval. The state is the tuple
of interval indices, and the Q-table is a dict from state to one value per action, so
only visited states take memory (a 4x30x4x40x16x18x18x15x20 grid is never allocated).

Learning is on-policy SARSA with eligibility traces (SARSA(λ)): after each transition
``(s, a, r, s', a')``::

    δ = r + γ Q(s', a') − Q(s, a)          (r − Q(s, a) at a terminal step)
    e(s, a) = 1                             (replacing traces)
    Q(x, b) += α δ e(x, b)  and  e(x, b) *= γλ   for every traced pair
    traces below ``trace_threshold`` are dropped.

``trace_lambda = 0`` is one-step SARSA. Exploration is ε-greedy; ``decay_epsilon()``
(once per episode) multiplies ε by ``epsilon_decay`` down to ``epsilon_min``.

Persistence: `save` writes a pickle of plain Python data only (dicts, lists, tuples,
numbers, strings) and `load` reads it with an unpickler that refuses every global, so
loading a model file cannot run code. The ``.pkl`` names of seed 002 are kept.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from cli_ai.errors import BadInputError

FORMAT = "cli-ai/sarsa"
VERSION = 1


class _PlainUnpickler(pickle.Unpickler):
    """Only builtin containers and scalars: any class or function reference is refused."""

    def find_class(self, module: str, name: str):  # noqa: D401
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a SARSA model holds plain data only")


class SarsaAgent:
    algorithm = "sarsa"

    def __init__(
        self,
        n_actions: int,
        low: Sequence[float],
        high: Sequence[float],
        bins: Sequence[int],
        *,
        alpha: float | None = None,
        gamma: float = 0.99,
        epsilon: float = 1.0,
        epsilon_min: float = 0.05,
        epsilon_decay: float = 0.99,
        trace_lambda: float = 0.6,
        trace_threshold: float = 1e-3,
        initial_q: float = 0.0,
        seed: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ):
        low = np.asarray(low, dtype=float)
        high = np.asarray(high, dtype=float)
        bins_arr = np.asarray(bins)
        if low.shape != high.shape or low.ndim != 1:
            raise ValueError("low and high must be 1-D and of the same length")
        if bins_arr.shape != low.shape:
            raise BadInputError(f"--bins: give {low.size} integers, one per observation element; got {bins_arr.size}")
        if not np.issubdtype(bins_arr.dtype, np.integer) or (bins_arr < 1).any():
            raise BadInputError(f"--bins: every value must be a whole number >= 1; got {list(bins)}")
        if not np.all(np.isfinite(low)) or not np.all(np.isfinite(high)) or np.any(high <= low):
            raise ValueError("observation bounds must be finite with high > low in every dimension")
        if alpha is None:
            alpha = 0.03 if trace_lambda > 0 else 0.1
        for name, value, lo, hi in (
            ("alpha", alpha, 0.0, 1.0),
            ("gamma", gamma, 0.0, 1.0),
            ("epsilon", epsilon, 0.0, 1.0),
            ("epsilon_min", epsilon_min, 0.0, 1.0),
            ("epsilon_decay", epsilon_decay, 0.0, 1.0),
            ("trace_lambda", trace_lambda, 0.0, 1.0),
        ):
            if not lo <= value <= hi:
                raise BadInputError(f"--{name.replace('_', '-')}: {value} must be within [{lo:g}, {hi:g}]")
        if alpha <= 0:
            raise BadInputError(f"--alpha: {alpha} must be above 0")
        if trace_threshold < 0:
            raise BadInputError(f"--trace-threshold: {trace_threshold} must be at least 0")
        self.n_actions = int(n_actions)
        self.low = low
        self.high = high
        self.bins = bins_arr.astype(np.int64)
        self._width = (high - low) / self.bins
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.epsilon_min = float(epsilon_min)
        self.epsilon_decay = float(epsilon_decay)
        self.trace_lambda = float(trace_lambda)
        self.trace_threshold = float(trace_threshold)
        self.initial_q = float(initial_q)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.q: dict[tuple[int, ...], np.ndarray] = {}
        self.traces: dict[tuple[tuple[int, ...], int], float] = {}
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.updates = 0

    @classmethod
    def from_env(cls, env, bins: Sequence[int], **kwargs: Any) -> "SarsaAgent":
        space = env.observation_space
        return cls(env.action_space.n, space.low, space.high, bins, **kwargs)

    # ------------------------------------------------------------------ policy
    def discretize(self, obs: Sequence[float]) -> tuple[int, ...]:
        x = np.asarray(obs, dtype=float)
        idx = np.floor((x - self.low) / self._width).astype(np.int64)
        return tuple(np.clip(idx, 0, self.bins - 1).tolist())

    def q_values(self, state: tuple[int, ...]) -> np.ndarray:
        q = self.q.get(state)
        if q is None:
            q = np.full(self.n_actions, self.initial_q)
            self.q[state] = q
        return q

    def select(self, state: tuple[int, ...], *, greedy: bool = False) -> int:
        if not greedy and self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.n_actions))
        q = self.q.get(state)
        if q is None:
            return int(self.rng.integers(self.n_actions)) if not greedy else self.n_actions // 2
        best = np.flatnonzero(q == q.max())
        if best.size == 1:
            return int(best[0])
        if greedy:  # deterministic tie-break: no-op (the middle action) if it is among the best
            return self.n_actions // 2 if self.n_actions // 2 in best else int(best[0])
        return int(self.rng.choice(best))

    def act(self, obs: Sequence[float], *, greedy: bool = True) -> int:
        """The action for an observation: greedy (evaluation) or ε-greedy (training)."""
        return self.select(self.discretize(obs), greedy=greedy)

    def reset(self) -> None:
        """Start an episode: forget the eligibility traces."""
        self.traces.clear()

    begin_episode = reset

    # ------------------------------------------------------------------ learning
    def update(self, state, action: int, reward: float, next_state, next_action: int | None, done: bool) -> float:
        """One SARSA(λ) update; returns the TD error."""
        q_sa = self.q_values(state)[action]
        if done or next_action is None:
            target = reward
        else:
            target = reward + self.gamma * self.q_values(next_state)[next_action]
        delta = float(target - q_sa)
        if self.trace_lambda <= 0:
            self.q[state][action] += self.alpha * delta
            self.updates += 1
            return delta
        traces = self.traces
        traces[(state, action)] = 1.0  # replacing trace
        decay = self.gamma * self.trace_lambda
        step = self.alpha * delta
        dead = []
        for key, e in traces.items():
            s, a = key
            self.q[s][a] += step * e
            e *= decay
            if e < self.trace_threshold:
                dead.append(key)
            else:
                traces[key] = e
        for key in dead:
            del traces[key]
        if done:
            traces.clear()
        self.updates += 1
        return delta

    def decay_epsilon(self) -> float:
        self.epsilon = max(self.epsilon_min, self.epsilon * self.epsilon_decay)
        return self.epsilon

    def trace_summary(self) -> dict[str, float]:
        values = list(self.traces.values())
        return {
            "active": len(values),
            "max": max(values) if values else 0.0,
            "mean": sum(values) / len(values) if values else 0.0,
        }

    @property
    def table_size(self) -> int:
        return len(self.q)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        return {
            "n_actions": self.n_actions,
            "low": self.low.tolist(),
            "high": self.high.tolist(),
            "bins": self.bins.tolist(),
            "alpha": self.alpha,
            "gamma": self.gamma,
            "epsilon": self.epsilon,
            "epsilon_min": self.epsilon_min,
            "epsilon_decay": self.epsilon_decay,
            "trace_lambda": self.trace_lambda,
            "trace_threshold": self.trace_threshold,
            "initial_q": self.initial_q,
            "seed": self.seed,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "config": self.config(),
            "metadata": _plain(self.metadata),
            "updates": self.updates,
            "q": {state: [float(v) for v in values] for state, values in self.q.items()},
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(payload, fh, protocol=4)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SarsaAgent":
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BadInputError(f"{path}: no such SARSA model file") from None
        try:
            payload = _PlainUnpickler(io.BytesIO(data)).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise BadInputError(f"{path}: not a cli-ai SARSA model ({exc})") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise BadInputError(f"{path}: not a cli-ai SARSA model (format marker missing)")
        cfg = dict(payload["config"])
        epsilon = cfg.pop("epsilon")
        agent = cls(
            cfg.pop("n_actions"),
            cfg.pop("low"),
            cfg.pop("high"),
            cfg.pop("bins"),
            epsilon=epsilon,
            metadata=payload.get("metadata") or {},
            **cfg,
        )
        n = agent.n_actions
        for state, values in payload["q"].items():
            if len(values) != n:
                raise BadInputError(f"{path}: a Q-table row has {len(values)} values, expected {n}")
            agent.q[tuple(int(i) for i in state)] = np.asarray(values, dtype=float)
        agent.updates = int(payload.get("updates", 0))
        return agent


def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples inside metadata to plain Python."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
