"""Agents of the autoscaling toolkit: SARSA(λ), the lightweight DQN, the reactive baselines."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from cli_ai.autoscale.episodes import run_episode
from cli_ai.errors import BadInputError
from cli_ai.tactician.agents.reactive import ReactiveAverage, ReactiveMaximum, make_baseline
from cli_ai.tactician.agents.sarsa import SarsaAgent
from cli_ai.tactician.envs.autoscaling import AutoscalingEnv

# only the worker count matters in this tiny problem: low steady load, idle workers cost
TINY = {
    "name": "tiny",
    "function": {"cold_start": 1.0, "concurrency": 1, "queue_capacity": 100},
    "phases": [{"name": "steady", "duration": 60, "arrival": {"shape": "constant", "rate": 2.0},
                "task_size": 0.5, "deadline": 5.0}],
}
WORKERS_ONLY = (1, 1, 1, 1, 12, 1, 1, 1, 1)


def tiny_env(**kw):
    return AutoscalingEnv(workload=TINY, initial_workers=10, min_workers=1, max_workers=12, step_duration=4.0,
                          observation_window=4.0, max_steps=15, **kw)


class Hold:
    def reset(self):
        pass

    def act(self, obs, greedy=True):
        return 1


def greedy_reward(env, policy, seeds=(100, 101, 102)):
    return float(np.mean([run_episode(env, policy, seed=s)["total_reward"] for s in seeds]))


# --------------------------------------------------------------------------- SARSA


def test_discretisation_uses_the_env_bounds_per_dimension():
    env = tiny_env()
    agent = SarsaAgent.from_env(env, (4, 2, 2, 2, 12, 2, 2, 2, 2))
    low, high = env.observation_space.low, env.observation_space.high
    assert agent.discretize(low)[4] == 0
    assert agent.discretize(high) == (3, 1, 1, 1, 11, 1, 1, 1, 1)
    assert agent.discretize(high * 10) == agent.discretize(high)  # clipped into the last bin
    quarter = low.copy()
    quarter[0] = high[0] * 0.3
    assert agent.discretize(quarter)[0] == 1
    with pytest.raises(BadInputError, match="--bins: give 9 integers"):
        SarsaAgent.from_env(env, (4, 4, 4))


def test_traces_spread_the_td_error_and_are_pruned():
    agent = SarsaAgent(2, [0.0], [1.0], [4], alpha=0.5, gamma=1.0, trace_lambda=0.5, trace_threshold=0.3)
    s0, s1, s2 = (0,), (1,), (2,)
    agent.update(s0, 0, 0.0, s1, 0, False)
    agent.update(s1, 0, 0.0, s2, 0, False)
    agent.update(s2, 0, 1.0, s2, None, True)  # terminal: δ = 1
    assert agent.q[s2][0] == pytest.approx(0.5)       # α δ e, e = 1
    assert agent.q[s1][0] == pytest.approx(0.25)      # e = λγ = 0.5
    assert agent.q[s0][0] == pytest.approx(0.0)       # its trace fell to 0.25 < 0.3 and was pruned
    assert agent.traces == {}                          # cleared at the episode's end
    one_step = SarsaAgent(2, [0.0], [1.0], [4], alpha=0.5, trace_lambda=0.0)
    assert one_step.alpha == 0.5
    assert SarsaAgent(2, [0.0], [1.0], [4], trace_lambda=0.6).alpha == 0.03  # the seed's default with traces


def test_sarsa_learns_to_release_idle_workers():

    env = tiny_env()
    untrained = SarsaAgent.from_env(env, WORKERS_ONLY)
    before = greedy_reward(env, untrained)
    assert before == pytest.approx(greedy_reward(env, Hold()))  # greedy on an empty table holds

    agent = SarsaAgent.from_env(env, WORKERS_ONLY, alpha=0.2, gamma=0.95, epsilon=1.0, epsilon_min=0.05,
                                epsilon_decay=0.98, trace_lambda=0.6, seed=3)
    env.reset(seed=0)
    for _ in range(200):
        obs, _ = env.reset()
        agent.reset()
        s = agent.discretize(obs)
        a = agent.select(s)
        while True:
            obs, r, term, trunc, _ = env.step(a)
            s2 = agent.discretize(obs)
            a2 = agent.select(s2)
            agent.update(s, a, r, s2, a2, term)
            s, a = s2, a2
            if term or trunc:
                break
        agent.decay_epsilon()
    after = greedy_reward(env, agent)
    summary = run_episode(env, agent, seed=100)
    assert after > before + 3.0, (before, after)
    assert summary["mean_workers"] < 7 and summary["final_qos"] > 0.95


def test_sarsa_save_and_load_round_trip(tmp_path):
    env = tiny_env()
    agent = SarsaAgent.from_env(env, WORKERS_ONLY, seed=1, metadata={"env_config": env.env_config()})
    for i in range(12):
        agent.q_values((0, 0, 0, 0, i, 0, 0, 0, 0))[:] = [i, -i, i / 2]
    agent.epsilon = 0.123
    path = agent.save(tmp_path / "models" / "sarsa_final.pkl")
    loaded = SarsaAgent.load(path)
    assert loaded.q.keys() == agent.q.keys()
    for k in agent.q:
        assert np.array_equal(loaded.q[k], agent.q[k])
    assert loaded.epsilon == 0.123 and list(loaded.bins) == list(WORKERS_ONLY)
    assert loaded.metadata["env_config"]["config"]["initial_workers"] == 10
    obs = env.reset(seed=0)[0]
    assert loaded.act(obs) == agent.act(obs)


def test_sarsa_load_refuses_pickles_with_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"format": "cli-ai/sarsa", "q": Evil()}))
    with pytest.raises(BadInputError, match="not a cli-ai SARSA model"):
        SarsaAgent.load(bad)
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"hello": 1}))
    with pytest.raises(BadInputError, match="format marker missing"):
        SarsaAgent.load(other)


# --------------------------------------------------------------------------- DQN


def test_dqn_trains_checkpoints_and_loads_back(tmp_path):
    torch = pytest.importorskip("torch")
    from cli_ai.autoscale.train import DQNParams, TrainOptions, train_dqn
    from cli_ai.tactician.agents.dqn import DQNAgent

    opts = TrainOptions(episodes=4, max_steps=15, step_duration=4.0, observation_window=4.0, initial_workers=10,
                        max_workers=12, checkpoint_every=2, eval_episodes=1, output_dir=str(tmp_path), seed=5)
    params = DQNParams(hidden_layers=(16, 16), batch_size=8, warmup=16, target_update=5, target_tau=0.5,
                       epsilon_start=1.0, epsilon_decay=0.9)
    import cli_ai.autoscale.train as train_module

    original = train_module.build_env
    train_module.build_env = lambda **kw: original(**{**kw, "workload": TINY})
    try:
        result = train_dqn(opts, params)
    finally:
        train_module.build_env = original
    models = Path(result.run_dir) / "models"
    assert sorted(p.name for p in models.iterdir()) == ["dqn_ep0002.pt", "dqn_final.pt"]
    episodes = result.extra["training_episodes"]
    assert result.extra["episodes"] == 4 and result.stopped_reason == "episodes done"
    assert episodes[-1]["mean_loss"] is not None
    assert episodes[-1]["target_syncs"] > 0
    assert episodes[-1]["epsilon"] == pytest.approx(0.9**3)
    agent = DQNAgent.load(models / "dqn_final.pt")
    assert agent.hidden_layers == [16, 16] and agent.learn_steps > 0
    assert agent.metadata["env_config"]["workload"]["name"] == "tiny"
    env = tiny_env()
    obs = env.reset(seed=0)[0]
    again = DQNAgent.load(models / "dqn_final.pt")
    assert np.allclose(agent.q_values(obs), again.q_values(obs))
    early = DQNAgent.load(models / "dqn_ep0002.pt")
    assert not np.allclose(early.q_values(obs), agent.q_values(obs))  # it kept learning
    with pytest.raises(BadInputError, match="not a cli-ai DQN checkpoint"):
        bad = tmp_path / "bad.pt"
        torch.save({"x": 1}, bad)
        DQNAgent.load(bad)


def test_dqn_double_targets_polyak_and_normalisation():
    torch = pytest.importorskip("torch")
    from cli_ai.tactician.agents.dqn import DQNAgent

    agent = DQNAgent(2, 3, [0, 0], [10, 100], hidden_layers=(8,), batch_size=4, replay_capacity=100, warmup=4,
                     target_update=1, target_tau=0.25, seed=0)
    assert np.allclose(agent.normalize([5, 0]), [0, -1]) and np.allclose(agent.normalize([20, 100]), [1, 1])
    before = [p.detach().clone() for p in agent.target.parameters()]
    for i in range(4):
        agent.remember([i, i], i % 3, 1.0, [i + 1, i + 1], False)
    online = [p.detach().clone() for p in agent.online.parameters()]
    after = [p.detach().clone() for p in agent.target.parameters()]
    assert agent.learn_steps == 1 and agent.target_syncs == 1
    for b, o, a in zip(before, online, after):  # θ' = 0.25 θ + 0.75 θ'
        assert torch.allclose(a, 0.25 * o + 0.75 * b, atol=1e-6)
    with pytest.raises(BadInputError, match="--target-tau"):
        DQNAgent(2, 3, [0, 0], [1, 1], target_tau=0)


# --------------------------------------------------------------------------- baselines


def test_reactive_rule_covers_the_arrival_rate():
    deltas = (-1, 0, 1)
    avg = ReactiveAverage(deltas, capacity_per_worker=2.0, step_duration=4.0, horizon=2, headroom=0.25, max_workers=20)
    mx = ReactiveMaximum(deltas, capacity_per_worker=2.0, step_duration=4.0, horizon=2, headroom=0.25, max_workers=20)
    obs = np.zeros(9)
    obs[4] = 5
    for rate in (4.0, 12.0):
        obs[7] = rate
        a_avg, a_max = avg.act(obs), mx.act(obs)
    # average rate 8/s -> ceil(8 / 2 * 1.25) = 5 workers; max 12/s -> ceil(7.5) = 8
    assert avg.target_workers(obs) == 5 and a_avg == 1  # already at target: no-op
    assert mx.target_workers(obs) == 8 and a_max == 2  # scale up
    obs[0] = 40  # a backlog of 40 tasks adds 10/s to drain within a step
    assert avg.target_workers(obs) == 12
    obs[4] = 15
    obs[0] = 0
    assert avg.act(obs) == 0  # too many: scale down
    wide = ReactiveAverage((-3, -1, 0, 1, 3), 2.0, 4.0)
    obs[4] = 1
    obs[7] = 6.0
    assert wide.act(obs) == 4  # target 4: +3 gets closest


def test_reactive_baselines_track_the_default_workload():
    env = AutoscalingEnv()
    seeds = range(10)
    hold = [run_episode(env, Hold(), seed=s) for s in seeds]
    for name in ("reactiveaverage", "reactivemaximum"):
        policy = make_baseline(name, env)
        runs = [run_episode(env, policy, seed=s) for s in seeds]
        assert np.mean([r["mean_workers"] for r in runs]) < np.mean([r["mean_workers"] for r in hold]) - 1.5
        assert np.mean([r["final_qos"] for r in runs]) > 0.88
        assert all(r["scaling_actions"] > 3 for r in runs)
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("reactivemedian", env)
