"""Prioritized experience replay inside Stable-Baselines3's DDPG (seed 000).

SB3 keeps its own training loop; we only swap two parts:

* :class:`PrioritizedSB3ReplayBuffer`, a subclass of SB3's ``ReplayBuffer``
  whose constructor takes exactly what ``OffPolicyAlgorithm._setup_model``
  passes (plus the PER settings through ``replay_buffer_kwargs``). Each
  ``(row, env)`` cell of SB3's ``(buffer_size, n_envs)`` storage is one leaf of
  the vectorized :class:`~cli_ai.tactician.replay.SumTree`, so ``n_envs > 1``
  is prioritized per transition, not per row.
* :class:`PrioritizedDDPG`, a ``DDPG`` that overrides only ``train()``: the
  same steps as SB3's TD3/DDPG ``train()``, with the critic loss weighted by
  the importance-sampling weights and the priorities set to the per-sample
  absolute TD errors after each gradient step.

``build_per_ddpg`` puts them together for the agent factory
(``algorithm: per-ddpg``), with the CDBTuner defaults of seed 000 as the
``cdbtuner`` preset.

This module imports torch and SB3; import it only when an agent is built.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import DDPG
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import polyak_update, update_learning_rate

try:  # SB3 >= 2.6; get_schedule_fn is deprecated there
    from stable_baselines3.common.utils import FloatSchedule as _schedule
except ImportError:  # pragma: no cover - older SB3
    from stable_baselines3.common.utils import get_schedule_fn as _schedule
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.td3.policies import TD3Policy

from cli_ai.tactician.replay import SumTree, write_priorities

__all__ = [
    "CDBTUNER_PRESET",
    "PRESETS",
    "CustomDDPGPolicy",
    "PrioritizedDDPG",
    "PrioritizedReplayBufferSamples",
    "PrioritizedSB3ReplayBuffer",
    "build_per_ddpg",
]


class PrioritizedReplayBufferSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` fields, in the same order, plus the PER extras.

    A separate NamedTuple (a NamedTuple cannot be extended with fields by
    subclassing); every SB3 ``train()`` reads samples by attribute, so it works
    wherever ``ReplayBufferSamples`` does.
    """

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None
    #: Importance-sampling weights, shape (batch, 1), float32, largest = 1.
    weights: th.Tensor | None = None
    #: Flat leaf ids ``row * n_envs + env`` to hand back to ``update_priorities``.
    indices: np.ndarray | None = None


class PrioritizedSB3ReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay with SB3's ``ReplayBuffer`` storage and API.

    Sampling draws cell ``i`` with probability ``p_i^alpha / sum_k p_k^alpha``
    (stratified over the batch) and returns
    :class:`PrioritizedReplayBufferSamples` with importance-sampling weights
    ``(N * P(i))^-beta`` normalized so the largest in the batch is 1. New
    transitions get the largest priority seen so far.

    Beta anneals from ``beta`` to ``beta_end``: by ``beta_increment`` per
    ``sample()`` call when that is given (CDBTuner's ``beta_increment_per_sampling``),
    otherwise with training progress through :meth:`update_beta`, which
    :class:`PrioritizedDDPG` calls at every ``train()``.

    :param buffer_size: Max number of transitions (split over ``n_envs`` as in SB3).
    :param observation_space: Observation space (not a ``Dict``).
    :param action_space: Action space.
    :param device: PyTorch device of the returned tensors.
    :param n_envs: Number of parallel environments; every (row, env) cell is a leaf.
    :param optimize_memory_usage: SB3's memory-saving layout; supported (the one
        invalid row is kept at priority 0 so it is never drawn).
    :param handle_timeout_termination: Treat time-limit truncation as non-terminal.
    :param alpha: Prioritization exponent (0 = uniform).
    :param beta: Importance-sampling exponent at the start.
    :param beta_end: Importance-sampling exponent at the end of annealing.
    :param beta_increment: If set, beta grows by this much per ``sample()`` call
        (capped at ``beta_end``) instead of following training progress.
    :param epsilon: Added to ``|TD error|`` so no priority is 0.
    :param seed: Seed of the sampling generator; by default it is drawn from
        numpy's global generator, which SB3 seeds from the model's ``seed``.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        alpha: float = 0.6,
        beta: float = 0.4,
        beta_end: float = 1.0,
        beta_increment: float | None = None,
        epsilon: float = 1e-6,
        seed: int | None = None,
    ):
        if isinstance(observation_space, spaces.Dict):
            raise ValueError("PrioritizedSB3ReplayBuffer does not support Dict observation spaces")
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if not (0 <= beta <= 1 and 0 <= beta_end <= 1):
            raise ValueError(f"beta and beta_end must be in [0, 1], got {beta}, {beta_end}")
        if beta_increment is not None and not beta_increment >= 0:
            raise ValueError(f"beta_increment must be >= 0, got {beta_increment}")
        if not epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.alpha = float(alpha)
        self.beta_start = float(beta)
        self.beta = float(beta)
        self.beta_end = float(beta_end)
        self.beta_increment = None if beta_increment is None else float(beta_increment)
        self.epsilon = float(epsilon)
        self.max_priority = 1.0  # largest |TD error| + epsilon seen, before the alpha power
        # One leaf per (row, env) cell: leaf = row * n_envs + env.
        self.tree = SumTree(self.buffer_size * self.n_envs)
        if seed is None:
            # SB3 seeds numpy's global generator before building the buffer, so
            # this makes `DDPG(seed=...)` reproducible without a seed of our own.
            seed = int(np.random.randint(0, 2**31 - 1))
        self._rng = np.random.default_rng(seed)

    # -- storage --------------------------------------------------------------------
    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        row = self.pos
        super().add(obs, next_obs, action, reward, done, infos)
        # All n_envs cells of the row are contiguous leaves: one slice update.
        self.tree.update_range(row * self.n_envs, np.full(self.n_envs, self.max_priority**self.alpha))
        if self.optimize_memory_usage and self.full:
            # With one shared observation array, writing next_obs overwrote the
            # observation of the oldest row, now at `pos`: SB3 never samples it
            # and neither may we (until it is written again).
            self.tree.update_range(self.pos * self.n_envs, np.zeros(self.n_envs))

    def reset(self) -> None:
        super().reset()
        self.tree.clear()
        self.max_priority = 1.0

    def _n_valid(self) -> int:
        """Number of cells that can be drawn (the N in the importance weights)."""
        rows = self.size()
        if self.optimize_memory_usage and self.full:
            rows -= 1
        return rows * self.n_envs

    # -- sampling ------------------------------------------------------------------
    def sample(self, batch_size: int, env: VecNormalize | None = None) -> PrioritizedReplayBufferSamples:
        """Draw a stratified prioritized batch; see the class doc."""
        total = self.tree.total_priority
        if not total > 0:
            raise ValueError("cannot sample from an empty prioritized replay buffer")
        values = (np.arange(batch_size) + self._rng.random(batch_size)) * (total / batch_size)
        leaves = self.tree.find(values)
        prios = self.tree.tree[leaves + self.tree.leaf_offset]
        weights = (prios * (self._n_valid() / total)) ** (-self.beta)
        weights /= weights.max()
        if self.beta_increment is not None:
            self.beta = min(self.beta_end, self.beta + self.beta_increment)
        batch_inds, env_inds = np.divmod(leaves, self.n_envs)
        data = self._get_samples(batch_inds, env=env, env_indices=env_inds)
        return PrioritizedReplayBufferSamples(
            *data,
            weights=self.to_torch(weights.astype(np.float32).reshape(-1, 1)),
            indices=leaves,
        )

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None, env_indices: np.ndarray | None = None
    ):
        # SB3's version draws the env column at random; a prioritized sample
        # has already chosen it. Otherwise the same gathering as SB3's.
        if env_indices is None:
            env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        if self.optimize_memory_usage:
            next_obs = self._normalize_obs(self.observations[(batch_inds + 1) % self.buffer_size, env_indices, :], env)
        else:
            next_obs = self._normalize_obs(self.next_observations[batch_inds, env_indices, :], env)
        data = (
            self._normalize_obs(self.observations[batch_inds, env_indices, :], env),
            self.actions[batch_inds, env_indices, :],
            next_obs,
            (self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env),
        )
        return tuple(map(self.to_torch, data))

    # -- priorities ----------------------------------------------------------------
    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray | th.Tensor) -> None:
        """Set the priorities of sampled cells to ``|priorities| + epsilon`` (vectorized).

        ``indices`` are the ``indices`` of a :class:`PrioritizedReplayBufferSamples`;
        a repeated index takes the last priority given for it.
        """
        if isinstance(priorities, th.Tensor):
            priorities = priorities.detach().cpu().numpy()
        top = write_priorities(self.tree, indices, priorities, epsilon=self.epsilon, alpha=self.alpha,
                               limit=self.tree.capacity, what="cells")
        if top is not None:
            self.max_priority = max(self.max_priority, top)

    def update_beta(self, progress: float) -> None:
        """Anneal beta linearly with training progress (0 = start, 1 = end).

        No-op when ``beta_increment`` drives the annealing instead.
        """
        if self.beta_increment is None:
            progress = min(1.0, max(0.0, float(progress)))
            self.beta = self.beta_start + progress * (self.beta_end - self.beta_start)

    def priorities(self) -> np.ndarray:
        """Stored sampling priorities ``p^alpha`` of the filled cells, shape (rows * n_envs,)."""
        return self.tree.leaves[: self.size() * self.n_envs]

    def priority_stats(self) -> tuple[float, float, float]:
        """(min, max, mean) of the stored sampling priorities of drawable cells."""
        prios = self.priorities()
        prios = prios[prios > 0]
        if prios.size == 0:
            return 0.0, 0.0, 0.0
        return float(prios.min()), float(prios.max()), float(prios.mean())


class CustomDDPGPolicy(TD3Policy):
    """DDPG/TD3 policy whose critic may learn at its own rate (CDBTuner uses two).

    The actor's rate is the algorithm's ``learning_rate``; the critic's is
    ``critic_learning_rate`` (a float or a schedule of the remaining progress),
    or the same as the actor's when None. :class:`PrioritizedDDPG` keeps the
    critic's rate on its own schedule at every ``train()``; plain SB3 DDPG
    would reset it to ``learning_rate``.

    :param critic_learning_rate: Critic learning rate or schedule; None = ``learning_rate``.
    :param kwargs: Everything else goes to ``TD3Policy``.
    """

    def __init__(self, *args: Any, critic_learning_rate: float | Schedule | None = None, **kwargs: Any):
        self.critic_learning_rate = critic_learning_rate
        self.critic_lr_schedule: Schedule | None = (
            None if critic_learning_rate is None else _schedule(critic_learning_rate)
        )
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        if self.critic_lr_schedule is not None:
            update_learning_rate(self.critic.optimizer, self.critic_lr_schedule(1.0))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["critic_learning_rate"] = self.critic_learning_rate
        return data


class PrioritizedDDPG(DDPG):
    """SB3 DDPG trained from a :class:`PrioritizedSB3ReplayBuffer` (seed 000).

    Build it with ``replay_buffer_class=PrioritizedSB3ReplayBuffer`` (or use
    :func:`build_per_ddpg`). Only ``train()`` differs from SB3's DDPG: the
    critic's squared TD errors are weighted by the importance-sampling weights,
    the per-sample absolute TD errors become the new priorities, and beta
    anneals with training progress. With any other replay buffer it trains
    exactly like DDPG (weights of 1, no priorities).
    """

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)

        # Update learning rate according to lr schedule; a CustomDDPGPolicy's
        # critic keeps its own rate.
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        critic_schedule = getattr(self.policy, "critic_lr_schedule", None)
        if critic_schedule is not None:
            critic_lr = critic_schedule(self._current_progress_remaining)
            update_learning_rate(self.critic.optimizer, critic_lr)
            self.logger.record("train/critic_learning_rate", critic_lr)

        buffer = self.replay_buffer
        prioritized = isinstance(buffer, PrioritizedSB3ReplayBuffer)
        if prioritized:
            buffer.update_beta(1.0 - self._current_progress_remaining)

        actor_losses, critic_losses, td_means = [], [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            # Sample replay buffer
            replay_data = buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                # Select action according to policy and add clipped noise
                noise = replay_data.actions.clone().data.normal_(0, self.target_policy_noise)
                noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
                next_actions = (self.actor_target(replay_data.next_observations) + noise).clamp(-1, 1)

                # Compute the next Q-values: min over all critics targets
                next_q_values = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
                next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            # Get current Q-values estimates for each critic network
            current_q_values = self.critic(replay_data.observations, replay_data.actions)

            # Importance-sampling weights undo the bias of prioritized sampling:
            # the loss is sum_i w_i * delta_i^2 / B instead of an MSE.
            weights = replay_data.weights if prioritized else None
            critic_loss = 0.0
            for current_q in current_q_values:
                squared = (current_q - target_q_values).pow(2)
                critic_loss = critic_loss + (squared * weights if weights is not None else squared).mean()
            assert isinstance(critic_loss, th.Tensor)
            critic_losses.append(critic_loss.item())

            # Optimize the critics
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            if prioritized:
                # New priority = |TD error| of this sample (the largest over the
                # critics when there are several), measured before this step's update.
                with th.no_grad():
                    td_errors = th.cat([(q - target_q_values).abs() for q in current_q_values], dim=1).max(dim=1).values
                td = td_errors.cpu().numpy()
                buffer.update_priorities(replay_data.indices, td)
                td_means.append(float(td.mean()))

            # Delayed policy updates
            if self._n_updates % self.policy_delay == 0:
                # Compute actor loss
                actor_loss = -self.critic.q1_forward(replay_data.observations, self.actor(replay_data.observations)).mean()
                actor_losses.append(actor_loss.item())

                # Optimize the actor
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()

                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                # Copy running stats, see GH issue #996
                polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if len(actor_losses) > 0:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self.logger.record("train/replay_buffer", type(buffer).__name__, exclude="tensorboard")
        if prioritized:
            p_min, p_max, p_mean = buffer.priority_stats()
            self.logger.record("train/priority_min", p_min)
            self.logger.record("train/priority_max", p_max)
            self.logger.record("train/priority_mean", p_mean)
            self.logger.record("train/per_beta", buffer.beta)
            self.logger.record("train/td_error_mean", np.mean(td_means))


#: CDBTuner's defaults (seed 000): tau 1e-5, actor and critic learning rates
#: 1e-5, gamma 0.9, batch 16, replay buffer 100,000: settings for long offline
#: training (in 10 or 40 evaluations the actor moves 0.1 or 0.5 %: bench/presets.py). Seed 000 names no
#: exploration noise; SB3's DDPG has none by default and then never explores,
#: so the preset adds Gaussian noise (sigma 0.2 of the [-1, 1] action range).
CDBTUNER_PRESET: dict[str, Any] = {
    "learning_rate": 1e-5,  # the actor's
    "tau": 1e-5,
    "gamma": 0.9,
    "batch_size": 16,
    "buffer_size": 100_000,
    "policy_kwargs": {"critic_learning_rate": 1e-5},
    "replay_buffer_kwargs": {"alpha": 0.6, "beta": 0.4, "beta_end": 1.0, "epsilon": 1e-6},
    "action_noise": 0.2,
}

#: Named presets for ``build_per_ddpg``; ``None`` means SB3's DDPG defaults.
PRESETS: dict[str, dict[str, Any]] = {"cdbtuner": CDBTUNER_PRESET}

#: Exploration noise (sigma) when neither the preset nor the overrides name one.
DEFAULT_ACTION_NOISE = 0.1


def _make_action_noise(noise: Any, env: GymEnv) -> ActionNoise | None:
    """None, an ActionNoise, or a float sigma for Gaussian noise on every action dimension."""
    if noise is None or isinstance(noise, ActionNoise):
        return noise
    if isinstance(noise, (int, float)) and not isinstance(noise, bool):
        if noise <= 0:
            return None
        dims = int(np.prod(env.action_space.shape))
        return NormalActionNoise(np.zeros(dims), float(noise) * np.ones(dims))
    raise ValueError(f"action_noise must be None, a float sigma or an ActionNoise, got {noise!r}")


def build_per_ddpg(
    env: GymEnv,
    *,
    preset: str | None = "cdbtuner",
    overrides: dict[str, Any] | None = None,
    replay_kwargs: dict[str, Any] | None = None,
    seed: int | None = None,
    verbose: int = 0,
    warmup: bool = False,
    design_every: int = 0,
) -> PrioritizedDDPG:
    """A :class:`PrioritizedDDPG` on ``env`` with a :class:`PrioritizedSB3ReplayBuffer`.

    :param env: Gymnasium env (Box actions) or SB3 VecEnv.
    :param preset: Name in :data:`PRESETS` (``"cdbtuner"``), or None for SB3's DDPG defaults.
    :param overrides: Keyword arguments of ``PrioritizedDDPG`` that win over the
        preset (``policy_kwargs`` and ``replay_buffer_kwargs`` are merged key by
        key; ``action_noise`` may be a float sigma, an ``ActionNoise`` or None;
        ``policy`` replaces :class:`CustomDDPGPolicy`).
    :param replay_kwargs: PER settings (``alpha``, ``beta``, ``beta_end``,
        ``beta_increment``, ``epsilon``, ``seed``) applied last.
    :param seed: Seed of the model (and through it of the buffer's sampling).
    :param verbose: SB3 verbosity.
    :param warmup: spend the warm-up (``learning_starts``) on a space-filling
        Sobol design instead of uniform draws (:mod:`.warmup`).
    :param design_every: with ``warmup``, after it every this many actions one
        is the design's next point (0: none).
    """
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown per-ddpg preset {preset!r}; choose one of {', '.join(PRESETS)} or none")
    kwargs = copy.deepcopy(PRESETS[preset]) if preset is not None else {}
    overrides = dict(overrides or {})
    policy = overrides.pop("policy", CustomDDPGPolicy)
    preset_policy_kwargs = kwargs.pop("policy_kwargs", {})
    if not (isinstance(policy, type) and issubclass(policy, CustomDDPGPolicy)):
        # Another policy class has no separate critic rate: the preset's one
        # falls back to learning_rate (a caller's explicit one still reaches it).
        preset_policy_kwargs.pop("critic_learning_rate", None)
    policy_kwargs = {**preset_policy_kwargs, **(overrides.pop("policy_kwargs", None) or {})}
    buffer_kwargs = {
        **kwargs.pop("replay_buffer_kwargs", {}),
        **(overrides.pop("replay_buffer_kwargs", None) or {}),
        **(replay_kwargs or {}),
    }
    noise = overrides.pop("action_noise", kwargs.pop("action_noise", DEFAULT_ACTION_NOISE))
    kwargs.pop("action_noise", None)
    kwargs.setdefault("device", "cpu")  # small MLPs: the CPU beats a GPU round trip
    kwargs.update(overrides)
    kwargs.setdefault("replay_buffer_class", PrioritizedSB3ReplayBuffer)
    algorithm_class = PrioritizedDDPG
    if warmup:
        from cli_ai.tactician.agents.warmup import with_space_filling_warmup

        algorithm_class = with_space_filling_warmup(PrioritizedDDPG, design_every)
    return algorithm_class(
        policy,
        env,
        replay_buffer_kwargs=buffer_kwargs,
        policy_kwargs=policy_kwargs,
        action_noise=_make_action_noise(noise, env),
        seed=seed,
        verbose=verbose,
        **kwargs,
    )
