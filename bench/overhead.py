"""The tuning loop's own cost: everything but the benchmark.

For each algorithm, a dry run (simulated backend, surrogate benchmark, which
costs microseconds) is timed per evaluation: applying through the guard,
observing, scoring, recording, the run directory, and the agent's learning.
Also the wall time of the README's dry run as a newcomer runs it (a fresh
process, imports included).

    .venv/bin/python bench/overhead.py [--budget 60] [--repeats 3]

Prints a Markdown table; results go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "postgresql_oltp.json"


def loop_cost(algorithm: str, budget: int, seed: int) -> dict:
    from cli_ai import tuning
    from cli_ai.events import EventLog

    log = EventLog()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = tuning.tune(SPEC, tuning.TuneOptions(dry_run=True, budget=budget, seed=seed, algorithm=algorithm,
                                                      output_dir=tmp), sink=log)
        total = time.perf_counter() - started
    records = [e.data["record"] for e in log.events if e.kind in ("baseline", "step")]
    bench_time = sum(r.duration_s for r in records)
    steps = [b.elapsed_s - a.elapsed_s for a, b in zip(records, records[1:])]
    return {
        "algorithm": algorithm,
        "evaluations": result.evaluations,
        "total_s": total,
        "per_step_ms": 1000 * (statistics.median(steps) if steps else 0.0),
        "mean_step_ms": 1000 * (statistics.fmean(steps) if steps else 0.0),
        "per_step_p95_ms": 1000 * (sorted(steps)[int(0.95 * (len(steps) - 1))] if steps else 0.0),
        "benchmark_ms": 1000 * bench_time / max(1, len(records)),
    }


def newcomer_wall_time(repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cli_ai", "tune", str(SPEC), "--dry-run", "--budget", "30",
                            "--seed", "1", "--output-dir", tmp], check=True, capture_output=True)
            times.append(time.perf_counter() - started)
    return times


def import_time() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, stable_baselines3"], check=True)
    return time.perf_counter() - started


def help_time(repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cli_ai", "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--algorithms", nargs="*", default=["ppo", "ddpg", "td3", "sac", "random"])
    args = ap.parse_args()
    import os

    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}\n")
    print(f"loop cost per evaluation, dry run of {SPEC.name}, budget {args.budget} (median over steps; "
          "the surrogate 'benchmark' column is what a real benchmark would replace)\n")
    print("| algorithm | evaluations | loop ms/step (median) | mean (updates amortized) | p95 ms | surrogate ms/eval | run total s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for algo in args.algorithms:
        # A first, untimed run pays the one-time costs (lazy imports inside torch
        # and SB3, first optimizer step): those belong to start-up, not to a step.
        loop_cost(algo, 8, seed=2)
        r = loop_cost(algo, args.budget, seed=1)
        print(f"| {algo} | {r['evaluations']} | {r['per_step_ms']:.1f} | {r['mean_step_ms']:.1f} | {r['per_step_p95_ms']:.1f} | "
              f"{r['benchmark_ms']:.3f} | {r['total_s']:.2f} |")
    walls = newcomer_wall_time(args.repeats)
    print()
    print("| measurement | seconds |")
    print("| --- | --- |")
    print(f"| `cli-ai tune examples/postgresql_oltp.json --dry-run --budget 30 --seed 1` (wall, median of {args.repeats}) "
          f"| {statistics.median(walls):.2f} |")
    print(f"| of which `import torch, stable_baselines3` in a fresh process | {import_time():.2f} |")
    print(f"| `cli-ai --help` (median of 5) | {help_time():.3f} |")


if __name__ == "__main__":
    main()
