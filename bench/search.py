"""How much of the achievable improvement each search finds, at the budgets
users give (20, 40, 100 evaluations), on the noisy response surfaces of
bench/surfaces.py.

Every cli-ai method runs the real tuning path (`tuning.prepare` + `execute`:
the Guard, the budget with its baseline runs and re-measurements, the run
directory) on a `command`-target spec whose benchmark is the surface program,
one process per evaluation (`--mode command`, the default), or the same
function called in-process (`--mode inprocess`, faster, same numbers: the
noise of the n-th evaluation is the same either way). Optuna's TPE and GP
samplers run directly, as a person would write them in ten lines
(`study.optimize`, a crash raises and the trial fails).

Score of a run: the fraction of the achievable improvement its chosen
configuration reaches, judged on the noise-free function from the defaults:
(f(best) - f(default)) / (f(optimum) - f(default)). Per surface the mean over
seeds; the table shows the median over surfaces.

    python bench/search.py --out search.json    # the whole table (hours on 2 cores: most of it the direct GP)
    python bench/search.py --mode inprocess --seeds 2 --methods auto random --budgets 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Mapping

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from surfaces import SURFACES, Crash, Surface, noisy  # noqa: E402

CLI_METHODS = ("auto", "random", "ppo", "ddpg", "td3", "sac", "per-ddpg")
DIRECT_METHODS = ("optuna-tpe", "optuna-gp")
METHODS = CLI_METHODS + DIRECT_METHODS


# --------------------------------------------------------------------------- the optimum


def _sample(knob: Mapping[str, Any], rng: random.Random) -> Any:
    t = knob["type"]
    if t == "bool":
        return rng.random() < 0.5
    if t == "enum":
        return rng.choice(knob["values"])
    if t == "vector":
        out = []
        for el in knob["elements"]:
            out.append(el["min"] if el["min"] == el["max"] else _draw(el, rng, integer=True))
        return tuple(out)
    return _draw(knob, rng, integer=t == "int")


def _draw(k: Mapping[str, Any], rng: random.Random, *, integer: bool) -> Any:
    lo, hi = k["min"], k["max"]
    if k.get("scale") == "log":
        x = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    else:
        x = rng.uniform(lo, hi)
    return min(max(int(round(x)), lo), hi) if integer else x


def _grid(knob: Mapping[str, Any], n: int = 201) -> list[Any]:
    t = knob["type"]
    if t == "bool":
        return [False, True]
    if t == "enum":
        return list(knob["values"])
    lo, hi = knob["min"], knob["max"]
    pts = []
    for i in range(n):
        u = i / (n - 1)
        x = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if knob.get("scale") == "log" else lo + u * (hi - lo)
        pts.append(int(round(x)) if t == "int" else x)
    return sorted(set(pts))


def safe_f(surface: Surface, values: Mapping[str, Any]) -> float:
    try:
        return surface.f(values)
    except Crash:
        return -math.inf


def optimum(surface: Surface, samples: int = 40000, seed: int = 0) -> float:
    """The best noise-free value: random samples, then coordinate sweeps."""
    rng = random.Random(seed)
    best_v, best = None, -math.inf
    for _ in range(samples):
        v = {k["param"]: _sample(k, rng) for k in surface.knobs}
        y = safe_f(surface, v)
        if y > best:
            best_v, best = v, y
    for _ in range(6):
        for knob in surface.knobs:
            name = knob["param"]
            if knob["type"] == "vector":
                for j, el in enumerate(knob["elements"]):
                    if el["min"] == el["max"]:
                        continue
                    for x in _grid({"type": "int", **el}):
                        vec = list(best_v[name])
                        vec[j] = x
                        cand = {**best_v, name: tuple(vec)}
                        y = safe_f(surface, cand)
                        if y > best:
                            best_v, best = cand, y
                continue
            for x in _grid(knob):
                cand = {**best_v, name: x}
                y = safe_f(surface, cand)
                if y > best:
                    best_v, best = cand, y
    return best


def score(surface: Surface, values: Mapping[str, Any], f_opt: float) -> float:
    f0 = surface.f(surface.defaults)
    return (safe_f(surface, values) - f0) / (f_opt - f0)


# --------------------------------------------------------------------------- one run


def spec_for(surface: Surface, state: str, seed: int) -> dict[str, Any]:
    args = " ".join(f"{k['param']}={{{k['param']}}}" for k in surface.knobs)
    return {
        "workload_name": f"bench surface {surface.name}",
        "target": "command",
        "reward_metric": "score",
        "metric_direction": "maximize",
        "benchmark_command": f"{sys.executable} -I {HERE / 'surfaces.py'} {surface.name} {state} {seed} {args}",
        "action_space": [dict(k) for k in surface.knobs],
        "state_space": [{"metric": "cpu_utilization"}],
        # Crashes are part of the surface: do not stop a run at the third in a row.
        "safety": {"max_consecutive_failures": 100},
    }


class InProcess:
    """The surface as a Python evaluator, counting evaluations like the program."""

    def __init__(self, surface: Surface, seed: int):
        self.surface, self.seed, self.index = surface, seed, 0

    def measure(self, values: Mapping[str, Any]) -> float:
        i = self.index
        self.index += 1
        return noisy(self.surface, values, self.seed, i)

    def evaluator(self):
        from cli_ai.errors import BenchmarkError
        from cli_ai.tactician.envs.knob_env import Evaluation

        def evaluate(values):
            started = time.perf_counter()
            try:
                metric = self.measure(values)
            except Crash as exc:
                raise BenchmarkError(f"the benchmark exited with status 1: {exc}") from None
            return Evaluation(metric=metric, metrics={"score": metric}, duration_s=time.perf_counter() - started)

        return evaluate


def run_cli_ai(method: str, surface: Surface, budget: int, seed: int, mode: str) -> dict[str, Any]:
    from cli_ai import tuning
    from cli_ai.spec import spec_from_dict

    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "evaluations")
        spec = spec_from_dict(spec_for(surface, state, seed))
        opts = tuning.TuneOptions(algorithm=method, budget=budget, seed=seed, output_dir=os.path.join(tmp, "runs"),
                                  yes=True, verify=0)
        started = time.perf_counter()
        run = tuning.prepare(spec, opts)
        evaluate = InProcess(surface, seed).evaluator() if mode == "inprocess" else None
        result = tuning.execute(run, opts, evaluate=evaluate)
        wall = time.perf_counter() - started
    best = {k: tuple(v) if isinstance(v, list) else v for k, v in result.best_config.items()}
    return {"best": best, "wall_s": wall, "evaluations": result.evaluations, "failed": result.failed_steps,
            "used": (result.extra.get("search") or {}).get("used", method)}


def _suggest(trial, knob: Mapping[str, Any]) -> Any:
    name, t = knob["param"], knob["type"]
    if t == "int":
        return trial.suggest_int(name, knob["min"], knob["max"], log=knob.get("scale") == "log")
    if t == "float":
        return trial.suggest_float(name, knob["min"], knob["max"], log=knob.get("scale") == "log")
    if t == "bool":
        return trial.suggest_categorical(name, [False, True])
    if t == "enum":
        return trial.suggest_categorical(name, list(knob["values"]))
    out = []
    for j, el in enumerate(knob["elements"]):
        out.append(el["min"] if el["min"] == el["max"] else
                   trial.suggest_int(f"{name}[{j}]", el["min"], el["max"], log=el.get("scale") == "log"))
    return tuple(out)


def run_direct(method: str, surface: Surface, budget: int, seed: int, mode: str) -> dict[str, Any]:
    """Optuna as a person would run it directly: defaults, crashes fail the trial."""
    import subprocess
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    sampler = optuna.samplers.TPESampler(seed=seed) if method == "optuna-tpe" else optuna.samplers.GPSampler(seed=seed)
    inproc = InProcess(surface, seed)
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "evaluations")
        spec = spec_for(surface, state, seed)

        def measure(values):
            if mode == "inprocess":
                return inproc.measure(values)
            argv = spec["benchmark_command"].split()[:6] + [f"{k}={_text(v)}" for k, v in values.items()]
            out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise RuntimeError(out.stderr.strip())
            return float(out.stdout.split(":")[1])

        def objective(trial):
            values = {k["param"]: _suggest(trial, k) for k in surface.knobs}
            trial.set_user_attr("values", {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()})
            try:
                return measure(values)
            except Crash as exc:
                raise RuntimeError(str(exc)) from None

        started = time.perf_counter()
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(objective, n_trials=budget, catch=(RuntimeError,))
        wall = time.perf_counter() - started
    try:
        raw = study.best_trial.user_attrs["values"]
        best = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    except ValueError:  # every trial failed
        best = surface.defaults
    failed = sum(1 for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    return {"best": best, "wall_s": wall, "evaluations": budget, "failed": failed, "used": method}


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return " ".join(map(str, v))
    return repr(v) if isinstance(v, float) else str(v)


def one(task: tuple[str, str, int, int, str, float]) -> dict[str, Any]:
    method, name, budget, seed, mode, f_opt = task
    os.environ.setdefault("CLI_AI_TORCH_THREADS", "1")
    surface = SURFACES[name]
    runner = run_direct if method in DIRECT_METHODS else run_cli_ai
    out = runner(method, surface, budget, seed, mode)
    out.update(method=method, surface=name, budget=budget, seed=seed, score=score(surface, out["best"], f_opt))
    out["best"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["best"].items()}
    return out


# --------------------------------------------------------------------------- the table


def summarize(rows: list[dict[str, Any]], methods, budgets, surfaces) -> str:
    def cell(method, budget, surface=None):
        pick = [r for r in rows if r["method"] == method and r["budget"] == budget
                and (surface is None or r["surface"] == surface)]
        return pick

    lines = ["| method | " + " | ".join(f"{b}" for b in budgets) + " | wall s/run (" + "/".join(map(str, budgets)) + ") |",
             "| --- | " + " | ".join("---:" for _ in budgets) + " | ---: |"]
    for m in methods:
        cells, walls = [], []
        for b in budgets:
            per_surface = []
            for s in surfaces:
                scores = [r["score"] for r in cell(m, b, s)]
                if scores:
                    per_surface.append(statistics.fmean(scores))
            cells.append(f"{100 * statistics.median(per_surface):.0f} %" if per_surface else "")
            w = [r["wall_s"] for r in cell(m, b)]
            walls.append(f"{statistics.fmean(w):.1f}" if w else "-")
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {'/'.join(walls)} |")
    lines.append("")
    lines.append("Per surface (mean over seeds), " + ", ".join(f"budget {b}" for b in budgets) + ":")
    lines.append("")
    lines.append("| method | " + " | ".join(surfaces) + " |")
    lines.append("| --- | " + " | ".join("---" for _ in surfaces) + " |")
    for m in methods:
        parts = []
        for s in surfaces:
            vals = []
            for b in budgets:
                scores = [r["score"] for r in cell(m, b, s)]
                vals.append(f"{100 * statistics.fmean(scores):.0f}" if scores else "-")
            parts.append("/".join(vals))
        lines.append(f"| {m} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--surfaces", nargs="+", default=list(SURFACES), choices=list(SURFACES))
    ap.add_argument("--budgets", nargs="+", type=int, default=[20, 40, 100])
    ap.add_argument("--seeds", type=int, default=5, help="seeds 1..N per method, surface and budget")
    ap.add_argument("--mode", choices=("command", "inprocess"), default="command")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (one process each)")
    ap.add_argument("--out", type=Path, default=None, help="write every run as JSON here")
    ap.add_argument("--reuse", type=Path, nargs="*", default=[],
                    help="earlier --out files: their runs of the directly-run Optuna samplers (which do not depend "
                         "on cli-ai's code) are taken instead of being run again")
    ap.add_argument("--resume", action="store_true",
                    help="continue an interrupted run: take every run already in --out (same mode) and do the rest")
    args = ap.parse_args(argv)
    # One thread per run (torch reads this at import): two runs share two cores.
    os.environ["OMP_NUM_THREADS"] = "1"

    optima = {name: optimum(SURFACES[name]) for name in args.surfaces}
    tasks = [(m, s, b, seed, args.mode, optima[s]) for b in args.budgets for s in args.surfaces
             for seed in range(1, args.seeds + 1) for m in args.methods]
    # Budgets in the order given (the first ones' table fills first), and the
    # slow methods first within a budget, so the pool ends together.
    tasks.sort(key=lambda t: (args.budgets.index(t[2]), t[0] not in ("auto", "optuna-gp")))
    started = time.perf_counter()
    reused = {}
    for path, methods in [(p, DIRECT_METHODS) for p in args.reuse] + ([(args.out, METHODS)] if args.resume else []):
        if path is None or not path.exists():
            continue
        earlier = json.loads(path.read_text())
        for row in earlier["rows"]:
            if row["method"] in methods and earlier.get("mode") == args.mode:
                reused[(row["method"], row["surface"], row["budget"], row["seed"])] = row
    rows = [reused[t[:4]] for t in tasks if t[:4] in reused]
    tasks = [t for t in tasks if t[:4] not in reused]

    def save() -> None:
        # After every run, so an interrupted table can be resumed (--resume).
        if args.out:
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps({"optima": optima, "mode": args.mode, "rows": rows}, indent=1))
            tmp.replace(args.out)

    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for i, done in enumerate(as_completed([pool.submit(one, t) for t in tasks]), 1):
            rows.append(done.result())
            save()
            if i % 25 == 0 or i == len(tasks):
                print(f"[{i}/{len(tasks)} runs, {time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
    save()
    print(f"mode {args.mode}; {args.seeds} seeds; surfaces {', '.join(args.surfaces)}; "
          f"{time.perf_counter() - started:.0f} s in all\n")
    print(summarize(rows, args.methods, sorted(args.budgets), args.surfaces))
    return 0


if __name__ == "__main__":
    sys.exit(main())
