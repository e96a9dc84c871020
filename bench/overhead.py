"""The tuning loop's own cost: everything but the benchmark.

For each algorithm, a dry run (simulated backend, surrogate benchmark, which
costs microseconds) is timed per evaluation: applying through the guard,
observing, scoring, recording, the run directory, and the agent's learning.
Also the `auto` optimiser's own time per proposal (ask + tell, nothing
else) at 100 evaluations over the 10 knobs of bench/surfaces.py's
`irrelevant` surface, and the wall time of the README's dry run as a newcomer
runs it (a fresh process, imports included).

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


def proposal_cost(evaluations: int, baseline_runs: int = 3, seed: int = 1) -> dict:
    """ask + tell of `auto`, timed per proposal, on a 10-knob space."""
    sys.path.insert(0, str(ROOT / "bench"))
    from surfaces import SURFACES, Crash, noisy

    from cli_ai.spec import spec_from_dict
    from cli_ai.tactician.knobs import KnobSpace
    from cli_ai.tactician.optimizers import Outcome, make_optimizer

    surface = SURFACES["irrelevant"]
    spec = spec_from_dict({"workload_name": "overhead", "target": "command", "reward_metric": "score",
                           "benchmark_command": "true " + " ".join("{%s}" % k["param"] for k in surface.knobs),
                           "action_space": [dict(k) for k in surface.knobs],
                           "state_space": [{"metric": "cpu_utilization"}]})
    space = KnobSpace.from_specs(spec.action_space)
    search = evaluations - baseline_runs
    opt = make_optimizer("auto", space, seed=seed, budget=search, start=surface.defaults, start_runs=baseline_runs)
    for i in range(baseline_runs):
        opt.observe(surface.defaults, Outcome(noisy(surface, surface.defaults, seed, i)))
    times = []
    for i in range(search):
        started = time.perf_counter()
        (proposal,) = opt.ask(1)
        asked = time.perf_counter()
        try:
            outcome = Outcome(noisy(surface, proposal.values, seed, baseline_runs + i))
        except Crash as exc:
            outcome = Outcome(None, failed=True, error=str(exc))
        told = time.perf_counter()
        opt.tell(proposal, outcome)
        times.append((asked - started) + (time.perf_counter() - told))
    opt.close()
    ordered = sorted(times)
    return {"used": opt.choice.name, "dims": space.dims, "proposals": len(times),
            "median_ms": 1000 * statistics.median(times), "mean_ms": 1000 * statistics.fmean(times),
            "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))], "max_ms": 1000 * ordered[-1],
            "total_s": sum(times)}


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
    ap.add_argument("--algorithms", nargs="*", default=["auto", "ppo", "ddpg", "td3", "sac", "random"])
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
    print()
    print("`auto`'s own time per proposal (ask + tell), 10 knobs of bench/surfaces.py `irrelevant`, "
          "3 baseline runs observed first; 100 evaluations is TPE's regime, 40 the GP's\n")
    print("| evaluations | auto chose | dims | proposals | median ms | mean ms | p95 ms | max ms | optimiser total s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for evaluations in (100, 40):
        r = proposal_cost(evaluations)
        print(f"| {evaluations} | {r['used']} | {r['dims']} | {r['proposals']} | {r['median_ms']:.1f} | "
              f"{r['mean_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | {r['total_s']:.2f} |")
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
