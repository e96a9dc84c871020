"""The autoscaling env: workload files, the discrete-event simulation, the gym contract."""

from __future__ import annotations

import json
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_ai.errors import BadInputError, SpecError
from cli_ai.spec import load_spec, spec_from_dict
from cli_ai.tactician.envs.autoscaling import (
    ENV_ID,
    METRICS,
    OBSERVATION_NAMES,
    AutoscalingEnv,
    make_env,
)
from cli_ai.tactician.envs.autoscaling_platform import SimulatedPlatform
from cli_ai.tactician.envs.autoscaling_workload import (
    DEFAULT_WORKLOAD,
    generate_tasks,
    load_workload,
    parse_workload,
)

from .conftest import EXAMPLES


def small_workload(rate=4.0, deadline=3.0, duration=40.0, **function):
    return {
        "name": "small",
        "function": {"cold_start": 2.0, "concurrency": 1, "queue_capacity": 50, **function},
        "phases": [
            {"name": "a", "duration": duration, "arrival": {"shape": "constant", "rate": rate},
             "task_size": {"distribution": "uniform", "low": 0.5, "high": 1.5}, "deadline": deadline},
            {"name": "b", "duration": duration, "arrival": {"shape": "ramp", "rate": rate, "end_rate": 2 * rate},
             "task_size": {"distribution": "exponential", "mean": 1.0, "max": 5}, "deadline": deadline},
            {"name": "c", "duration": duration, "arrival": {"shape": "burst", "rate": 1, "burst_rate": 3 * rate,
                                                           "burst_duration": 4, "burst_interval": 10},
             "task_size": 0.8, "deadline": deadline},
            {"name": "d", "duration": duration, "arrival": {"shape": "sinusoid", "rate": rate, "amplitude": rate, "period": 20},
             "task_size": {"distribution": "lognormal", "mean": 1.0, "sigma": 0.5}, "deadline": deadline},
        ],
    }


# --------------------------------------------------------------------------- workloads


def test_example_workload_file_is_the_embedded_default():
    from_file = load_workload(EXAMPLES / "workloads" / "autoscaling.yaml")
    default = load_workload(None)
    assert from_file.to_dict()["phases"] == default.to_dict()["phases"]
    assert from_file.to_dict()["function"] == DEFAULT_WORKLOAD["function"]
    assert [p.arrival.shape for p in default.phases] == ["constant", "ramp", "burst", "sinusoid"]


def test_arrival_shapes_follow_their_rate_functions():
    wl = parse_workload({"phases": [
        {"duration": 2000, "arrival": {"shape": "ramp", "rate": 0, "end_rate": 10}, "task_size": 1, "deadline": 5},
        {"duration": 2000, "arrival": {"shape": "burst", "rate": 1, "burst_rate": 9, "burst_duration": 10,
                                       "burst_interval": 40}, "task_size": 1, "deadline": 5},
    ]})
    tasks = generate_tasks(wl, np.random.default_rng(0))
    ramp = tasks.arrival[tasks.phase == 0]
    # a linear ramp from 0 to 10/s: the second half holds three times the first half's arrivals
    first, second = np.sum(ramp < 1000), np.sum(ramp >= 1000)
    assert 2.6 < second / first < 3.4
    assert abs(ramp.size - 10_000) < 500  # mean rate 5/s over 2000 s
    burst = tasks.arrival[tasks.phase == 1] - 2000
    in_burst = np.mod(burst, 40) < 10
    # bursts cover a quarter of the time at 9/s, the rest 1/s
    assert abs(in_burst.sum() / 500 - 9) < 0.8
    assert abs((~in_burst).sum() / 1500 - 1) < 0.2
    assert np.all(np.diff(tasks.arrival) >= 0)
    assert np.allclose(tasks.deadline - tasks.arrival, 5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: w["phases"][0]["arrival"].update(shape="spike"), "phases[0].arrival.shape: 'spike' is not one of"),
        (lambda w: w["phases"][1]["arrival"].pop("end_rate"), "phases[1].arrival: a ramp arrival needs 'end_rate'"),
        (lambda w: w["phases"][0].update(duration=-1), "phases[0].duration: -1 must be above 0"),
        (lambda w: w["phases"][0]["task_size"].update(low=3), "phases[0].task_size.low: 3 is above high 1.5"),
        (lambda w: w["phases"][0].update(deadlin=3), "phases[0]: unknown field 'deadlin' (did you mean 'deadline'?)"),
        (lambda w: w["function"].update(concurrency=0), "function.concurrency: expected a whole number >= 1"),
        (lambda w: w.update(phases=[]), "phases: give a non-empty list of phases"),
    ],
)
def test_workload_errors_name_the_field(change, message):
    data = small_workload()
    change(data)
    with pytest.raises(BadInputError) as err:
        parse_workload(data)
    assert message in str(err.value)


def test_workload_file_errors(tmp_path):
    with pytest.raises(BadInputError, match="no such file; give the path of a workload file"):
        load_workload(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("phases: [\n  - name: x\n")
    with pytest.raises(BadInputError, match=r"bad.yaml: line \d+, column \d+: not valid YAML"):
        load_workload(bad)


# --------------------------------------------------------------------------- gym contract


def test_gymnasium_and_sb3_env_checkers_pass():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = AutoscalingEnv(workload=small_workload(), max_steps=10, step_duration=4.0)
    check_env(env, skip_render_check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sb3_check_env(AutoscalingEnv(workload=small_workload(), max_steps=10), warn=True)


def test_registered_id_builds_the_env():
    env = gym.make(ENV_ID, max_steps=3, initial_workers=4)
    obs, info = env.reset(seed=1)
    assert env.observation_space.shape == (9,)
    assert obs[4] == 4
    steps = 0
    while True:
        obs, reward, terminated, truncated, info = env.step(1)
        steps += 1
        if terminated or truncated:
            break
    assert steps == 3 and truncated


def test_observation_is_documented_and_reward_components_add_up():
    import cli_ai.tactician.envs.autoscaling as module

    for name in OBSERVATION_NAMES:
        assert name in module.__doc__
    env = AutoscalingEnv(workload=small_workload(), reward_metric="qos_per_worker", max_steps=8)
    obs, _ = env.reset(seed=3)
    for action in (2, 2, 1, 0, 0, 1, 2, 1):
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert reward == pytest.approx(sum(info["reward_components"].values()))
        assert set(info["reward_components"]) == {"qos", "worker_cost", "queue", "scaling"}
        assert info["metric"] == info["qos_per_worker"]
        assert obs[4] == info["workers"]
        assert obs[0] == min(info["queued"], env.obs_high[0])


def test_actions_move_the_worker_count_within_bounds():
    env = AutoscalingEnv(workload=small_workload(), initial_workers=2, min_workers=1, max_workers=4,
                         scale_steps=(1, 2), max_steps=20)
    assert env.action_deltas == (-2, -1, 0, 1, 2) and env.noop_action == 2
    env.reset(seed=0)
    counts = []
    for action in (4, 4, 4, 3, 0, 0, 0, 1, 2):
        _, _, _, _, info = env.step(action)
        counts.append(info["workers"])
    assert counts == [4, 4, 4, 4, 2, 1, 1, 1, 1]
    with pytest.raises(ValueError):
        env.step(5)


def test_config_errors_are_bad_input():
    with pytest.raises(BadInputError, match=r"initial_workers: 40 is outside \[min_workers, max_workers\] = \[1, 32\]"):
        AutoscalingEnv(initial_workers=40)
    with pytest.raises(BadInputError, match="reward_metric: 'latency' is not one of"):
        AutoscalingEnv(reward_metric="latency")


# --------------------------------------------------------------------------- simulation


def test_cold_start_delays_capacity():
    for cold, expected in ((5.0, 6.0), (0.0, 1.0)):
        p = SimulatedPlatform(cold_start=cold, concurrency=1, queue_capacity=10)
        p.reset(0)
        p.scale_to(1)
        assert p.stats().starting == (1 if cold else 0)
        p.submit([0.0], [1.0], [100.0])
        p.advance(3.0)
        assert p.stats().queued == (1 if cold else 0)
        p.advance(20.0)
        out = p.poll()
        assert out.response == [pytest.approx(expected)]
        assert p.stats().ready == 1 and p.stats().starting == 0


def test_cold_start_in_the_env_costs_before_it_serves():
    env = AutoscalingEnv(workload=small_workload(rate=8.0), initial_workers=1, cold_start=6.0, step_duration=4.0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(2)  # scale up at t=0: ready only at t=6
    assert info["workers"] == 2 and info["starting_workers"] == 1 and info["ready_workers"] == 1
    assert info["workers_avg"] == pytest.approx(2.0)  # the cold-starting worker already costs
    _, _, _, _, info = env.step(1)
    assert info["ready_workers"] == 2 and info["starting_workers"] == 0


def test_deadlines_expire_queued_tasks_and_full_queues_reject():
    p = SimulatedPlatform(cold_start=0.0, concurrency=1, queue_capacity=3)
    p.reset(1)
    p.submit([0, 0, 0, 0, 0], [10, 1, 1, 1, 1], [100, 2, 2, 2, 2])
    p.advance(50)
    s = p.stats()
    assert s.rejected == 1  # one running, three queued, the fifth rejected
    assert s.expired == 3  # the three waited past their deadline at t=2
    assert s.completed == 1 and s.queued == 0 and s.running == 0
    assert sorted(p.poll().dropped_time) == [0, 2, 2, 2]


def test_scale_down_drains_busy_workers():
    p = SimulatedPlatform(cold_start=0.0, concurrency=1, queue_capacity=10)
    p.reset(2)
    p.submit([0.0], [5.0], [100.0])
    p.advance(1.0)
    p.scale_to(1)  # the idle worker goes first
    s = p.stats()
    assert (s.ready, s.draining, s.running) == (1, 0, 1)
    p.scale_to(0)  # the busy one drains
    s = p.stats()
    assert (s.ready, s.draining) == (0, 1)
    p.advance(6.0)
    s = p.stats()
    assert (s.draining, s.completed) == (0, 1)
    # worker-seconds: two workers for 1 s, then one until the task ended at 5 s
    assert s.worker_seconds == pytest.approx(2 * 1 + 1 * 4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.integers(0, 4), min_size=20, max_size=80),
    cold_start=st.sampled_from([0.0, 1.5, 6.0]),
    concurrency=st.integers(1, 3),
    queue_capacity=st.integers(1, 60),
    deadline=st.sampled_from([0.5, 2.0, 8.0]),
    shuffle=st.booleans(),
)
def test_tasks_are_conserved(seed, actions, cold_start, concurrency, queue_capacity, deadline, shuffle):
    """arrived = completed + missed + queued + running, at every step of long random runs."""
    env = AutoscalingEnv(
        workload=small_workload(rate=5.0, deadline=deadline),
        cold_start=cold_start, concurrency=concurrency, queue_capacity=queue_capacity,
        initial_workers=3, min_workers=0, max_workers=12, scale_steps=(1, 3), max_steps=None,
        step_duration=3.0, observation_window=7.0, phase_shuffle=shuffle, phase_shuffle_seed=seed % 97,
    )
    env.reset(seed=seed)
    total_tasks = len(env._tasks)
    steps = 0
    while True:
        action = actions[steps % len(actions)]
        _, _, terminated, truncated, info = env.step(action)
        steps += 1
        assert info["arrived"] == info["completed"] + info["missed"] + info["queued"] + info["running"]
        assert info["missed"] == info["late"] + info["expired"] + info["rejected"]
        assert min(info["queued"], info["running"], info["completed"], info["missed"]) >= 0
        assert info["queued"] <= queue_capacity
        assert info["running"] <= (info["ready_workers"] + info["draining_workers"]) * concurrency
        assert 0 <= info["workers"] <= 12
        if terminated or truncated:
            break
        assert steps < 500
    assert terminated and info["arrived"] == total_tasks
    assert info["queued"] == info["running"] == 0


def test_phase_shuffle_is_deterministic_per_seed():
    def orders(seed):
        env = AutoscalingEnv(workload=small_workload(), phase_shuffle=True, phase_shuffle_seed=seed)
        return [tuple(env.reset()[1]["phase_order"]) for _ in range(6)]

    assert orders(42) == orders(42)
    assert orders(42) != orders(43)
    assert len(set(orders(42))) > 1  # it does shuffle
    env = AutoscalingEnv(workload=small_workload())
    assert {tuple(env.reset()[1]["phase_order"]) for _ in range(3)} == {("a", "b", "c", "d")}


def test_same_seed_same_episode():
    def run(seed):
        env = AutoscalingEnv(workload=small_workload(), max_steps=15)
        obs, _ = env.reset(seed=seed)
        trace = [obs]
        for a in [2, 2, 0, 1, 2, 0, 0, 1, 2, 1, 1, 0, 2, 2, 1]:
            obs, r, *_ = env.step(a)
            trace.append(np.append(obs, r))
        return np.concatenate(trace)

    assert np.array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def test_thousands_of_simulated_steps_per_second():
    env = AutoscalingEnv(max_steps=None)  # the default workload, ~8 tasks/s
    rng = np.random.default_rng(0)
    steps, started = 0, time.perf_counter()
    while steps < 3000:
        env.reset(seed=steps)
        while True:
            *_, terminated, truncated, _ = env.step(int(rng.integers(3)))
            steps += 1
            if terminated or truncated:
                break
    rate = steps / (time.perf_counter() - started)
    assert rate > 1000, f"{rate:.0f} steps/s"


# --------------------------------------------------------------------------- spec


def test_make_env_from_the_example_spec():
    spec = load_spec(EXAMPLES / "autoscaling.json")
    env = make_env(spec, seed=7)
    assert env.action_deltas == (-2, -1, 0, 1, 2)  # scale_step knob min 1 max 2
    assert (env.min_workers, env.max_workers, env.initial_workers) == (1, 32, 12)
    assert env.config.max_steps == spec.training_config.max_steps_per_episode
    assert env.config.phase_shuffle
    assert env.workload.source.endswith("workloads/autoscaling.yaml")
    _, _, _, _, info = env.step(env.noop_action)
    assert info["metric"] == info["qos"]


def _spec(**changes):
    data = json.loads((EXAMPLES / "autoscaling.json").read_text())
    data.update(changes)
    return spec_from_dict(data)


def test_make_env_reports_spec_problems_with_paths():
    with pytest.raises(SpecError, match=r"action_space\[0\].param: 'replicas' is not an autoscaling knob"):
        make_env(_spec(action_space=[{"param": "replicas", "type": "int", "min": 1, "max": 4}]))
    with pytest.raises(SpecError, match="reward_metric: 'tps' is not an autoscaling metric"):
        make_env(_spec(reward_metric="tps"))
    with pytest.raises(SpecError, match='metric_direction: workers is to minimize'):
        make_env(_spec(reward_metric="workers"))
    with pytest.raises(SpecError, match=r"autoscaling.initial_workers: 50 is outside"):
        make_env(_spec(autoscaling={"initial_workers": 50}))
    assert set(METRICS) >= {"qos", "final_qos", "workers"}


def test_schema_rejects_unknown_autoscaling_settings():
    from cli_ai.spec import validation_problems

    data = json.loads((EXAMPLES / "autoscaling.json").read_text())
    data["autoscaling"]["step_duraton"] = 4
    problems = validation_problems(data)
    assert any("autoscaling: unknown field 'step_duraton' (did you mean 'step_duration'?)" in p for p in problems)
