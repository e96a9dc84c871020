"""The RL agents' settings for knob search (a bandit over a configuration
space): discount 0, PPO's narrower start, the off-policy Sobol warm-up."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from cli_ai.spec import TrainingConfig
from cli_ai.tactician.agents.factory import build_agent, plan_agent, plan_knob_agent
from tests.conftest import EXAMPLES

PG = EXAMPLES / "postgresql_oltp.json"


class _Bandit(gym.Env):
    """Three knobs, reward = -distance to a point: the shape of a knob search."""

    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        reward = -float(np.linalg.norm(np.asarray(action) - 0.3))
        return np.zeros(2, dtype=np.float32), reward, False, False, {}


def test_ppo_on_a_knob_target_explores_narrower_and_discounts_nothing(tmp_path):
    import torch
    from stable_baselines3 import PPO

    from cli_ai import tuning

    result = tuning.tune(PG, tuning.TuneOptions(dry_run=True, budget=10, seed=1, output_dir=str(tmp_path),
                                                algorithm="ppo"))
    model = PPO.load(Path(result.run_dir) / "model.zip", device="cpu")
    assert model.gamma == 0.0
    std = model.policy.log_std.exp()
    assert torch.allclose(std, torch.full_like(std, 0.5), atol=0.05)
    assert any("gamma 0.99 -> 0" in n and "bandit" in n for n in result.notes)
    assert any("exploration std 1 -> 0.5" in n for n in result.notes)
    assert json.loads((Path(result.run_dir) / "result.json").read_text())["notes"] == result.notes


def test_a_spec_that_sets_gamma_or_learning_starts_keeps_it():
    given = TrainingConfig(gamma=0.9, learning_starts=3, explicit=frozenset({"gamma", "learning_starts"}))
    plan = plan_knob_agent("td3", given, 40)
    assert plan.kwargs["gamma"] == 0.9 and plan.kwargs["learning_starts"] == 3
    plan = plan_knob_agent("td3", TrainingConfig(), 40)
    assert plan.kwargs["gamma"] == 0.0 and plan.kwargs["learning_starts"] == 20
    # The sequential targets (scheduler, autoscaling) plan through plan_agent: theirs stay.
    seq = plan_agent("td3", TrainingConfig(), 40)
    assert seq.kwargs["gamma"] == 0.99 and seq.kwargs["learning_starts"] == 8 and not seq.space_filling_warmup


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac", "per-ddpg"])
def test_off_policy_warm_up_is_a_space_filling_design(algo):
    """The first 8 actions of a 16-step knob search: in every dimension one in
    each eighth of the range (uniform draws do that with probability 0.2 %
    per dimension), then the agent acts on its own."""
    plan = plan_knob_agent(algo, TrainingConfig(), 16)
    assert plan.kwargs["learning_starts"] == 8 and plan.space_filling_warmup
    assert any("Sobol" in n for n in plan.notes)
    model = build_agent(plan, _Bandit(), seed=4)
    model.learn(12)
    actions = model.replay_buffer.actions[:12, 0, :]
    for dim in range(3):
        bins = np.floor((actions[:8, dim] + 1.0) / 2.0 * 8).astype(int)
        assert sorted(bins) == list(range(8)), (dim, actions[:8, dim])
    assert len({tuple(a) for a in actions[8:12]} & {tuple(a) for a in actions[:8]}) == 0


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac", "per-ddpg"])
def test_after_the_warm_up_every_second_action_continues_the_design(algo):
    """A 32-step search: 16 warm-up points, then steps 17, 19, 21... are the
    Sobol design's points 16, 17, 18... (the warm-up's 16, one in each
    sixteenth of every dimension, and the 8 interleaved ones are the design's
    first 24); steps 16, 18, 20... are the actor's own, none a design point."""
    from cli_ai.tactician.agents.warmup import sobol_points

    plan = plan_knob_agent(algo, TrainingConfig(), 32)
    assert plan.kwargs["learning_starts"] == 16
    assert plan.design_every == 2 and any("one action in 2" in n for n in plan.notes)
    model = build_agent(plan, _Bandit(), seed=4)
    model.learn(32)
    actions = model.replay_buffer.actions[:32, 0, :]
    design = np.concatenate([actions[:16], actions[17:32:2]])
    np.testing.assert_allclose(design, sobol_points(3, 24, 4), atol=1e-6)
    for dim in range(3):
        bins = np.floor((design[:16, dim] + 1.0) / 2.0 * 16).astype(int)
        assert sorted(bins) == list(range(16)), (dim, design[:16, dim])
    first_64 = {tuple(np.round(p, 5)) for p in sobol_points(3, 64, 4)}
    assert not {tuple(np.round(a, 5)) for a in actions[16:32:2]} & first_64


def test_a_short_search_or_a_sequential_target_gets_no_interleaved_design():
    """Below 30 agent steps (a budget of 20) the actor keeps every step after the warm-up."""
    short = plan_knob_agent("td3", TrainingConfig(), 29)
    assert short.space_filling_warmup and short.design_every == 0
    assert not any("one action in" in n for n in short.notes)
    assert plan_knob_agent("td3", TrainingConfig(), 30).design_every == 2
    assert plan_agent("ddpg", TrainingConfig(), 40).design_every == 0
    assert plan_knob_agent("per-ddpg", TrainingConfig(preset="cdbtuner"), 40).design_every == 0


def test_per_ddpg_with_seed_000s_preset_keeps_the_preset():
    """Seed 000's CDBTune preset, asked for by name (training_config.preset):
    no bandit settings, no Sobol warm-up, the seeds' fifth of the budget."""
    tc = TrainingConfig(preset="cdbtuner", algorithm="per-ddpg")
    plan = plan_knob_agent("per-ddpg", tc, 40)
    assert plan.preset == "cdbtuner" and not plan.space_filling_warmup
    assert plan.kwargs["learning_starts"] == 8 and "action_noise" not in plan.kwargs
    assert plan.kwargs["gamma"] == tc.gamma
    assert not any("bandit" in n or "Sobol" in n for n in plan.notes)


def test_a_preset_s_batch_is_not_reported_as_changed():
    """The budget note said "batch_size 64 -> 4" while the cdbtuner preset's
    own batch of 16 ran."""
    from cli_ai.spec import TrainingConfig
    from cli_ai.tactician.agents.factory import plan_agent

    plan = plan_agent("per-ddpg", TrainingConfig(preset="cdbtuner"), 8)
    assert not any("batch_size" in n for n in plan.notes), plan.notes
    assert any("batch_size" in n for n in plan_agent("per-ddpg", TrainingConfig(), 8).notes)


def test_the_mosquitto_example_learns_at_its_budget():
    """examples/mosquitto.json ran seed 000's cdbtuner preset, whose learning
    rates and tau of 1e-5 barely move the weights in 10 evaluations; its
    default is now the knob-search plan (the preset stays available by name)."""
    from cli_ai.spec import load_spec

    spec = load_spec(EXAMPLES / "mosquitto.json")
    assert spec.training_config.preset is None and spec.training_config.algorithm == "per-ddpg"
    plan = plan_knob_agent("per-ddpg", spec.training_config, 8)
    assert plan.space_filling_warmup and plan.kwargs["gamma"] == 0.0
    assert plan.kwargs["learning_rate"] == spec.training_config.learning_rate
