"""Policy runs at `cli-ai tune` budgets: each algorithm trained on a
simulated target, then evaluated deterministically on the same seeded
episodes as its untrained self and the target's best heuristic (what
`cli-ai tune` reports since the references are like for like).

    .venv/bin/python bench/policies.py [--seeds 3]

Prints a Markdown table (means over the training seeds); results go into
docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUNS = [
    ("autoscaling.json", ("dqn", "sarsa", "ppo", "random"), (150, 600, 3000)),
    ("scheduler.json", ("dqn", "ppo", "random"), (1000, 5000)),
]


def one(example: str, algorithm: str, budget: int, seed: int) -> dict:
    from cli_ai import tuning

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        r = tuning.tune(ROOT / "examples" / example,
                        tuning.TuneOptions(budget=budget, seed=seed, algorithm=algorithm, output_dir=tmp))
        wall = time.perf_counter() - started
    return {"trained": r.extra["evaluation"], "untrained": r.extra["untrained"], "heuristic": r.extra["heuristic"],
            "metric": r.metric, "direction": r.direction, "wall": wall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    print("| target | algorithm | budget (steps) | metric: trained / untrained / best heuristic | "
          "reward: trained / untrained / heuristic | trained beats untrained: reward, metric | wall s |")
    print("| --- | --- | ---: | --- | --- | ---: | ---: |")
    for example, algorithms, budgets in RUNS:
        for algorithm in algorithms:
            for budget in budgets:
                runs = [one(example, algorithm, budget, s) for s in range(1, args.seeds + 1)]
                mean = lambda key, field: statistics.fmean(r[key][field] for r in runs)  # noqa: E731
                wins = sum(r["trained"]["mean_reward"] > r["untrained"]["mean_reward"] for r in runs)
                sign = -1 if runs[0]["direction"] == "minimize" else 1
                metric_wins = sum(sign * (r["trained"]["mean_metric"] - r["untrained"]["mean_metric"]) > 0 for r in runs)
                names = sorted({r["heuristic"]["name"] for r in runs})
                print(f"| {example.removesuffix('.json')} | {algorithm} | {budget} | "
                      f"{mean('trained', 'mean_metric'):.4g} / {mean('untrained', 'mean_metric'):.4g} / "
                      f"{mean('heuristic', 'mean_metric'):.4g} ({', '.join(names)}) {runs[0]['metric']} | "
                      f"{mean('trained', 'mean_reward'):.4g} / {mean('untrained', 'mean_reward'):.4g} / "
                      f"{mean('heuristic', 'mean_reward'):.4g} | {wins}, {metric_wins} of {len(runs)} | "
                      f"{statistics.fmean(r['wall'] for r in runs):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
