"""Prioritized replay throughput: cli-ai's numpy buffer against cpprb and tianshou.

One operation = ``sample(256)`` (transitions, importance weights and indices)
followed by ``update_priorities`` of those 256 indices, the inner step of every
PER learner. Each buffer is filled to capacity with 8-dim observations and
2-dim continuous actions, its priorities set to random values (a flat tree
would flatter every implementation), then timed for ``--iters`` operations,
``--repeats`` times; the table shows the median repeat and the best one.

cpprb and tianshou are benchmark-only dependencies
(``.venv/bin/pip install cpprb tianshou``); a library that cannot be imported
or fails is reported as such in the table and the run goes on.

Usage: .venv/bin/python bench/replay.py [--capacities 1e4,1e5,1e6] [--batch 256]
       [--iters 300] [--repeats 5] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Callable

import numpy as np

OBS_DIM, ACT_DIM = 8, 2
ALPHA, BETA = 0.6, 0.4


def make_data(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "obs": rng.standard_normal((n, OBS_DIM)).astype(np.float32),
        "act": rng.uniform(-1, 1, (n, ACT_DIM)).astype(np.float32),
        "rew": rng.standard_normal(n).astype(np.float32),
        "next_obs": rng.standard_normal((n, OBS_DIM)).astype(np.float32),
        "done": (rng.random(n) < 0.01).astype(np.float32),
    }


# Each setup returns one operation: sample a batch, then update its priorities.
Setup = Callable[[int, int, dict, np.ndarray], Callable[[], None]]


def setup_cli_ai(capacity: int, batch: int, data: dict, prios: np.ndarray) -> Callable[[], None]:
    from cli_ai.tactician.replay import PrioritizedReplayBuffer

    buf = PrioritizedReplayBuffer(capacity, alpha=ALPHA, beta_start=BETA, seed=0)
    buf.extend(data["obs"], data["act"], data["rew"], data["next_obs"], data["done"])
    buf.update_priorities(np.arange(capacity), prios)
    new = np.random.default_rng(1).random(batch)

    def op() -> None:
        *_, weights, indices = buf.sample(batch)
        buf.update_priorities(indices, new)

    return op


def setup_cpprb(capacity: int, batch: int, data: dict, prios: np.ndarray) -> Callable[[], None]:
    import cpprb

    env_dict = {"obs": {"shape": OBS_DIM}, "act": {"shape": ACT_DIM}, "rew": {}, "next_obs": {"shape": OBS_DIM}, "done": {}}
    buf = cpprb.PrioritizedReplayBuffer(capacity, env_dict, alpha=ALPHA)
    buf.add(**data)
    buf.update_priorities(np.arange(capacity), prios)
    new = np.random.default_rng(1).random(batch)

    def op() -> None:
        sample = buf.sample(batch, beta=BETA)
        buf.update_priorities(sample["indexes"], new)

    return op


def setup_tianshou(capacity: int, batch: int, data: dict, prios: np.ndarray) -> Callable[[], None]:
    from tianshou.data import Batch, PrioritizedReplayBuffer

    buf = PrioritizedReplayBuffer(capacity, alpha=ALPHA, beta=BETA)
    done = data["done"].astype(bool)
    # Filling a million transitions through add() one at a time takes minutes;
    # set_batch installs a full buffer at once (the timed part is unaffected).
    buf.set_batch(
        Batch(
            obs=data["obs"], act=data["act"], rew=data["rew"], terminated=done,
            truncated=np.zeros(capacity, dtype=bool), done=done, obs_next=data["next_obs"], info=Batch(),
        )
    )
    buf._size, buf._index = capacity, 0
    buf.update_weight(np.arange(capacity), prios)
    new = np.random.default_rng(1).random(batch)

    def op() -> None:
        _, indices = buf.sample(batch)
        buf.update_weight(indices, new)

    return op


LIBRARIES: dict[str, Setup] = {"cli-ai (numpy)": setup_cli_ai, "cpprb": setup_cpprb, "tianshou": setup_tianshou}


def version_of(name: str) -> str:
    try:
        from importlib.metadata import version

        return version({"cli-ai (numpy)": "numpy"}.get(name, name))
    except Exception:
        return "?"


def time_ops(ops: dict[str, Callable[[], None]], iters: int, repeats: int) -> dict[str, tuple[float, float]]:
    """(median, best) microseconds per operation for each library.

    The libraries take turns, one block of `iters` operations each, `repeats`
    rounds: a change in machine load then hits all of them alike instead of
    whichever happened to run at that moment.
    """
    for op in ops.values():
        for _ in range(max(10, iters // 10)):  # warm-up: caches, numba's JIT, the allocator
            op()
    per_op: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(repeats):
        for name, op in ops.items():
            start = time.perf_counter()
            for _ in range(iters):
                op()
            per_op[name].append((time.perf_counter() - start) / iters * 1e6)
    return {name: (statistics.median(t), min(t)) for name, t in per_op.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacities", default="1e4,1e5,1e6")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    capacities = [int(float(c)) for c in args.capacities.split(",")]

    results: dict[tuple[str, int], str] = {}
    medians: dict[tuple[str, int], float] = {}
    for capacity in capacities:
        rng = np.random.default_rng(0)
        data = make_data(capacity, rng)
        prios = rng.exponential(1.0, capacity) + 1e-3
        ops = {}
        for name, setup in LIBRARIES.items():
            try:
                ops[name] = setup(capacity, args.batch, data, prios)
                ops[name]()  # fail here, not in the timed loop
            except ImportError as e:
                results[name, capacity] = f"not installed ({e.name})"
            except Exception as e:  # report and go on with the others
                results[name, capacity] = f"failed: {type(e).__name__}: {e}"[:60]
                ops.pop(name, None)
        for name, (median, best) in time_ops(ops, args.iters, args.repeats).items():
            medians[name, capacity] = median
            results[name, capacity] = f"{median:8.1f} µs ({best:.1f} best)"
        del ops, data

    # Relative to the fastest library at each capacity.
    for capacity in capacities:
        timed = {n: medians[n, capacity] for n in LIBRARIES if (n, capacity) in medians}
        if timed:
            fastest = min(timed.values())
            for n, m in timed.items():
                results[n, capacity] += f" x{m / fastest:.2f}"

    header = ["capacity", *[f"{n} {version_of(n)}" for n in LIBRARIES]]
    rows = [[f"{c:,}", *[results[n, c] for n in LIBRARIES]] for c in capacities]
    print(
        f"sample({args.batch}) + update_priorities({args.batch}), median of {args.repeats} x {args.iters} ops "
        f"(xN = time relative to the fastest); python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


if __name__ == "__main__":
    main()
