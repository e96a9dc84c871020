"""`cli-ai autoscale …` through Typer's CliRunner: run directories, reports, comparisons, plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import psutil
import pytest
import yaml
from typer.testing import CliRunner

from cli_ai.autoscale.cli import autoscale_app
from tests.conftest import run_cli

PNG = b"\x89PNG\r\n\x1a\n"

TINY = {
    "name": "tiny",
    "function": {"cold_start": 1.0, "concurrency": 1, "queue_capacity": 100},
    "phases": [
        {"name": "low", "duration": 24, "arrival": {"shape": "constant", "rate": 2.0}, "task_size": 0.5, "deadline": 4.0},
        {"name": "high", "duration": 24, "arrival": {"shape": "ramp", "rate": 2.0, "end_rate": 6.0},
         "task_size": {"distribution": "uniform", "low": 0.3, "high": 0.9}, "deadline": 4.0},
    ],
}
ENV_FLAGS = ["--max-steps", "12", "--step-duration", "4", "--observation-window", "4", "--initial-workers", "6",
             "--max-workers", "12"]


def invoke(*args):
    result = CliRunner().invoke(autoscale_app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def is_png(path: Path, min_size: int = 10_000) -> bool:
    data = Path(path).read_bytes()
    return data.startswith(PNG) and len(data) > min_size


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny SARSA and one tiny DQN run, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("autoscale")
    workload = root / "tiny.yaml"
    workload.write_text(yaml.safe_dump(TINY))
    runs = root / "runs"
    sarsa = invoke("train-sarsa", "--episodes", 6, *ENV_FLAGS, "--bins", 2, 2, 2, 2, 12, 2, 2, 2, 2,
                   "--checkpoint-every", 3, "--eval-episodes", 2, "--output-dir", runs, "--workload", workload,
                   "--seed", 1, "--phase-shuffle", "--phase-shuffle-seed", 4)
    assert sarsa.exit_code == 0, sarsa.output
    dqn = invoke("train-dqn", "--episodes", 4, *ENV_FLAGS, "--hidden-layers", 16, 16, "--batch-size", 8,
                 "--warmup", 16, "--target-update", 5, "--target-tau", 0.5, "--checkpoint-every", 2,
                 "--eval-episodes", 1, "--output-dir", runs, "--workload", workload, "--seed", 2)
    assert dqn.exit_code == 0, dqn.output
    [sarsa_dir] = runs.glob("sarsa_run_*")
    [dqn_dir] = runs.glob("dqn_run_*")
    return {"root": root, "runs": runs, "workload": workload, "sarsa": sarsa_dir, "dqn": dqn_dir,
            "sarsa_output": sarsa.output, "dqn_output": dqn.output}


def test_train_sarsa_writes_the_seed_run_directory(trained):
    run = trained["sarsa"]
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert files == [
        "config.json",
        "evaluation_metrics.json",
        "logs/training.log",
        "models/sarsa_ep0003.pkl",
        "models/sarsa_final.pkl",
        "plots/training_curves.png",
        "training_metrics.json",
    ]
    metrics = json.loads((run / "training_metrics.json").read_text())
    assert metrics["episodes_completed"] == 6 and not metrics["interrupted"]
    first = metrics["episodes"][0]
    for key in ("total_reward", "mean_reward", "mean_qos", "final_qos", "mean_workers", "max_workers",
                "processed_tasks", "qos_violations", "unfinished_tasks", "scaling_actions", "noop_actions", "epsilon"):
        assert key in first
    evals = json.loads((run / "evaluation_metrics.json").read_text())["evaluations"]
    assert [e["episode"] for e in evals] == [3, 6] and evals[-1]["final"]
    assert {"reward_mean", "reward_std", "final_qos_mean", "scaling_actions_mean", "max_workers_mean"} <= set(evals[0])
    log = (run / "logs" / "training.log").read_text()
    assert log.count(" episode=") == 6 and "evaluation after episode 3" in log
    config = json.loads((run / "config.json").read_text())
    assert config["params"]["bins"] == [2, 2, 2, 2, 12, 2, 2, 2, 2]
    assert config["env"]["config"]["phase_shuffle"] is True
    assert is_png(run / "plots" / "training_curves.png")
    assert str(run) in trained["sarsa_output"].replace("\n", "") or "SARSA training" in trained["sarsa_output"]


def test_train_dqn_writes_pt_checkpoints(trained):
    run = trained["dqn"]
    assert sorted(p.name for p in (run / "models").iterdir()) == ["dqn_ep0002.pt", "dqn_final.pt"]
    config = json.loads((run / "config.json").read_text())
    assert config["params"]["hidden_layers"] == [16, 16]
    metrics = json.loads((run / "training_metrics.json").read_text())["episodes"]
    assert len(metrics) == 4 and metrics[-1]["mean_loss"] is not None
    assert is_png(run / "plots" / "training_curves.png")


def test_ctrl_c_saves_an_interrupt_model(tmp_path, monkeypatch, trained):
    from cli_ai.tactician.envs.autoscaling import AutoscalingEnv

    calls = {"n": 0}
    real_step = AutoscalingEnv.step

    def step(self, action):
        calls["n"] += 1
        if calls["n"] == 30:  # during the third episode (12 steps each)
            raise KeyboardInterrupt
        return real_step(self, action)

    monkeypatch.setattr(AutoscalingEnv, "step", step)
    result = invoke("train-sarsa", "--episodes", 10, *ENV_FLAGS, "--output-dir", tmp_path, "--workload",
                    trained["workload"], "--eval-episodes", 0, "--checkpoint-every", 0)
    assert result.exit_code == 130
    [run] = tmp_path.glob("sarsa_run_*")
    assert (run / "models" / "sarsa_interrupt.pkl").exists()
    assert not (run / "models" / "sarsa_final.pkl").exists()
    text = " ".join(result.output.split())
    assert "interrupted after 2 of 10 episodes" in text
    metrics = json.loads((run / "training_metrics.json").read_text())
    assert metrics["interrupted"] and metrics["episodes_completed"] == 2
    assert "interrupted: 2 of 10 episodes completed" in (run / "logs" / "training.log").read_text()


def test_test_command_writes_a_json_report(trained, tmp_path):
    out = tmp_path / "eval.json"
    model = trained["sarsa"] / "models" / "sarsa_final.pkl"
    result = invoke("test", "--model", model, "--episodes", 2, "--output", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["algorithm"] == "sarsa" and report["episodes"] == 2
    assert report["env_config"]["config"]["max_steps"] == 12  # taken from the model's training env
    assert report["env_config"]["config"]["phase_shuffle"] is False
    assert report["env_config"]["workload"]["name"] == "tiny"
    for key in ("total_reward", "mean_reward", "mean_qos", "final_qos", "mean_workers", "max_workers",
                "scaling_actions", "noop_actions"):
        assert key in report["per_episode"][0]
    assert "reward_mean" in report["aggregate"]
    dqn = invoke("test", "--model", trained["dqn"] / "models" / "dqn_final.pt", "--episodes", 1, "--output",
                 tmp_path / "dqn.json", "--max-steps", 3)
    assert dqn.exit_code == 0, dqn.output
    assert json.loads((tmp_path / "dqn.json").read_text())["per_episode"][0]["steps"] == 3


def test_test_on_the_local_platform_runs_real_processes(trained, tmp_path):
    out = tmp_path / "local.json"
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = invoke("test", "--model", trained["sarsa"] / "models" / "sarsa_final.pkl", "--platform", "local",
                    "--time-scale", 0.02, "--episodes", 1, "--max-steps", 4, "--output", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["platform"]["platform"] == "LocalPlatform"
    assert report["per_episode"][0]["steps"] == 4 and report["per_episode"][0]["processed_tasks"] > 0
    assert "one per CPU core" in " ".join(result.output.split()) or report["platform"]["max_replicas"] >= 12
    after = {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}
    assert after <= before  # every worker process was stopped


def test_compare_plot_only_and_baseline_cache(trained):
    runs = trained["runs"]
    sarsa = trained["sarsa"] / "models" / "sarsa_final.pkl"
    dqn = trained["dqn"] / "models" / "dqn_final.pt"
    result = invoke("compare", "--model", sarsa, "--dqn-model", dqn, "--episodes", 2, "--seed", 7,
                    "--agents", "sarsa", "dqn", "reactiveaverage", "reactivemaximum", "--output-dir", runs)
    assert result.exit_code == 0, result.output
    [first] = (runs / "comparison").glob("compare_*")
    data = json.loads((first / "aggregated_results.json").read_text())
    assert data["agents"] == ["sarsa", "dqn", "reactiveaverage", "reactivemaximum"] and data["seeds"] == [7, 8]
    for name in data["agents"]:
        agg = data["results"][name]["aggregate"]
        for key in ("reward_mean", "reward_std", "mean_qos_mean", "mean_qos_std", "mean_workers_mean",
                    "scaling_actions_mean", "noop_actions_mean", "qos_per_worker_mean"):
            assert key in agg
        with open(first / "logs" / f"{name}_steps.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 24 and {r["episode"] for r in rows} == {"0", "1"}
    # same seeds: every policy saw the same arrivals
    arrivals = {n: [r["arrival_rate"] for r in csv.DictReader(open(first / "logs" / f"{n}_steps.csv"))]
                for n in data["agents"]}
    assert len({tuple(v) for v in arrivals.values()}) == 1
    assert is_png(first / "plots" / "comparison.png")
    for word in ("sarsa", "reactiveaverage", "reactivemaximum", "QoS"):
        assert word in result.output

    only = invoke("compare", "--plot-only", "--input-dir", first, "--agents", "reactiveaverage")
    assert only.exit_code == 0, only.output
    assert is_png(first / "plots" / "comparison_reactiveaverage.png")

    cached = invoke("compare", "--model", sarsa, "--dqn-model", dqn, "--episodes", 2, "--seed", 7,
                    "--baseline-cache", first, "--output-dir", runs)
    assert cached.exit_code == 0, cached.output
    second = max((runs / "comparison").glob("compare_*"), key=lambda p: p.stat().st_mtime)
    again = json.loads((second / "aggregated_results.json").read_text())
    assert again["reused"] == ["reactiveaverage", "reactivemaximum"]
    assert again["results"]["reactiveaverage"] == data["results"]["reactiveaverage"]
    assert (second / "logs" / "reactivemaximum_steps.csv").exists()


def test_plot_from_log_and_json_with_labelled_axes(trained, tmp_path):
    from cli_ai.autoscale.plot import load_evaluations, load_training_metrics, plot_training_curves

    run = trained["sarsa"]
    out = tmp_path / "curves.png"
    result = invoke("plot", run / "logs" / "training.log", "--output", out)
    assert result.exit_code == 0, result.output
    assert is_png(out)
    from_log = load_training_metrics(run / "logs" / "training.log")
    from_json = load_training_metrics(run / "training_metrics.json")
    assert [e["episode"] for e in from_log] == [e["episode"] for e in from_json] == list(range(1, 7))
    assert [round(e["total_reward"], 4) for e in from_log] == [round(e["total_reward"], 4) for e in from_json]
    fig = plot_training_curves(from_json, load_evaluations(run / "evaluation_metrics.json"))
    for ax in fig.axes[:4]:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "evaluation mean ± 1σ" in legend
    default = invoke("plot", run / "training_metrics.json")  # next to the run, evaluation overlaid
    assert default.exit_code == 0 and is_png(run / "plots" / "training_curves.png")


def test_comparison_figure_has_labelled_axes_and_legends(trained, tmp_path):
    from cli_ai.autoscale.compare import read_steps
    from cli_ai.autoscale.plot import plot_comparison

    # its own comparison: it used to read another test's, and skipped when run alone
    result = invoke("compare", "--model", trained["sarsa"] / "models" / "sarsa_final.pkl", "--episodes", 1,
                    "--agents", "sarsa", "reactiveaverage", "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    [first] = (tmp_path / "comparison").glob("compare_*")
    data = json.loads((first / "aggregated_results.json").read_text())
    traces = {n: [r for r in read_steps(first / "logs" / f"{n}_steps.csv") if r["episode"] == 0] for n in data["agents"]}
    fig = plot_comparison(traces, {n: data["results"][n]["aggregate"] for n in data["agents"]})
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    names = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert names == data["agents"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--agents", "sarsa"], "--agents: sarsa needs a trained model; give --model PATH"),
        (["compare", "--agents", "greedy"], "--agents: 'greedy' is not one of"),
        (["test", "--model", "model.txt"], "a model is a SARSA .pkl or a DQN .pt file"),
        (["compare", "--plot-only"], "--plot-only needs --input-dir"),
        (["train-dqn", "--hidden-layers", "64", "x"], "--hidden-layers: expected whole numbers"),
        (["train-sarsa", "--episodes", "1", "--alpha", "2"], "--alpha: 2.0 must be within [0, 1]"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, tmp_path):
    result = invoke(*args, "--output-dir", tmp_path) if args[0] in ("train-dqn", "train-sarsa") else invoke(*args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_bins_need_nine_integers():
    result = invoke("train-sarsa", "--bins", 1, 2, 3)
    assert result.exit_code == 2


def test_test_without_output_never_overwrites_an_earlier_report(trained, tmp_path):
    """`autoscale test` always wrote ./runs/eval_results.json, over the last one."""
    model = trained["sarsa"] / "models" / "sarsa_final.pkl"
    first = run_cli("autoscale", "test", "--model", model, "--episodes", "1", cwd=tmp_path)
    second = run_cli("autoscale", "test", "--model", model, "--episodes", "1", cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["eval_results.json", "eval_results_1.json"]
    assert "eval_results_1.json" in second.stdout + second.stderr
