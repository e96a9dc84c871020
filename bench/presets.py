"""Seed 000's CDBTune preset against cli-ai's knob-search plan for PER-DDPG,
on examples/mosquitto.json's knobs: how far the actor's weights move in a
tune of 10 and 40 evaluations (the surrogate knob env), and what the dry
run finds (improvement over the baseline), with random search as control.

    .venv/bin/python bench/presets.py [--seeds 8]

Prints Markdown tables; results go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "examples" / "mosquitto.json"


def weight_travel(preset: str | None, steps: int, seed: int) -> tuple[float, float]:
    """Relative change of the actor's and the target actor's weights over a run."""
    import torch

    from cli_ai.spec import load_spec
    from cli_ai.tactician.agents.factory import build_agent, plan_knob_agent
    from cli_ai.tactician.backends.simulated import SimulatedBackend
    from cli_ai.tactician.envs.knob_env import Evaluation, KnobTuningEnv
    from cli_ai.tactician.knobs import KnobSpace
    from cli_ai.tactician.surrogate import SimulatedObserver, SurrogateBenchmark

    spec = load_spec(EXAMPLE)
    space = KnobSpace.from_specs(spec.action_space)
    plan = plan_knob_agent("per-ddpg", replace(spec.training_config, preset=preset), steps)
    backend, observer = SimulatedBackend(space.defaults()), SimulatedObserver()
    surrogate = SurrogateBenchmark(space, seed=seed, noise=0.01)

    def evaluate(values):
        metric, system = surrogate.measure(values)
        observer.last = system
        return Evaluation(metric=metric, system=system)

    env = KnobTuningEnv(space, evaluate, apply=backend.write, read=backend.read, observer=observer,
                        max_steps_per_episode=steps)
    agent = build_agent(plan, env, seed=seed)

    def flat(module):
        return torch.cat([p.detach().flatten().clone() for p in module.parameters()])

    a0, t0 = flat(agent.actor), flat(agent.actor_target)
    agent.learn(total_timesteps=steps)
    a1, t1 = flat(agent.actor), flat(agent.actor_target)
    return float((a1 - a0).norm() / a0.norm()), float((t1 - t0).norm() / t0.norm())


def dry_run_improvement(spec_path: Path, budget: int, seed: int, algorithm: str | None) -> float:
    from cli_ai import tuning

    with tempfile.TemporaryDirectory() as tmp:
        result = tuning.tune(spec_path, tuning.TuneOptions(dry_run=True, budget=budget, seed=seed, output_dir=tmp,
                                                           verify=0, algorithm=algorithm))
    return float(result.improvement)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=8)
    args = ap.parse_args(argv)
    seeds = range(1, args.seeds + 1)
    print("| plan | actor moves, 10 evals | 40 evals | target actor, 10 evals | 40 evals |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for preset in ("cdbtuner", None):
        cells = {n: [weight_travel(preset, n, s) for s in list(seeds)[:3]] for n in (10, 40)}
        actor = [100 * statistics.fmean(a for a, _ in cells[n]) for n in (10, 40)]
        target = [100 * statistics.fmean(t for _, t in cells[n]) for n in (10, 40)]
        print(f"| {preset or 'knob search'} | {actor[0]:.2f} % | {actor[1]:.2f} % | {target[0]:.3f} % | {target[1]:.3f} % |")
    preset_spec = json.loads(EXAMPLE.read_text())
    preset_spec["training_config"]["preset"] = "cdbtuner"
    with tempfile.TemporaryDirectory() as tmp:
        preset_path = Path(tmp) / "mosquitto_cdbtuner.json"
        preset_path.write_text(json.dumps(preset_spec))
        rows = [("per-ddpg, cdbtuner preset", preset_path, None), ("per-ddpg, knob search", EXAMPLE, None),
                ("random", EXAMPLE, "random")]
        print()
        print(f"| dry run ({args.seeds} seeds), improvement found | budget 10 | budget 40 |")
        print("| --- | ---: | ---: |")
        for name, path, algorithm in rows:
            means = [statistics.fmean(dry_run_improvement(path, b, s, algorithm) for s in seeds) for b in (10, 40)]
            print(f"| {name} | {means[0]:.1f} % | {means[1]:.1f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
