"""The scheduler target: SchedulerEnv, its spec, baselines, the comparison and
its CLI. Kept small (short episodes) so the file runs in well under a minute."""

from __future__ import annotations

import copy
import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from typer.testing import CliRunner

from cli_ai.errors import BadInputError, SpecError
from cli_ai.spec import load_spec, spec_from_dict
from cli_ai.tactician.agents.scheduler_baselines import BASELINES, make_baseline
from cli_ai.tactician.envs.scheduler import ENV_ID, SchedulerEnv, make_env, obs_index
from tests.conftest import EXAMPLES

EXAMPLE = json.loads((EXAMPLES / "scheduler.json").read_text())


def spec_dict(**scheduler):
    d = copy.deepcopy(EXAMPLE)
    d["scheduler"]["episode_requests"] = 120
    d["scheduler"].update(scheduler)
    return d


def small_spec(**scheduler):
    return spec_from_dict(spec_dict(**scheduler))


def rollout(env, actions_or_policy, seed):
    obs, info = env.reset(seed=seed)
    trace = [obs]
    rewards, infos = [], []
    done, k = False, 0
    while not done:
        if callable(actions_or_policy):
            a = actions_or_policy(obs, k)
        else:
            a = actions_or_policy[k % len(actions_or_policy)]
        obs, r, term, trunc, info = env.step(a)
        trace.append(obs)
        rewards.append(r)
        infos.append(info)
        done = term or trunc
        k += 1
    return np.array(trace), np.array(rewards), infos


# --------------------------------------------------------------------------- the env


def test_example_spec_loads_and_builds_the_env():
    spec = load_spec(EXAMPLES / "scheduler.json")
    assert spec.target == "scheduler" and spec.reward.mode == "hybrid"
    env = make_env(spec)
    assert env.action_space == gym.spaces.Discrete(4)
    assert env.cfg.names == ["fast", "mid-a", "mid-b", "slow"]
    assert env.cfg.episode_requests == 400
    assert env.reward_fn.p["throughput_target"] == 8.0  # the spec's reward block reached the calculator


def test_passes_gymnasium_and_sb3_env_checkers():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the render-mode note of an env without render modes
        check_env(make_env(small_spec()), skip_render_check=True)
    sb3_check_env(make_env(small_spec()), warn=True)


def test_registered_with_gymnasium():
    env = gym.make(ENV_ID, config={"episode_requests": 20})
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    env.close()


def test_deterministic_under_a_seed():
    spec = small_spec()
    actions = [0, 1, 2, 3, 0, 0, 1]
    a_obs, a_rew, a_info = rollout(make_env(spec), actions, seed=11)
    b_obs, b_rew, b_info = rollout(make_env(spec), actions, seed=11)
    assert np.array_equal(a_obs, b_obs) and np.array_equal(a_rew, b_rew)
    assert [i["metric"] for i in a_info] == [i["metric"] for i in b_info]
    c_obs, _, _ = rollout(make_env(spec), actions, seed=12)
    assert not np.array_equal(a_obs, c_obs)  # another seed, other traffic


def test_requests_are_conserved_and_never_faster_than_alone():
    env = make_env(small_spec(arrival={"process": "bursty", "rate": 6.0, "burst_multiplier": 3.0}))
    rng = np.random.default_rng(0)
    _, _, infos = rollout(env, lambda o, k: int(rng.integers(4)), seed=3)
    last = infos[-1]
    n = env.cfg.episode_requests
    assert len(infos) == n
    assert last["stats"]["routed"] == last["stats"]["completed"] == n
    assert last["stats"]["in_system"] == 0
    assert last["episode_summary"]["completed"] == n and "episode_summary" not in infos[-2]
    summary = env.episode_summary()
    assert sum(d["routed"] for d in summary["per_replica"].values()) == n
    assert all(d["routed"] == d["completed"] for d in summary["per_replica"].values())
    lat = env.latencies_s()
    assert lat.size == n
    # no request finishes faster than its work alone on its replica
    speeds = np.array([r.speed for r in env.cfg.replicas])
    tr = env._traffic
    finish = env._finish
    alone = tr["work"] / speeds[env._route]
    assert np.all(finish - tr["arrival"][:n] >= alone - 1e-9)
    # the final metric is the episode's p95 latency
    assert last["metric"] == pytest.approx(np.percentile(lat, 95) * 1000)


def test_service_model_single_request_and_queueing():
    cfg = {
        "replicas": [{"name": "only", "speed": 2.0, "max_batch_size": 1}],
        "prompt_tokens": {"distribution": "constant", "mean": 100, "min": 1, "max": 1000},
        "output_tokens": {"distribution": "constant", "mean": 50, "min": 1, "max": 1000},
        "service": {"prefill_ms_per_token": 1.0, "decode_ms_per_token": 10.0, "batch_slowdown": 0.0},
        "arrival": {"rate": 0.001},  # requests arrive far apart: each is served alone
        "episode_requests": 5,
    }
    env = SchedulerEnv(cfg)
    rollout(env, [0], seed=0)
    # work = 100 * 1 ms + 50 * 10 ms = 0.6 s at speed 1; 0.3 s at speed 2
    assert env.latencies_s() == pytest.approx([0.3] * 5)
    # a flood of requests on max_batch_size 1: each waits for the ones before it
    env = SchedulerEnv({**cfg, "arrival": {"rate": 1e5}})
    rollout(env, [0], seed=0)
    lat = np.sort(env.latencies_s())
    assert lat[-1] == pytest.approx(1.5, abs=1e-3)  # the fifth finishes after 5 * 0.3 s
    assert np.all(np.diff(lat) > 0.29)


def test_batching_slows_each_request_mildly():
    base = {
        "replicas": [{"name": "only", "speed": 1.0, "max_batch_size": 8}],
        "prompt_tokens": {"distribution": "constant", "mean": 10, "min": 1, "max": 100},
        "output_tokens": {"distribution": "constant", "mean": 100, "min": 1, "max": 1000},
        "service": {"prefill_ms_per_token": 0.0, "decode_ms_per_token": 10.0, "batch_slowdown": 0.1},
        "arrival": {"rate": 1e6},
        "episode_requests": 4,
    }
    env = SchedulerEnv(base)
    rollout(env, [0], seed=0)
    # 4 requests of 1 s work served together: each at 1 / (1 + 0.1 * 3) -> 1.3 s, far below 4 s serially
    assert env.latencies_s() == pytest.approx([1.3] * 4, abs=1e-3)


def test_info_carries_metric_components_and_stats():
    spec = spec_from_dict({**spec_dict(), "reward_metric": "mean_latency_ms"})
    env = make_env(spec)
    env.reset(seed=0)
    for a in (0, 1, 2, 3) * 30:
        _, reward, _, _, info = env.step(a)
    for key in ("absolute_score", "delta_score", "throughput_term", "latency_term", "logistic_penalty", "balance_penalty"):
        assert key in info["reward_components"]
    assert info["reward_components"]["reward"] == pytest.approx(reward)
    assert {"queued", "in_flight", "completed", "arrival_rate", "time_s"} <= set(info["stats"])
    assert info["metric"] == pytest.approx(env.latencies_s().mean() * 1000)


# --------------------------------------------------------------------------- spec errors


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["action_space"][0]["values"].pop(), "route knob lists 3 values but scheduler.replicas has 4"),
        (lambda d: d["action_space"].__setitem__(0, {"param": "batch", "min": 1, "max": 8}), "needs its routing knob"),
        (lambda d: d.__setitem__("metric_direction", "maximize"), 'set "metric_direction": "minimize"'),
        (lambda d: d["reward"].__setitem__("mode", "weighted"), "does not fit the scheduler target"),
        (lambda d: d.__setitem__("reward_metric", "tps"), "not one the scheduler reports"),
    ],
)
def test_make_env_rejects_specs_it_cannot_honour(change, message):
    d = spec_dict()
    change(d)
    with pytest.raises(SpecError) as err:
        make_env(spec_from_dict(d))
    assert message in str(err.value)


def test_schema_checks_the_scheduler_block():
    d = spec_dict()
    d["scheduler"]["replicas"][1]["speed"] = 0
    d["scheduler"]["arrival"]["proces"] = "poisson"
    with pytest.raises(SpecError) as err:
        spec_from_dict(d)
    text = str(err.value)
    assert "scheduler.replicas[1].speed: 0 must be above 0" in text
    assert "did you mean 'process'" in text


def test_replica_names_default_to_the_route_values():
    d = spec_dict()
    d["scheduler"]["replicas"] = [{"speed": 1.5}, {"speed": 1.0}, {"speed": 1.0}, {"speed": 0.5}]
    env = make_env(spec_from_dict(d))
    assert env.cfg.names == ["fast", "mid-a", "mid-b", "slow"]


# --------------------------------------------------------------------------- baselines


def test_baselines_predict_like_sb3():
    env = make_env(small_spec())
    obs, _ = env.reset(seed=0)
    rr = make_baseline("round_robin", 4)
    assert [rr.predict(obs)[0] for _ in range(6)] == [0, 1, 2, 3, 0, 1]
    rr.predict(obs, episode_start=np.array([True]))
    assert rr.predict(obs)[0] == 1  # restarted at 0 on the episode start, then 1
    actions, state = make_baseline("least_outstanding", 4).predict(np.stack([obs, obs]))
    assert actions.shape == (2,) and state is None
    # least outstanding: the replica with the fewest queued + in-flight requests
    o = np.zeros_like(obs)
    for k, load in enumerate([3, 1, 2, 1]):
        o[obs_index(4, "in_flight", k)] = load / 8
        o[obs_index(4, "speed", k)] = [1.0, 0.5, 0.5, 0.25][k]
    assert make_baseline("least_outstanding", 4).predict(o)[0] == 1  # tie between 1 and 3: the faster
    with pytest.raises(ValueError, match="unknown scheduler baseline"):
        make_baseline("fastest", 4)
    assert set(BASELINES) == {"round_robin", "least_outstanding", "least_work", "random"}


def test_least_outstanding_beats_random_on_p95_with_heterogeneous_replicas():
    from cli_ai.scheduler.compare import run_policy, summarize

    spec = small_spec(episode_requests=300)
    lor = summarize(run_policy(spec, make_baseline("least_outstanding", 4), 3, seed=5))
    rnd = summarize(run_policy(spec, make_baseline("random", 4, seed=5), 3, seed=5))
    rr = summarize(run_policy(spec, make_baseline("round_robin", 4), 3, seed=5))
    assert lor["p95_latency_ms"] < 0.7 * rnd["p95_latency_ms"]
    assert lor["p95_latency_ms"] < 0.7 * rr["p95_latency_ms"]
    # round robin ignores the slow replica's speed: a quarter of the requests go there
    assert rr["routed_share"]["slow"] == pytest.approx(0.25, abs=0.01)
    assert lor["routed_share"]["slow"] < lor["routed_share"]["fast"]


# --------------------------------------------------------------------------- comparison, plot, CLI


def test_compare_reports_every_policy_on_the_same_traffic(tmp_path):
    from cli_ai.scheduler.compare import compare_schedulers

    spec = small_spec(episode_requests=80)
    result = compare_schedulers(spec, None, episodes=2, seed=4, output_dir=tmp_path, train_steps=256)
    assert set(result["policies"]) == {"round_robin", "least_outstanding", "least_work", "random", "ppo"}
    for row in result["policies"].values():
        assert {"mean_latency_ms", "p95_latency_ms", "throughput", "imbalance_s", "reward"} <= set(row)
        assert row["completed"] == 2 * 80  # every policy served the same 160 requests
    assert result["best_p95"] in result["policies"]
    png = (tmp_path / "scheduler_compare.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert json.loads((tmp_path / "scheduler_compare.json").read_text())["seed"] == 4
    model = tmp_path / "ppo_scheduler.zip"
    assert model.exists() and result["model"] == str(model)
    # the saved model is reloaded and scores the same on the same traffic
    again = compare_schedulers(spec, model, episodes=2, seed=4, policies=(), plot=False)
    assert again["policies"]["ppo"]["p95_latency_ms"] == pytest.approx(result["policies"]["ppo"]["p95_latency_ms"])
    # a model of another cluster size is refused with a reason
    d = spec_dict(episode_requests=80)
    d["action_space"][0]["values"] = ["a", "b"]
    d["scheduler"]["replicas"] = [{"speed": 1.0}, {"speed": 2.0}]
    with pytest.raises(SpecError, match="trained for observations"):
        compare_schedulers(spec_from_dict(d), model, episodes=1)
    with pytest.raises(BadInputError, match="no such file"):
        compare_schedulers(spec, tmp_path / "missing.zip", episodes=1)


def test_cli_compare_json(tmp_path):
    from cli_ai.scheduler.cli import scheduler_app

    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec_dict(episode_requests=60)))
    out = tmp_path / "out"
    r = CliRunner().invoke(scheduler_app, ["compare", str(spec_file), "--episodes", "1", "--seed", "2",
                                           "--output-dir", str(out), "--json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["best_p95"] in payload["policies"] and payload["plot"] == str(out / "scheduler_compare.png")
    r = CliRunner().invoke(scheduler_app, ["compare", str(spec_file), "--model", str(tmp_path / "nope.zip"),
                                           "--output-dir", str(out)])
    assert r.exit_code == 2
    assert "no such file" in r.output


def test_balance_signal_is_the_capped_variance_of_queues():
    cfg = {
        "replicas": [{"name": "a", "speed": 1.0, "max_batch_size": 1}, {"name": "b", "speed": 1.0, "max_batch_size": 1}],
        "prompt_tokens": {"distribution": "constant", "mean": 100, "min": 1, "max": 1000},
        "output_tokens": {"distribution": "constant", "mean": 50, "min": 1, "max": 1000},
        "arrival": {"rate": 1e5},  # a flood: nothing finishes between arrivals
        "episode_requests": 30,
        "balance_signal": "queued",
    }
    env = SchedulerEnv(cfg, reward={"mode": "hybrid", "load_balance_penalty": 0.5})
    env.reset(seed=0)
    signals = [env.step(0)[4]["reward_components"] for _ in range(20)]
    # after 5 requests on a: 1 in service, 4 queued, b empty: var([4, 0]) = 4
    assert signals[4]["balance_signal"] == pytest.approx(4.0)
    assert signals[4]["balance_penalty"] == pytest.approx(1.0 * 0.5 * 4.0)
    # 19 queued, capped at 10 (units of max_batch_size): var([10, 0]) = 25
    assert signals[19]["balance_signal"] == pytest.approx(25.0)
    env = SchedulerEnv({**cfg, "balance_signal": "drain_time"})
    env.reset(seed=0)
    comps = [env.step(k % 2)[4]["reward_components"] for k in range(4)]
    assert comps[-1]["balance_signal"] == pytest.approx(0.0, abs=1e-6)  # the same work on both


def test_step_after_the_episode_is_refused():
    env = SchedulerEnv({"episode_requests": 3})
    env.reset(seed=0)
    for _ in range(3):
        env.step(0)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
