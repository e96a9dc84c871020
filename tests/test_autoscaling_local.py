"""The local platform: real worker processes, real CPU work, wall-clock time.

Every test stops the processes it starts and checks by PID that they are gone."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from cli_ai.tactician.envs.autoscaling import AutoscalingEnv
from cli_ai.tactician.envs.autoscaling_local import LocalPlatform


def gone(pids) -> bool:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def test_tasks_run_as_real_cpu_work_in_worker_processes():
    p = LocalPlatform(cold_start=0.0, queue_capacity=10, max_replicas=1, time_scale=0.2)
    try:
        p.reset(1)
        [pid] = p.pids()
        assert pid != os.getpid()
        cpu_before = sum(psutil.Process(pid).cpu_times()[:2])
        p.submit([0.0], [1.0], [10.0])  # one second of work = 0.2 s of wall time
        started = time.monotonic()
        p.advance(2.0)
        wall = time.monotonic() - started
        out = p.poll()
        cpu = sum(psutil.Process(pid).cpu_times()[:2]) - cpu_before
        assert out.on_time == [True]
        # in workload seconds; loose: the work was calibrated on a CPU that other jobs share
        assert 0.3 <= out.response[0] <= 3.0
        assert cpu >= 0.03  # the worker burned CPU (a sleeping process would show ~0), even on a busy machine
        assert wall >= 0.35  # advance(2.0) at time_scale 0.2 waits out 0.4 s of wall time (how long it overruns is bench/)
        s = p.stats()
        assert (s.arrived, s.completed, s.running, s.queued) == (1, 1, 0, 0)
        p.submit([2.0, 2.0], [0.25, 2.5], [30.0, 30.0])  # a small and a large task, one after the other
        t, responses = 2.0, []
        while len(responses) < 2 and t < 60:  # however long the busy machine makes it
            t += 2.0
            p.advance(t)
            responses += p.poll().response
        small, large = responses
        assert large > small * 3  # tenfold the work: clearly longer, however busy the machine
    finally:
        p.close()
    assert gone([pid])
    assert p.pids() == []


def test_scaling_starts_and_stops_processes_with_cold_start():
    p = LocalPlatform(cold_start=2.0, queue_capacity=20, max_replicas=2, time_scale=0.1)
    seen = set()
    try:
        p.reset(1)
        seen |= set(p.pids())
        p.scale_to(5)  # capped at max_replicas (and the cores)
        s = p.stats()
        assert s.workers == min(2, os.cpu_count() or 1)
        if s.workers == 2:
            assert s.starting == 1  # cold start: 2 workload s = 0.2 s wall
            seen |= set(p.pids())
            assert len(seen) == 2
            p.advance(0.5)
            assert p.stats().starting == 1  # 0.05 s of wall time: not ready yet
            t = 0.5
            while p.stats().starting and t < 50:  # process start-up + 0.2 s of emulated cold start
                t += 0.5
                p.advance(t)
            assert p.stats().ready == 2
        t = p.now
        p.submit([t, t, t], [0.5, 0.5, 0.5], [t + 30.0] * 3)
        p.advance(t + 4.0)
        p.scale_to(1)
        p.advance(t + 5.0)
        assert p.stats().ready == 1
        assert len(p.pids()) == 1
        s = p.stats()
        assert s.arrived == s.completed + s.missed + s.queued + s.running
        assert s.completed == 3
    finally:
        p.close()
    assert gone(seen)


def test_env_on_the_local_platform_conserves_tasks_and_cleans_up():
    workload = {
        "name": "tiny",
        "function": {"cold_start": 1.0, "queue_capacity": 30},
        "phases": [
            {"name": "a", "duration": 12, "arrival": {"shape": "constant", "rate": 1.5},
             "task_size": {"distribution": "uniform", "low": 0.3, "high": 0.8}, "deadline": 3},
            {"name": "b", "duration": 12, "arrival": {"shape": "constant", "rate": 0.5},
             "task_size": 0.4, "deadline": 3},
        ],
    }
    env = AutoscalingEnv(workload=workload, platform="local", time_scale=0.05, step_duration=3.0,
                         observation_window=3.0, initial_workers=1, max_workers=2, max_steps=10)
    seen = set()
    try:
        assert env.max_workers == min(2, os.cpu_count() or 1)
        obs, _ = env.reset(seed=0)
        seen |= set(env.platform.pids())
        for action in (2, 1, 1, 0, 1, 1, 2, 1, 0, 1):
            obs, reward, terminated, truncated, info = env.step(action)
            seen |= set(env.platform.pids())
            assert env.observation_space.contains(obs)
            assert info["arrived"] == info["completed"] + info["missed"] + info["queued"] + info["running"]
            if terminated or truncated:
                break
        assert info["processed"] >= 12  # of ~24 tasks; late ones count (real spawns are slow on a busy box)
        env.reset(seed=1)  # a new episode replaces the workers
        seen |= set(env.platform.pids())
    finally:
        env.close()
    assert seen and gone(seen)


def test_worker_dying_is_accounted_as_a_miss():
    p = LocalPlatform(cold_start=0.0, queue_capacity=10, max_replicas=1, time_scale=0.2)
    try:
        p.reset(1)
        [pid] = p.pids()
        p.submit([0.0], [50.0], [100.0])  # 10 s of wall work: killed long before
        p.advance(0.5)
        assert p.stats().running == 1
        psutil.Process(pid).kill()
        p.advance(1.5)
        s = p.stats()
        assert s.running == 0 and s.expired == 1 and s.ready == 0
        assert s.arrived == s.completed + s.missed + s.queued + s.running
    finally:
        p.close()
    assert gone([pid])


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_time_scale_must_be_positive(bad):
    with pytest.raises(ValueError):
        LocalPlatform(time_scale=bad)
