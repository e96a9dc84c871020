"""Compare policies on the same seeded episodes.

Every policy runs the same episodes: episode ``i`` uses seed ``seed + i``, which fixes
the arrivals and task sizes (common random numbers), so differences come from the
policies alone. A comparison directory ``<runs>/comparison/compare_<timestamp>/`` holds:

- ``aggregated_results.json``: settings, per-episode summaries and mean ± std of each
  metric per policy;
- ``logs/<agent>_steps.csv``: every step of every episode per policy;
- ``logs/compare.log``;
- ``plots/comparison.png``: the shared plot (``comparison_<agents>.png`` for a subset
  drawn with ``--plot-only``).

``baseline_cache`` names an earlier comparison directory: its reactive baselines are
reused when they ran the same seeds in the same env, so only the learned policies run.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from cli_ai.autoscale.episodes import STEP_FIELDS, aggregate, run_episodes
from cli_ai.autoscale.rundir import close_logger, file_logger, format_kv, timestamp
from cli_ai.autoscale.settings import AGENT_NAMES, BASELINE_NAMES, build_env, env_config_of, load_model, make_policy
from cli_ai.errors import BadInputError
from cli_ai.results import json_safe, read_json, unique_dir, write_json

RESULTS = "aggregated_results.json"


@dataclass
class CompareResult:
    directory: Path
    agents: list[str]
    results: dict[str, Any]
    plot: Path | None
    reused: list[str]
    wall_time: float


def default_agents(model: str | None, dqn_model: str | None) -> list[str]:
    out = []
    if model:
        out.append("sarsa")
    if dqn_model:
        out.append("dqn")
    return out + list(BASELINE_NAMES)


def check_agents(agents: Sequence[str]) -> list[str]:
    seen = []
    for a in agents:
        name = a.strip().lower()
        if name not in AGENT_NAMES:
            raise BadInputError(f"--agents: {a!r} is not one of {', '.join(AGENT_NAMES)}")
        if name not in seen:
            seen.append(name)
    if not seen:
        raise BadInputError("--agents: name at least one policy")
    return seen


def _write_steps(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(STEP_FIELDS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def read_steps(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            row: dict[str, Any] = {}
            for k, v in raw.items():
                if k == "phase":
                    row[k] = v
                    continue
                try:
                    row[k] = int(v)
                except (TypeError, ValueError):
                    try:
                        row[k] = float(v)
                    except (TypeError, ValueError):
                        row[k] = None if v in ("", "None") else v
            rows.append(row)
    return rows


def _env_base(model: str | None, dqn_model: str | None) -> dict[str, Any] | None:
    for path in (model, dqn_model):
        if path:
            cfg = env_config_of(load_model(path))
            if cfg:
                return cfg
    return None


def run_compare(
    *,
    agents: Sequence[str] | None = None,
    model: str | None = None,
    dqn_model: str | None = None,
    episodes: int = 1,
    seed: int = 0,
    output_dir: str | Path = "runs",
    baseline_cache: str | Path | None = None,
    workload: str | None = None,
    env_options: Mapping[str, Any] | None = None,
    on_episode: Callable[[str, dict[str, Any]], None] | None = None,
) -> CompareResult:
    started = time.perf_counter()
    if episodes < 1:
        raise BadInputError(f"--episodes: {episodes} must be at least 1")
    agents = check_agents(agents or default_agents(model, dqn_model))
    base = _env_base(model, dqn_model)
    env = build_env(workload=workload, base=base, phase_shuffle=False, **dict(env_options or {}))
    seeds = [seed + i for i in range(episodes)]
    env_config = env.env_config()
    policies = {name: make_policy(name, env, model=model if name == "sarsa" else dqn_model) for name in agents}

    cache: dict[str, Any] = {}
    cache_dir = Path(baseline_cache) if baseline_cache else None
    if cache_dir is not None:
        cached = read_json(cache_dir / RESULTS)
        same = cached.get("seeds") == seeds and cached.get("env_config") == _json_roundtrip(env_config)
        if same:
            cache = {n: r for n, r in cached.get("results", {}).items() if n in BASELINE_NAMES}

    directory = unique_dir(Path(output_dir) / "comparison", f"compare_{timestamp()}")
    log = file_logger(f"cli_ai.autoscale.{directory.name}", _mkdir(directory / "logs") / "compare.log")
    log.info("agents=%s episodes=%d seeds=%s", ",".join(agents), episodes, seeds)
    if cache_dir is not None and not cache:
        log.info("baseline cache %s not used: different seeds or env settings", cache_dir)
    results: dict[str, Any] = {}
    reused: list[str] = []
    for name in agents:
        steps_path = directory / "logs" / f"{name}_steps.csv"
        if name in cache and (cache_dir / "logs" / f"{name}_steps.csv").exists():
            results[name] = cache[name]
            _write_steps(steps_path, read_steps(cache_dir / "logs" / f"{name}_steps.csv"))
            reused.append(name)
            log.info("%s: reused from %s", name, cache_dir)
            if on_episode is not None:
                for summary in cache[name].get("episodes", []):
                    on_episode(name, summary)
            continue
        rows: list[dict[str, Any]] = []

        def logged(summary: dict[str, Any], name: str = name) -> None:
            log.info("%s episode %d seed %d: %s", name, summary["episode"], summary["seed"], format_kv(
                {k: summary[k] for k in ("total_reward", "mean_qos", "final_qos", "mean_workers", "max_workers",
                                         "scaling_actions", "noop_actions")}))
            if on_episode is not None:
                on_episode(name, summary)

        summaries = run_episodes(env, policies[name], seeds, step_rows=rows, on_episode=logged)
        results[name] = {"aggregate": aggregate(summaries), "episodes": summaries}
        _write_steps(steps_path, rows)
    env.close()

    payload = {
        "created": timestamp(),
        "agents": agents,
        "episodes": episodes,
        "seeds": seeds,
        "models": {"sarsa": model, "dqn": dqn_model},
        "baseline_cache": str(cache_dir) if cache_dir else None,
        "reused": reused,
        "env_config": env_config,
        "results": results,
    }
    write_json(directory / RESULTS, payload)
    plot = draw(directory, agents)
    wall = time.perf_counter() - started
    log.info("done in %.1f s", wall)
    close_logger(log)
    return CompareResult(directory, agents, results, plot, reused, wall)


def draw(directory: str | Path, agents: Sequence[str] | None = None) -> Path:
    """Draw the shared plot of a comparison directory (all agents, or a subset)."""
    from cli_ai.autoscale.plot import plot_comparison

    directory = Path(directory)
    data = read_json(directory / RESULTS)
    available = list(data.get("agents", []))
    chosen = check_agents(agents) if agents else available
    missing = [a for a in chosen if a not in available]
    if missing:
        raise BadInputError(f"--agents: {', '.join(missing)} not in {directory / RESULTS} (it has {', '.join(available)})")
    traces = {}
    for name in chosen:
        path = directory / "logs" / f"{name}_steps.csv"
        if path.exists():
            traces[name] = [r for r in read_steps(path) if r.get("episode") == 0]
    aggregates = {name: data["results"][name]["aggregate"] for name in chosen}
    name = "comparison.png" if chosen == available else "comparison_" + "_".join(chosen) + ".png"
    output = directory / "plots" / name
    seeds = data.get("seeds", [])
    title = f"{', '.join(chosen)}: {len(seeds)} episode(s), seeds {seeds[0]}..{seeds[-1]}" if seeds else None
    plot_comparison(traces, aggregates, output, title=title)
    return output


def load_results(directory: str | Path) -> dict[str, Any]:
    return read_json(Path(directory) / RESULTS)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _json_roundtrip(value: Any) -> Any:
    import json

    return json.loads(json.dumps(json_safe(value)))
