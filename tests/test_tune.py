"""`cli-ai tune`: the dry run a newcomer starts with, reproducibility, the
command target, the env contract, apply/export and the result files."""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_ai.safety.catalog import load_catalog
from cli_ai.tactician.backends.sysctl import SysctlBackend
from tests.conftest import EXAMPLES, cli_ai_cmd, run_cli

PG = EXAMPLES / "postgresql_oltp.json"


def sysctl_snapshot() -> dict:
    backend = SysctlBackend()
    out = {}
    for name in load_catalog():
        if backend.exists(name):
            out[name] = backend.read([name])[name]
    return out


def test_dry_run_as_a_newcomer_runs_it(tmp_path):
    """The README's first command: finishes, writes the run directory, prints the
    summary and the sysctl lines, changes nothing. Where we can, it runs with
    /proc/sys mounted read-only (a private mount namespace), so a write would fail."""
    before = sysctl_snapshot()
    out_dir = tmp_path / "runs"
    cmd = [*cli_ai_cmd(), "tune", str(PG), "--dry-run", "--budget", "30", "--seed", "1", "--output-dir", str(out_dir)]
    if os.geteuid() == 0 and shutil.which("unshare"):
        inner = "mount -o bind,ro /proc/sys /proc/sys && exec " + " ".join(map(shlex.quote, cmd))
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", inner]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "SIMULATED" in r.stdout
    assert "Optimization complete" in r.stdout and "Improvement" in r.stdout
    assert "Search:        auto (gp)" in r.stdout or "Search:        auto" in r.stdout
    assert "Verdict" in r.stdout
    assert sysctl_snapshot() == before
    (run_dir,) = out_dir.iterdir()
    for name in ("spec.json", "trajectory.csv", "result.json", "plots/progress.png"):
        assert (run_dir / name).exists(), name
    result = json.loads((run_dir / "result.json").read_text())
    assert result["verification"]["runs"] == 3 and result["verdict"] in ("better", "not significant", "worse")
    if result["verdict"] == "better":
        assert "sudo sysctl -w vm.dirty_ratio=" in r.stdout
    else:
        assert "sudo sysctl -w" not in r.stdout
    assert (run_dir / "plots" / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((run_dir / "trajectory.csv").open()))
    assert len(rows) == 30 and rows[0]["step"] == "0"
    assert {"vm.dirty_ratio", "metric", "reward", "performance", "stability"} <= set(rows[1])
    spec = json.loads((run_dir / "spec.json").read_text())
    assert spec["training_config"] == {"budget": 30, "seed": 1}
    assert not (tmp_path / "state" / "journal.json").exists()


def test_dry_run_needs_no_root(tmp_path, monkeypatch):
    from cli_ai import tuning

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = tuning.tune(PG, tuning.TuneOptions(dry_run=True, budget=5, seed=1, output_dir=str(tmp_path),
                                                algorithm="random"))
    assert result.success and result.simulated and result.evaluations == 5


def test_json_output_is_one_object_and_seeded_runs_repeat(tmp_path):
    results = []
    for i in range(2):
        r = run_cli("tune", PG, "--dry-run", "--budget", "12", "--seed", "7", "--json", "--output-dir", tmp_path / f"r{i}")
        assert r.returncode == 0, r.stderr
        results.append(json.loads(r.stdout))  # stdout holds the JSON object and nothing else
    a, b = results
    for key in ("success", "best_config", "baseline", "best", "improvement", "run_dir"):
        assert key in a
    assert a["simulated"] is True and a["evaluations"] == 12
    assert a["best_config"] == b["best_config"] and a["best"] == b["best"] and a["baseline"] == b["baseline"]
    traj = [(Path(x["run_dir"]) / "trajectory.csv").read_text().splitlines() for x in results]
    strip = lambda lines: [",".join(c for j, c in enumerate(line.split(",")) if j not in (1, 2)) for line in lines]
    assert strip(traj[0]) == strip(traj[1])  # same values and metrics, step for step (times differ)


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac", "random"])
def test_every_algorithm_runs_the_same_loop(tmp_path, algo):
    from cli_ai import tuning

    result = tuning.tune(PG, tuning.TuneOptions(dry_run=True, budget=8, seed=3, algorithm=algo, output_dir=str(tmp_path)))
    assert result.algorithm == algo and result.evaluations == 8 and result.success
    assert (Path(result.run_dir) / "model.zip").exists() == (algo != "random")


def test_budget_fitting_is_reported(tmp_path):
    from cli_ai import tuning

    result = tuning.tune(PG, tuning.TuneOptions(dry_run=True, budget=10, seed=1, output_dir=str(tmp_path),
                                                algorithm="ppo"))
    assert any(n.startswith("PPO n_steps 2048 -> ") for n in result.notes)
    data = json.loads((Path(result.run_dir) / "result.json").read_text())
    assert data["notes"] == result.notes


def test_dry_run_on_a_param_missing_here_warns_but_runs(tmp_path):
    from cli_ai import tuning
    from cli_ai.events import EventLog

    log = EventLog()
    result = tuning.tune(EXAMPLES / "cpu_intensive.json",
                         tuning.TuneOptions(dry_run=True, budget=5, seed=1, output_dir=str(tmp_path), algorithm="random"),
                         sink=log)
    assert result.success
    warnings = log.of("run_started")[0].data["run"].warnings
    if not SysctlBackend().exists("kernel.sched_min_granularity_ns"):
        assert "kernel.sched_min_granularity_ns does not exist on this kernel; the dry run simulates it anyway" in warnings


def test_real_run_refuses_without_terminal_or_yes(tmp_path):
    r = run_cli("tune", EXAMPLES / "loopback_backlog.json", "--output-dir", tmp_path, input="")
    assert r.returncode == 3
    assert "--yes" in r.stderr
    assert not any(tmp_path.iterdir())  # refused before the run directory exists


SCORE_PROGRAM = """
import argparse
p = argparse.ArgumentParser()
p.add_argument("--threads", type=int)
p.add_argument("--ratio", type=float)
p.add_argument("--mode")
p.add_argument("--fast", choices=["true", "false"])
a = p.parse_args()
score = 100 - (a.threads - 13) ** 2 - 40 * (a.ratio - 0.8) ** 2 + (15 if a.mode == "b" else 0) + (5 if a.fast == "true" else 0)
print(f"score: {score:.6f}")
"""


def test_command_target_finds_a_better_score(tmp_path, write_spec):
    prog = tmp_path / "prog.py"
    prog.write_text(SCORE_PROGRAM)
    spec = write_spec({
        "workload_name": "toy program",
        "target": "command",
        "reward_metric": "score",
        "benchmark_command": f"{sys.executable} {prog} --threads {{threads}} --ratio {{ratio}} --mode {{mode}} --fast {{fast}}",
        "action_space": [
            {"param": "threads", "type": "int", "min": 1, "max": 16, "default": 2},
            {"param": "ratio", "type": "float", "min": 0.0, "max": 1.0},
            {"param": "mode", "type": "enum", "values": ["a", "b", "c"], "default": "a"},
            {"param": "fast", "type": "bool", "default": False},
        ],
        "training_config": {"algorithm": "random", "budget": 20, "seed": 4},
    })
    r = run_cli("tune", spec, "--yes", "--json", "--output-dir", tmp_path / "runs")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["baseline_config"] == {"threads": 2, "ratio": 0.5, "mode": "a", "fast": False}
    assert data["baseline"] == pytest.approx(100 - 121 - 40 * 0.09)
    assert data["best"] > data["baseline"] + 50
    assert "sysctl_commands" not in data


def test_command_target_values_cannot_inject_arguments(tmp_path, write_spec):
    from cli_ai.targets.evaluation import substitute

    argv = ("prog", "--mode={mode}", "{mode}")
    assert substitute(argv, {"mode": "a b; rm -rf /"}, shell=False) == ["prog", "--mode=a b; rm -rf /", "a b; rm -rf /"]
    assert substitute(("x {f} {b}",), {"f": 0.1 + 0.2, "b": True}, shell=True) == ["x 0.30000000000000004 true"]


def test_knob_env_passes_the_env_checkers():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from cli_ai.spec import load_spec
    from cli_ai.tactician.envs.knob_env import KnobTuningEnv
    from cli_ai.tactician.knobs import KnobSpace
    from cli_ai.tactician.backends.simulated import SimulatedBackend
    from cli_ai.tactician.surrogate import SimulatedObserver, SurrogateBenchmark
    from cli_ai.tactician.envs.knob_env import Evaluation

    spec = load_spec(PG)
    space = KnobSpace.from_specs(spec.action_space)
    backend = SimulatedBackend(space.defaults())
    surrogate = SurrogateBenchmark(space, seed=1, noise=0.0)  # the checker wants identical replays
    observer = SimulatedObserver()

    def evaluate(values):
        metric, system = surrogate.measure(values)
        observer.last = system
        return Evaluation(metric=metric, system=system)

    def make():
        return KnobTuningEnv(space, evaluate, apply=backend.write, read=backend.read, observer=observer,
                             state_metrics=[m.metric for m in spec.state_space])

    check_env(make(), skip_render_check=True)
    sb3_check_env(make(), warn=True)
    env = make()
    obs, info = env.reset(seed=0)
    assert info["baseline"] and env.evaluations == 1
    obs, reward, terminated, truncated, info = env.step(np.zeros(3, dtype=np.float32))
    assert set(info["reward_components"]) >= {"performance", "stability"}
    assert env.observation_space.contains(obs)


def test_failed_steps_are_penalised_then_stop_the_run():
    from cli_ai.errors import BenchmarkError, TooManyFailures
    from cli_ai.safety.guard import FailureCounter
    from cli_ai.spec import KnobSpec
    from cli_ai.tactician.backends.simulated import SimulatedBackend
    from cli_ai.tactician.envs.knob_env import Evaluation, KnobTuningEnv
    from cli_ai.tactician.knobs import KnobSpace
    from cli_ai.tactician.surrogate import SimulatedObserver

    space = KnobSpace.from_specs([KnobSpec("x", "int", 0, 10)])
    backend = SimulatedBackend({"x": 5})
    calls = {"n": 0}

    def evaluate(values):
        calls["n"] += 1
        if calls["n"] > 1:
            raise BenchmarkError("crashed")
        return Evaluation(metric=10.0)

    env = KnobTuningEnv(space, evaluate, apply=backend.write, read=backend.read, observer=SimulatedObserver(),
                        failure_penalty=-2.0, failures=FailureCounter(2))
    env.reset()
    _, reward, _, _, info = env.step(np.zeros(1))
    # -2.0 asked, but the weighted reward reaches -2.5 on a valid step: a failure scores below that
    assert reward == pytest.approx(-3.5) and info["failed"] and "crashed" in info["error"]
    with pytest.raises(TooManyFailures):
        env.step(np.zeros(1))


def test_export_formats(tmp_path):
    # (A workload with newlines or escape codes is refused: tests/security/test_file_injection.py.)
    result = {"workload": "w [sysctl] kernel.panic=1", "target": "sysctl", "metric": "tps",
              "baseline": 1.0, "best": 2.0, "improvement": 100.0, "verdict": "better",
              "verification": {"verdict": "better", "p_value": 0.001},
              "best_config": {"net.core.somaxconn": 1024, "net.ipv4.tcp_rmem": [4096, 131072, 6291456]}}
    p = tmp_path / "result.json"
    p.write_text(json.dumps(result))
    r = run_cli("export", p, "--format", "sysctl.d")
    assert r.returncode == 0
    assert "net.core.somaxconn = 1024\nnet.ipv4.tcp_rmem = 4096 131072 6291456\n" in r.stdout
    r = run_cli("export", p, "--format", "tuned")
    assert "[main]" in r.stdout and "[sysctl]\nnet.core.somaxconn=1024" in r.stdout
    # The workload stays inside one summary line.
    lines = r.stdout.splitlines()
    assert lines.count("[sysctl]") == 1 and not any(line.startswith("kernel.panic") for line in lines)
    r = run_cli("export", p, "--format", "script")
    assert r.stdout.startswith("#!/bin/sh") and "sysctl -w 'net.ipv4.tcp_rmem=4096 131072 6291456'" in r.stdout
    r = run_cli("export", p, "--format", "yaml")
    assert r.returncode == 2 and "--format" in r.stderr
    # Not verified better: refused like apply, unless --force, and then the file says so.
    unverified = {**result, "verdict": "not significant", "verification": {"verdict": "not significant", "p_value": 0.4}}
    p.write_text(json.dumps(unverified))
    r = run_cli("export", p, "--format", "script")
    assert r.returncode == 3 and "not exported" in r.stderr and "--force" in r.stderr and r.stdout == ""
    r = run_cli("export", p, "--format", "script", "--force")
    assert r.returncode == 0 and r.stdout.startswith("#!/bin/sh\n# EXPORTED WITH --force although")
    p.write_text(json.dumps(result))
    result["best_config"]["vm.dirty_ratio"] = 90
    p.write_text(json.dumps(result))
    r = run_cli("export", p)
    assert r.returncode == 3 and "outside the safe range 1..40" in r.stderr


def test_apply_refuses_a_dry_run_result(tmp_path):
    from cli_ai import tuning

    result = tuning.tune(PG, tuning.TuneOptions(dry_run=True, budget=3, seed=1, output_dir=str(tmp_path), algorithm="random"))
    r = run_cli("apply", result.run_dir, "--yes")
    assert r.returncode == 3 and "--dry-run" in r.stderr


def test_the_surrogate_s_system_metrics_do_not_reveal_its_score():
    """cpu utilisation, iowait and memory pressure were linear in the
    surrogate's score, and fed the observation and the stability reward, so
    the dry run overstated what an agent can learn. They may depend on the
    knobs, but not as a function of the objective."""
    from cli_ai.spec import load_spec
    from cli_ai.tactician.knobs import KnobSpace
    from cli_ai.tactician.surrogate import SurrogateBenchmark

    space = KnobSpace.from_specs(load_spec(PG).action_space)
    for seed in range(6):  # seed 5 gave |r| 0.82 for memory pressure before
        surrogate = SurrogateBenchmark(space, seed=seed, noise=0.0)
        rng = np.random.default_rng(0)
        rows = [surrogate.measure(space.to_native(rng.uniform(-1, 1, space.dims))) for _ in range(400)]
        metric = np.array([m for m, _ in rows])
        for name in ("cpu_utilization", "iowait", "memory_pressure", "io_pressure"):
            values = np.array([s[name] for _, s in rows])
            assert values.std() > 0, name  # they still move with the knobs
            assert abs(np.corrcoef(metric, values)[0, 1]) < 0.3, (seed, name)
            # nor how far from the optimum: a smooth function of the knobs sat at its midpoint there
            mid = (values.max() + values.min()) / 2
            assert abs(np.corrcoef(metric, abs(values - mid))[0, 1]) < 0.3, (seed, name)
