"""`autoscale test`: greedy roll-outs of a trained model (or a baseline), in simulation or
on the local platform (real worker processes on this machine, wall-clock time).

The report (JSON, `--output`) holds each episode's summary (total and mean reward, mean
and final QoS, mean and max workers, scaling and no-op counts, …), their aggregate, the
env settings and the platform used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from cli_ai.autoscale.episodes import aggregate, run_episodes
from cli_ai.autoscale.rundir import timestamp
from cli_ai.autoscale.settings import BASELINE_NAMES, build_env, check_compatible, env_config_of, load_model, make_policy
from cli_ai.errors import BadInputError
from cli_ai.results import write_json

DEFAULT_OUTPUT = {"sarsa": "runs/eval_results.json", "dqn": "runs/dqn_eval_results.json"}


@dataclass
class TestResult:
    report: dict[str, Any]
    output: Path
    notes: list[str] = field(default_factory=list)


def run_test(
    model: str,
    *,
    episodes: int = 5,
    seed: int = 0,
    workload: str | None = None,
    env_options: Mapping[str, Any] | None = None,
    platform: str = "simulated",
    time_scale: float | None = None,
    output: str | Path | None = None,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
) -> TestResult:
    if episodes < 1:
        raise BadInputError(f"--episodes: {episodes} must be at least 1")
    if platform not in ("simulated", "local"):
        raise BadInputError(f"--platform: {platform!r} is not one of simulated, local")
    notes: list[str] = []
    options = dict(env_options or {})
    if platform == "local":
        options["platform"] = "local"
        options["time_scale"] = time_scale if time_scale is not None else 0.1
    elif time_scale is not None:
        notes.append("--time-scale applies to --platform local only; ignored")
    if model in BASELINE_NAMES:
        agent, kind, base = None, model, None
    else:
        agent = load_model(model)
        kind, base = agent.algorithm, env_config_of(agent)
    env = build_env(workload=workload, base=base, phase_shuffle=False, **options)
    try:
        if env.max_workers < env.config.max_workers:
            notes.append(
                f"the local platform runs at most {env.max_workers} workers (one per CPU core); "
                f"workers are capped there (asked for up to {env.config.max_workers})"
            )
        if env.initial_workers < env.config.initial_workers:
            notes.append(f"starting with {env.initial_workers} workers instead of {env.config.initial_workers}")
        if agent is None:
            policy = make_policy(kind, env)
        else:
            check_compatible(agent, env)
            policy = agent
        seeds = [seed + i for i in range(episodes)]
        started = time.perf_counter()
        summaries = run_episodes(env, policy, seeds, on_episode=on_episode)
        wall = time.perf_counter() - started
        report = {
            "created": timestamp(),
            "model": str(model),
            "algorithm": kind,
            "platform": env.platform.describe(),
            "episodes": episodes,
            "seeds": seeds,
            "wall_time_s": wall,
            "env_config": env.env_config(),
            "aggregate": aggregate(summaries),
            "per_episode": summaries,
        }
    finally:
        env.close()
    out = Path(output) if output else _free(Path(DEFAULT_OUTPUT.get(kind, f"runs/{kind}_eval_results.json")))
    write_json(out, report)
    return TestResult(report, out, notes)


def _free(path: Path) -> Path:
    """The seed's default report path, or eval_results_1.json, _2, ... when an
    earlier report is there: a default never overwrites one (--output does
    what it is told)."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
    return candidate
