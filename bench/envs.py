"""How fast the simulated envs step (a random policy, no learning): the
scheduler's and the autoscaling env's steps per second, and how long the
local platform's `advance` overruns the wall time it must wait. These were
timed assertions in tests; on a shared machine they belong here.

    .venv/bin/python bench/envs.py [--repeats 3]

Prints a Markdown table; results go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def steps_per_second(example: str, seed: int) -> float:
    from cli_ai.spec import load_spec
    from cli_ai.targets import get_target

    spec = load_spec(ROOT / "examples" / example)
    env = get_target(spec.target).policy_env(spec, seed=seed)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < 2.0:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - started)
    env.close()
    return rate


def local_overrun(seed: int) -> float:
    """Seconds `advance(2.0)` at time_scale 0.2 takes beyond the 0.4 s it must wait."""
    from cli_ai.tactician.envs.autoscaling_local import LocalPlatform

    p = LocalPlatform(cold_start=0.0, queue_capacity=10, max_replicas=1, time_scale=0.2)
    try:
        p.reset(seed)
        p.submit([0.0], [1.0], [10.0])
        started = time.monotonic()
        p.advance(2.0)
        return time.monotonic() - started - 0.4
    finally:
        p.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    rows = [
        ("scheduler env, steps/s", [steps_per_second("scheduler.json", s) for s in range(args.repeats)], "{:.0f}"),
        ("autoscaling env, steps/s", [steps_per_second("autoscaling.json", s) for s in range(args.repeats)], "{:.0f}"),
        ("local platform, advance overrun (s)", [local_overrun(s) for s in range(args.repeats)], "{:.3f}"),
    ]
    print("| measure | median | min | max |")
    print("| --- | ---: | ---: | ---: |")
    for name, values, fmt in rows:
        print(f"| {name} | {fmt.format(statistics.median(values))} | {fmt.format(min(values))} | {fmt.format(max(values))} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
