"""A lightweight DQN for the autoscaling env (seed 002).

- **Network**: an MLP, hidden layers configurable (default two of 64 units, ReLU).
- **Normalisation**: observations are mapped to [-1, 1] with the env's observation
  bounds, the same way in training and inference; the bounds travel with the model.
- **Replay**: the project's uniform `cli_ai.tactician.replay.ReplayBuffer`; learning
  starts once ``warmup`` transitions are stored (default: max(batch_size, 500)).
- **Double DQN**: the online network picks the next action, the target network values it.
- **Target updates**: every ``target_update`` learning steps the target network moves
  towards the online one by Polyak averaging, ``θ' ← τ θ + (1 − τ) θ'`` with
  ``τ = target_tau`` (``target_tau = 1`` is the classic hard copy).
- **Loss**: L2 (mean squared TD error) by default, Huber optional; gradients are
  clipped to a global norm of ``grad_clip``.
- **Exploration**: ε-greedy; `end_episode()` multiplies ε by ``epsilon_decay`` down to
  ``epsilon_end``.

Checkpoints are ``.pt`` files written with `torch.save` and read back with
``weights_only=True``: tensors and plain data only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from cli_ai.errors import BadInputError
from cli_ai.tactician.replay import ReplayBuffer

FORMAT = "cli-ai/dqn"
VERSION = 1


def build_mlp(in_dim: int, out_dim: int, hidden: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [nn.Linear(last, int(width)), nn.ReLU()]
        last = int(width)
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class DQNAgent:
    algorithm = "dqn"

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        low: Sequence[float],
        high: Sequence[float],
        *,
        hidden_layers: Sequence[int] = (64, 64),
        learning_rate: float = 1e-3,
        gamma: float = 0.99,
        batch_size: int = 64,
        replay_capacity: int = 50_000,
        warmup: int | None = None,
        target_update: int = 1,
        target_tau: float = 0.01,
        grad_clip: float | None = 10.0,
        double: bool = True,
        loss: str = "mse",
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.05,
        epsilon_decay: float = 0.98,
        train_every: int = 1,
        seed: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ):
        hidden = [int(h) for h in hidden_layers]
        problems = []
        if not hidden or any(h < 1 for h in hidden):
            problems.append(f"--hidden-layers: give one or more positive widths, got {list(hidden_layers)}")
        if not 0 < learning_rate <= 1:
            problems.append(f"--learning-rate: {learning_rate} must be within (0, 1]")
        if not 0 <= gamma <= 1:
            problems.append(f"--gamma: {gamma} must be within [0, 1]")
        if batch_size < 1:
            problems.append(f"--batch-size: {batch_size} must be at least 1")
        if replay_capacity < batch_size:
            problems.append(f"--replay-capacity: {replay_capacity} must be at least the batch size {batch_size}")
        if target_update < 1:
            problems.append(f"--target-update: {target_update} must be at least 1")
        if not 0 < target_tau <= 1:
            problems.append(f"--target-tau: {target_tau} must be within (0, 1]")
        for name, value in (("epsilon-start", epsilon_start), ("epsilon-end", epsilon_end), ("epsilon-decay", epsilon_decay)):
            if not 0 <= value <= 1:
                problems.append(f"--{name}: {value} must be within [0, 1]")
        if loss not in ("mse", "huber"):
            problems.append(f"loss: {loss!r} is not one of mse, huber")
        if problems:
            raise BadInputError(problems[0], problems=problems)
        self.obs_dim = int(obs_dim)
        self.n_actions = int(n_actions)
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)
        self._center = (self.high + self.low) / 2.0
        self._scale = np.maximum((self.high - self.low) / 2.0, 1e-6)
        self.hidden_layers = hidden
        self.learning_rate = float(learning_rate)
        self.gamma = float(gamma)
        self.batch_size = int(batch_size)
        self.replay_capacity = int(replay_capacity)
        self.warmup = int(warmup) if warmup is not None else max(self.batch_size, 500)
        self.target_update = int(target_update)
        self.target_tau = float(target_tau)
        self.grad_clip = grad_clip
        self.double = bool(double)
        self.loss_name = loss
        self.epsilon = float(epsilon_start)
        self.epsilon_start = float(epsilon_start)
        self.epsilon_end = float(epsilon_end)
        self.epsilon_decay = float(epsilon_decay)
        self.train_every = max(1, int(train_every))
        self.seed = seed
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.rng = np.random.default_rng(seed)
        if seed is not None:
            torch.manual_seed(seed)
        self.online = build_mlp(self.obs_dim, self.n_actions, hidden)
        self.target = build_mlp(self.obs_dim, self.n_actions, hidden)
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=self.learning_rate)
        self.buffer = ReplayBuffer(self.replay_capacity, seed=seed)
        self.steps = 0  # transitions seen
        self.learn_steps = 0
        self.target_syncs = 0

    @classmethod
    def from_env(cls, env, **kwargs: Any) -> "DQNAgent":
        space = env.observation_space
        return cls(space.shape[0], env.action_space.n, space.low, space.high, **kwargs)

    # ------------------------------------------------------------------ policy
    def normalize(self, obs) -> np.ndarray:
        x = (np.asarray(obs, dtype=np.float32) - self._center) / self._scale
        return np.clip(x, -1.0, 1.0).astype(np.float32)

    def q_values(self, obs) -> np.ndarray:
        with torch.no_grad():
            x = torch.as_tensor(self.normalize(obs)).unsqueeze(0)
            return self.online(x).squeeze(0).numpy()

    def act(self, obs, *, greedy: bool = True) -> int:
        if not greedy and self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.n_actions))
        return int(np.argmax(self.q_values(obs)))

    def reset(self) -> None:
        """Episodes carry no agent state; present for a uniform policy interface."""

    # ------------------------------------------------------------------ learning
    def remember(self, obs, action: int, reward: float, next_obs, done: bool) -> float | None:
        """Store a transition (``done`` = terminated, not truncated) and learn when due;
        returns the loss of the learning step, if one ran."""
        self.buffer.push(self.normalize(obs), int(action), float(reward), self.normalize(next_obs), bool(done))
        self.steps += 1
        if len(self.buffer) < self.warmup or not self.buffer.is_ready(self.batch_size):
            return None
        if self.steps % self.train_every:
            return None
        return self.learn()

    def learn(self) -> float:
        states, actions, rewards, next_states, dones = self.buffer.sample(self.batch_size)
        s = torch.as_tensor(states)
        a = torch.as_tensor(actions, dtype=torch.int64).view(-1, 1)
        r = torch.as_tensor(rewards, dtype=torch.float32)
        s2 = torch.as_tensor(next_states)
        d = torch.as_tensor(dones, dtype=torch.float32)
        q = self.online(s).gather(1, a).squeeze(1)
        with torch.no_grad():
            if self.double:
                best = self.online(s2).argmax(dim=1, keepdim=True)
                q_next = self.target(s2).gather(1, best).squeeze(1)
            else:
                q_next = self.target(s2).max(dim=1).values
            target = r + self.gamma * (1.0 - d) * q_next
        if self.loss_name == "huber":
            loss = nn.functional.smooth_l1_loss(q, target)
        else:
            loss = nn.functional.mse_loss(q, target)
        self.optimizer.zero_grad()
        loss.backward()
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.online.parameters(), self.grad_clip)
        self.optimizer.step()
        self.learn_steps += 1
        if self.learn_steps % self.target_update == 0:
            self.sync_target()
        return float(loss.item())

    def sync_target(self) -> None:
        """Polyak update: θ' ← τ θ + (1 − τ) θ'."""
        tau = self.target_tau
        with torch.no_grad():
            for p_t, p in zip(self.target.parameters(), self.online.parameters()):
                p_t.mul_(1.0 - tau).add_(p, alpha=tau)
        self.target_syncs += 1

    def end_episode(self) -> float:
        self.epsilon = max(self.epsilon_end, self.epsilon * self.epsilon_decay)
        return self.epsilon

    decay_epsilon = end_episode

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        return {
            "obs_dim": self.obs_dim,
            "n_actions": self.n_actions,
            "low": [float(v) for v in self.low],
            "high": [float(v) for v in self.high],
            "hidden_layers": list(self.hidden_layers),
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "batch_size": self.batch_size,
            "replay_capacity": self.replay_capacity,
            "warmup": self.warmup,
            "target_update": self.target_update,
            "target_tau": self.target_tau,
            "grad_clip": self.grad_clip,
            "double": self.double,
            "loss": self.loss_name,
            "epsilon_start": self.epsilon_start,
            "epsilon_end": self.epsilon_end,
            "epsilon_decay": self.epsilon_decay,
            "train_every": self.train_every,
            "seed": self.seed,
        }

    def save(self, path: str | Path) -> Path:
        from cli_ai.tactician.agents.sarsa import _plain

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "config": self.config(),
            "epsilon": self.epsilon,
            "steps": self.steps,
            "learn_steps": self.learn_steps,
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "metadata": _plain(self.metadata),
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "DQNAgent":
        path = Path(path)
        if not path.exists():
            raise BadInputError(f"{path}: no such DQN model file")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a wrong file
            raise BadInputError(f"{path}: not a cli-ai DQN checkpoint ({type(exc).__name__}: {exc})") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise BadInputError(f"{path}: not a cli-ai DQN checkpoint (format marker missing)")
        cfg = dict(payload["config"])
        agent = cls(
            cfg.pop("obs_dim"),
            cfg.pop("n_actions"),
            cfg.pop("low"),
            cfg.pop("high"),
            metadata=payload.get("metadata") or {},
            **cfg,
        )
        agent.online.load_state_dict(payload["online"])
        agent.target.load_state_dict(payload["target"])
        agent.epsilon = float(payload.get("epsilon", agent.epsilon_end))
        agent.steps = int(payload.get("steps", 0))
        agent.learn_steps = int(payload.get("learn_steps", 0))
        return agent
