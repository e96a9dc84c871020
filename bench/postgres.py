"""PostgreSQL's defaults against what cli-ai finds at budgets 20 and 40, and
against PGTune's rule-of-thumb settings for the same machine, under the same
write-heavy pgbench (examples/postgres_oltp.json: TPC-B-like, scale 5, 8
clients, 2 threads, 10 s after 2 s of warm-up, on a managed cluster).

1. `cli-ai tune SPEC --yes --budget B --verify 0` for each budget, as a user
   runs it (its own managed cluster, restored and removed at the end); the
   chosen configuration is read from result.json.
2. One fresh managed cluster (same scale) measures every configuration
   `--repeats` times, alternating (round r starts at configuration r mod n,
   so no configuration always runs first or last): `ALTER SYSTEM RESET ALL`,
   the configuration's `ALTER SYSTEM SET`s, a restart (for every
   configuration alike), a CHECKPOINT, then one pgbench measurement.
3. The table: TPS and p95 latency (mean and standard deviation over the
   repeats), the change against the defaults, Welch's p-value.

    python bench/postgres.py --out bench-postgres.json          # about 20 min on 2 cores
    python bench/postgres.py --budgets 20 --repeats 3            # shorter

PGTune (pgtune.leopard.in.ua) for "DB type OLTP, Linux, this machine's
memory, its CPUs, 300 connections (PGTune's OLTP default), SSD", by its
published formulas: shared_buffers = RAM/4, effective_cache_size = RAM*3/4,
maintenance_work_mem = RAM/16 (at most 2GB), checkpoint_completion_target
0.9, wal_buffers = 3% of shared_buffers (at most 16MB), random_page_cost 1.1
and effective_io_concurrency 200 (SSD), work_mem = (RAM - shared_buffers) /
(3 * connections) / 2, min_wal_size 2GB and max_wal_size 8GB (OLTP). Its
max_connections is left at 100 and its parallel-worker settings out: pgbench's
transactions run no parallel plans.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pgtune(memory_mb: int, connections: int = 300) -> dict:
    shared = memory_mb // 4
    return {
        "shared_buffers": shared,
        "effective_cache_size": memory_mb * 3 // 4,
        "maintenance_work_mem": min(memory_mb // 16, 2048),
        "checkpoint_completion_target": 0.9,
        "wal_buffers": min(max(shared * 3 // 100, 1), 16),
        "random_page_cost": 1.1,
        "effective_io_concurrency": 200,
        "work_mem": max(1, (memory_mb - shared) // (3 * connections) // 2),
        "min_wal_size": 2048,
        "max_wal_size": 8192,
    }


def tune(spec: Path, budget: int, seed: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "cli_ai", "tune", str(spec), "--yes", "--budget", str(budget), "--verify", "0",
           "--seed", str(seed), "--output-dir", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"tune --budget {budget} failed ({r.returncode}): {r.stdout[-2000:]}{r.stderr[-2000:]}")
    result = json.loads(next(out.glob("*/result.json")).read_text())
    return {"budget": budget, "seconds": time.monotonic() - started, "best_config": result["best_config"],
            "baseline_config": result["baseline_config"], "estimate": result.get("improvement_estimate"),
            "failed_steps": result.get("failed_steps"), "search": result.get("search")}


def apply(conn, cluster, values: dict) -> None:
    from psycopg import sql

    from cli_ai.targets.postgres.catalog import lookup, sql_text

    conn.execute("ALTER SYSTEM RESET ALL")
    for name, value in values.items():
        conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name),
                                                               sql.Literal(sql_text(lookup(name), value))))
    conn.close()
    cluster.restart()


def measure_all(configs: dict, spec_data: dict, repeats: int) -> dict:
    from cli_ai.targets.postgres.backend import connect
    from cli_ai.targets.postgres.server import ManagedCluster, find_pgbench
    from cli_ai.targets.postgres.settings import PostgresSettings
    from cli_ai.targets.postgres.workload import initialize, measure

    settings = PostgresSettings.from_block(spec_data["postgres"])
    pgbench = find_pgbench()
    cluster = ManagedCluster().start()
    runs = {name: [] for name in configs}
    try:
        info = cluster.conninfo()
        initialize(pgbench, info, settings.scale)
        names = list(configs)
        for r in range(repeats):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                apply(connect(info), cluster, configs[name])
                conn = connect(info)
                conn.execute("CHECKPOINT")
                conn.close()
                metrics, _ = measure(pgbench, info, settings.pgbench)
                runs[name].append({"tps": metrics["tps"], "p95": metrics.get("latency_p95_ms")})
                print(f"round {r + 1} {name}: tps={metrics['tps']:.1f} p95={metrics.get('latency_p95_ms', 0):.2f} ms",
                      flush=True)
    finally:
        cluster.close()
    return runs


def table(runs: dict) -> str:
    from scipy import stats

    base_tps = [x["tps"] for x in runs["defaults"]]
    base_p95 = [x["p95"] for x in runs["defaults"]]
    lines = ["| configuration | TPS (mean ± sd) | vs defaults | Welch p | p95 latency, ms (mean ± sd) | vs defaults |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, rs in runs.items():
        tps, p95 = [x["tps"] for x in rs], [x["p95"] for x in rs]
        d_tps = (statistics.mean(tps) / statistics.mean(base_tps) - 1) * 100
        d_p95 = (statistics.mean(p95) / statistics.mean(base_p95) - 1) * 100
        p = "-" if name == "defaults" else f"{stats.ttest_ind(tps, base_tps, equal_var=False).pvalue:.3g}"
        lines.append(f"| {name} | {statistics.mean(tps):,.0f} ± {statistics.stdev(tps):,.0f} | "
                     f"{'-' if name == 'defaults' else f'{d_tps:+.1f} %'} | {p} | "
                     f"{statistics.mean(p95):.2f} ± {statistics.stdev(p95):.2f} | "
                     f"{'-' if name == 'defaults' else f'{d_p95:+.1f} %'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "examples" / "postgres_oltp.json"))
    ap.add_argument("--budgets", type=int, nargs="+", default=[20, 40])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the measurements here (JSON)")
    args = ap.parse_args()
    from cli_ai.targets.postgres.catalog import machine_memory_mb

    spec = Path(args.spec)
    spec_data = json.loads(spec.read_text())
    found = {}
    with tempfile.TemporaryDirectory(prefix="cli-ai-bench-pg-") as tmp:
        for budget in args.budgets:
            found[budget] = tune(spec, budget, args.seed, Path(tmp) / f"b{budget}")
            print(f"budget {budget}: {found[budget]['seconds']:.0f} s, best {found[budget]['best_config']}",
                  flush=True)
    configs = {"defaults": {}}
    for budget, f in found.items():
        configs[f"cli-ai, budget {budget}"] = f["best_config"]
    configs["PGTune (OLTP)"] = pgtune(machine_memory_mb())
    runs = measure_all(configs, spec_data, args.repeats)
    text = table(runs)
    print(text)
    for name, values in configs.items():
        print(f"{name}: {json.dumps(values)}")
    if args.out:
        Path(args.out).write_text(json.dumps({"configs": configs, "runs": runs, "tunes": found,
                                              "memory_mb": machine_memory_mb(), "cpus": os.cpu_count(),
                                              "table": text}, indent=2))


if __name__ == "__main__":
    main()
