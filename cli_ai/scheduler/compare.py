"""Compare routing policies on the same seeded traffic.

Every policy sees exactly the same requests: episode `e` of every policy is
`env.reset(seed=seed + e)`, and the traffic of an episode (arrival times,
prompt and output lengths) is drawn at reset, before any routing decision, so
only the routing differs. Latency percentiles pool the requests of all
episodes; throughput, imbalance and reward are means over episodes.

A trained PPO model joins the comparison as `ppo`: loaded from `model_path`,
or trained here for `train_steps` steps on the spec's env when no path is
given, seeded with training_config.seed (else `seed`), so the same command
gives the same model. Training draws its traffic from that seed's random
stream, episode after episode; evaluation resets every episode with its own
seed, so (but for at most one episode) PPO is evaluated on traffic it never
trained on.

Throughput is requests finished per second from the first arrival to the last
completion (the drain after the last arrival included), so a policy that
leaves a backlog behind shows a lower throughput.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from cli_ai.errors import BadInputError, SpecError
from cli_ai.spec import TuningSpec, load_spec, spec_from_dict

DEFAULT_POLICIES = ("round_robin", "least_outstanding", "least_work", "random")
EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "scheduler.json"
PLOT_NAME = "scheduler_compare.png"
JSON_NAME = "scheduler_compare.json"
MODEL_NAME = "ppo_scheduler.zip"

Note = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def default_spec() -> TuningSpec:
    """examples/scheduler.json when present, else the same scenario built in
    (an installed wheel has no examples/)."""
    if EXAMPLE.exists():
        return load_spec(EXAMPLE)
    return spec_from_dict(
        {
            "workload_name": "LLM request routing over 4 heterogeneous replicas",
            "target": "scheduler",
            "reward_metric": "p95_latency_ms",
            "metric_direction": "minimize",
            "action_space": [{"param": "route", "type": "enum", "values": ["fast", "mid-a", "mid-b", "slow"]}],
            "reward": {"mode": "hybrid", "throughput_target": 8.0},
            "training_config": {"algorithm": "ppo", "total_timesteps": 100000, "n_steps": 2048,
                                "batch_size": 256, "seed": 7},
            "scheduler": {"replicas": [{"name": "fast", "speed": 2.0}, {"name": "mid-a", "speed": 1.0},
                                       {"name": "mid-b", "speed": 1.0}, {"name": "slow", "speed": 0.5}]},
        },
        source="built-in scheduler spec",
    )


def build_env(spec: TuningSpec, seed: int | None = None):
    from cli_ai.targets import get_target
    from cli_ai.targets.simulated import SchedulerTarget

    target = get_target(spec.target)
    if not isinstance(target, SchedulerTarget):
        where = spec.source or "the spec"
        raise SpecError(f"{where}: its target is \"{spec.target}\", and `cli-ai scheduler compare` compares "
                        "routing policies on a spec with target \"scheduler\": pass examples/scheduler.json or "
                        f"leave SPEC out (a \"{spec.target}\" spec runs with `cli-ai tune {where}`)")
    return target.policy_env(spec, seed=seed)


def ppo_kwargs(spec: TuningSpec, steps: int) -> dict[str, Any]:
    """PPO settings from the spec's training_config, n_steps fitted to `steps`
    (at least 4 updates) and batch_size to a divisor of n_steps."""
    tc = spec.training_config
    n_steps = int(min(tc.n_steps, max(64, steps // 4)))
    batch = min(tc.batch_size, n_steps)
    while n_steps % batch:
        batch -= 1
    return {"learning_rate": tc.learning_rate, "n_steps": n_steps, "batch_size": batch, "n_epochs": tc.n_epochs,
            "gamma": tc.gamma}


def train_ppo(spec: TuningSpec, steps: int, *, seed: int = 0, save_path: str | Path | None = None,
              note: Note = _quiet):
    """Train PPO (MlpPolicy) on the spec's SchedulerEnv for `steps` steps."""
    import torch
    from stable_baselines3 import PPO

    if steps < 1:
        raise BadInputError(f"--train-steps: {steps} must be at least 1")
    torch.set_num_threads(1)  # a small MLP: one thread is the fastest on CPU
    env = build_env(spec, seed=seed)
    kwargs = ppo_kwargs(spec, steps)
    note(f"training PPO for {steps} steps ({', '.join(f'{k}={v}' for k, v in kwargs.items())}, seed {seed})")
    started = time.perf_counter()
    model = PPO("MlpPolicy", env, seed=seed, verbose=0, device="cpu", **kwargs)
    model.learn(total_timesteps=steps)
    note(f"trained in {time.perf_counter() - started:.0f} s")
    if save_path is not None:
        Path(save_path).parent.mkdir(parents=True, exist_ok=True)
        model.save(str(save_path))
    return model


def load_model(path: str | Path, env):
    from stable_baselines3 import PPO

    p = Path(path)
    if not p.exists():
        raise BadInputError(f"--model: {p}: no such file; give a model saved by a previous compare or tune run")
    try:
        model = PPO.load(str(p), device="cpu")
    except Exception as exc:  # a corrupt or foreign zip
        raise BadInputError(f"--model: {p}: cannot be loaded as a PPO model ({type(exc).__name__}: {exc})") from None
    if model.observation_space.shape != env.observation_space.shape or model.action_space != env.action_space:
        raise SpecError(
            f"--model: {p} was trained for observations {model.observation_space.shape} and actions "
            f"{model.action_space}, this spec has {env.observation_space.shape} and {env.action_space}; "
            "train it on a spec with the same replicas"
        )
    return model


def run_policy(spec: TuningSpec, policy: Any, episodes: int, seed: int) -> dict[str, Any]:
    """Roll `policy` over `episodes` seeded episodes (the engine's compare core)."""
    from cli_ai.tactician.compare import run_episodes

    def summarize(env, episode, _i: int, _seed: int) -> dict[str, Any]:
        return {"summary": env.episode_summary(), "latencies_s": env.latencies_s(), "return": episode.reward}

    env = build_env(spec)
    runs = run_episodes(env, policy, [seed + e for e in range(episodes)], summarize=summarize)
    latencies = [r["latencies_s"] for r in runs]
    return {"summaries": [r["summary"] for r in runs],
            "latencies_s": np.concatenate(latencies) if latencies else np.zeros(0),
            "returns": [r["return"] for r in runs]}


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    lat_ms = run["latencies_s"] * 1000.0
    s = run["summaries"]
    if lat_ms.size:
        p50, p95, p99 = (float(x) for x in np.percentile(lat_ms, [50, 95, 99]))
        mean = float(lat_ms.mean())
    else:
        p50 = p95 = p99 = mean = 0.0
    return {
        "mean_latency_ms": mean,
        "p50_latency_ms": p50,
        "p95_latency_ms": p95,
        "p99_latency_ms": p99,
        "throughput": float(np.mean([x["throughput"] for x in s])),
        "imbalance_s": float(np.mean([x["imbalance_s"] for x in s])),
        "reward": float(np.mean(run["returns"])),
        "completed": int(sum(x["completed"] for x in s)),
        "p95_latency_ms_per_episode": [float(x["p95_latency_ms"]) for x in s],
        "routed_share": _shares(s),
    }


def _shares(summaries: Sequence[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, int] = {}
    for s in summaries:
        for name, d in s["per_replica"].items():
            totals[name] = totals.get(name, 0) + d["routed"]
    n = sum(totals.values()) or 1
    return {k: v / n for k, v in totals.items()}


def compare_schedulers(
    spec: TuningSpec | str | Path | None = None,
    model_path: str | Path | None = None,
    episodes: int = 5,
    seed: int = 0,
    *,
    output_dir: str | Path | None = None,
    train_steps: int = 0,
    policies: Sequence[str] = DEFAULT_POLICIES,
    plot: bool = True,
    note: Note = _quiet,
) -> dict[str, Any]:
    """Evaluate the baselines (and PPO, from `model_path` or trained for
    `train_steps`) over `episodes` episodes of the same seeded traffic.

    Returns {"workload", "episodes", "seed", "requests_per_episode",
    "replicas", "metric", "policies": {name: {mean_latency_ms,
    p50/p95/p99_latency_ms, throughput, imbalance_s, reward, completed,
    p95_latency_ms_per_episode, routed_share}}, "best_p95", "model",
    "trained_steps", "plot", "json"}. With `output_dir`, writes the plot
    (scheduler_compare.png), the result (scheduler_compare.json) and a model
    trained here (ppo_scheduler.zip) there."""
    from cli_ai.tactician.agents.scheduler_baselines import make_baseline

    if spec is None:
        spec = default_spec()
    elif not isinstance(spec, TuningSpec):
        spec = load_spec(spec)
    if episodes < 1:
        raise BadInputError(f"--episodes: {episodes} must be at least 1")
    if seed < 0:
        raise BadInputError(f"--seed: {seed} must be at least 0")
    out = Path(output_dir) if output_dir is not None else None
    env = build_env(spec)
    candidates: dict[str, Any] = {name: make_baseline(name, env.n, seed=seed) for name in policies}
    model_file: str | None = None
    if model_path is not None:
        candidates["ppo"] = load_model(model_path, env)
        model_file = str(model_path)
    elif train_steps > 0:
        save = out / MODEL_NAME if out is not None else None
        train_seed = spec.training_config.seed if spec.training_config.seed is not None else seed
        candidates["ppo"] = train_ppo(spec, train_steps, seed=train_seed, save_path=save, note=note)
        model_file = str(save) if save is not None else None

    runs: dict[str, dict[str, Any]] = {}
    for name, policy in candidates.items():
        note(f"evaluating {name} over {episodes} episode(s)")
        runs[name] = run_policy(spec, policy, episodes, seed)
    table = {name: summarize(run) for name, run in runs.items()}
    result: dict[str, Any] = {
        "workload": spec.workload_name,
        "episodes": episodes,
        "seed": seed,
        "requests_per_episode": env.cfg.episode_requests,
        "replicas": [{"name": r.name, "speed": r.speed, "max_batch_size": r.max_batch_size} for r in env.cfg.replicas],
        "metric": spec.reward_metric or "p95_latency_ms",
        "policies": table,
        "best_p95": min(table, key=lambda k: table[k]["p95_latency_ms"]) if table else None,
        "model": model_file,
        "trained_steps": int(train_steps) if model_path is None and train_steps > 0 else 0,
        "plot": None,
        "json": None,
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if plot:
            result["plot"] = str(plot_comparison(result, {k: r["latencies_s"] for k, r in runs.items()}, out / PLOT_NAME))
        result["json"] = str(out / JSON_NAME)
        (out / JSON_NAME).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def plot_comparison(result: dict[str, Any], latencies_s: dict[str, np.ndarray], path: str | Path) -> Path:
    """Two panels: mean and p95 latency per policy (bars), and the latency
    distribution of every policy (empirical CDF). Agg backend; PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["policies"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    x = np.arange(len(names))
    width = 0.38
    mean = [result["policies"][n]["mean_latency_ms"] / 1000.0 for n in names]
    p95 = [result["policies"][n]["p95_latency_ms"] / 1000.0 for n in names]
    ax1.bar(x - width / 2, mean, width, label="mean latency")
    ax1.bar(x + width / 2, p95, width, label="p95 latency")
    ax1.set_xticks(x, names, rotation=15)
    ax1.set_xlabel("routing policy")
    ax1.set_ylabel("latency (s)")
    ax1.set_title(f"{result['episodes']} episode(s) x {result['requests_per_episode']} requests, seed {result['seed']}")
    ax1.legend()
    for name in names:
        lat = np.sort(latencies_s[name])
        if lat.size:
            ax2.plot(lat, np.arange(1, lat.size + 1) / lat.size, label=name)
    ax2.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    ax2.set_xscale("log")
    ax2.set_xlabel("request latency (s, log scale)")
    ax2.set_ylabel("fraction of requests")
    ax2.set_title("latency distribution (same traffic)")
    ax2.legend()
    fig.suptitle(result["workload"])
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
