"""What a run produced and where it is kept.

`TuningResult` is the summary (also the `--json` output and `result.json`);
`RunDirectory` is `runs/<UTC stamp>/` with `spec.json`, `trajectory.csv` (one
row per evaluation, written as they happen so a crash keeps them),
`result.json`, the trained model and `plots/progress.png`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from cli_ai.events import Event
from cli_ai.core.backend import Value, format_sysctl_value, to_json_value
from cli_ai.core.files import read_untrusted_text, write_atomic
from cli_ai.core.records import StepRecord
from cli_ai.core.secrets import scrub_data
from cli_ai.text import csv_safe

RESULT_VERSION = 1


def sysctl_commands(config: Mapping[str, Value]) -> list[str]:
    lines = []
    for name, value in config.items():
        text = format_sysctl_value(value)
        shown = f'"{text.replace(chr(9), " ")}"' if isinstance(value, (tuple, list)) else text
        lines.append(f"sudo sysctl -w {name}={shown}")
    return lines


def json_safe(value: Any) -> Any:
    """`value` as plain JSON data: numpy scalars as numbers, paths as text,
    NaN and infinities as null (JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write JSON atomically (a private temp file renamed over the target), so
    a crash never leaves half a file; secrets (the API key, credentials in a
    URL) are scrubbed from it whatever an endpoint echoed back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(scrub_data(json_safe(payload)), indent=2, default=str) + "\n")
    return path


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """A JSON file cli-ai wrote earlier, read as untrusted: no FIFO, device or
    huge file, and a one-line error for anything that is not JSON."""
    from cli_ai.errors import BadInputError

    text = read_untrusted_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None
    except (RecursionError, ValueError) as exc:
        raise BadInputError(f"{path}: not valid JSON ({type(exc).__name__})") from None


def unique_dir(parent: str | os.PathLike, name: str, *, separator: str = "-") -> Path:
    """parent/name, created; parent/name<sep>1, <sep>2, ... when it exists
    already (two runs in the same instant): a run never writes into another's."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    candidate, n = parent / name, 0
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = parent / f"{name}{separator}{n}"


@dataclass
class TuningResult:
    workload: str
    target: str
    metric: str | None
    direction: str
    algorithm: str
    budget: int
    simulated: bool
    baseline_config: dict[str, Value]
    best_config: dict[str, Value]
    baseline: float | None
    best: float | None
    improvement: float | None
    evaluations: int
    failed_steps: int
    stopped_reason: str
    success: bool
    duration_s: float
    run_dir: str | None = None
    model_path: str | None = None
    seed: int | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # Whether the target's values can be applied (`Target.applicable`): the
    # ready-to-paste commands are written only then, for a gain verified better.
    applicable: bool = False

    def to_json(self) -> dict[str, Any]:
        def clean(x):
            return None if isinstance(x, float) and not math.isfinite(x) else x

        out = {
            "version": RESULT_VERSION,
            "success": self.success,
            "workload": self.workload,
            "target": self.target,
            "metric": self.metric,
            "direction": self.direction,
            "algorithm": self.algorithm,
            "budget": self.budget,
            "seed": self.seed,
            "simulated": self.simulated,
            "baseline": clean(self.baseline),
            "best": clean(self.best),
            "improvement": clean(self.improvement),
            "baseline_config": {k: to_json_value(v) for k, v in self.baseline_config.items()},
            "best_config": {k: to_json_value(v) for k, v in self.best_config.items()},
            "evaluations": self.evaluations,
            "failed_steps": self.failed_steps,
            "stopped_reason": self.stopped_reason,
            "duration_s": round(self.duration_s, 3),
            "run_dir": self.run_dir,
            "model_path": self.model_path,
            "notes": self.notes,
        }
        out.update(self.extra)
        if self.applicable and out.get("verdict") == "better":
            # Ready-to-paste commands only for a gain verified better.
            out["sysctl_commands"] = sysctl_commands(self.best_config)
        return out


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")[:-4] + "Z"


def _flat(prefix: str, d: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, (tuple, list)):
            v = " ".join(map(str, v))
        elif isinstance(v, bool):
            v = int(v)
        elif isinstance(v, dict):
            continue
        out[f"{prefix}{k}"] = v
    return out


def trajectory_row(rec: StepRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "step": rec.index,
        "elapsed_s": round(rec.elapsed_s, 4),
        "duration_s": round(rec.duration_s, 4),
        "failed": int(rec.failed),
        "metric": rec.metric,
        "reward": rec.reward,
        "is_best": int(rec.is_best),
        "improvement_pct": rec.improvement_pct,
        "phase": rec.phase,
    }
    row.update(_flat("", rec.values))
    row.update(_flat("metric.", rec.metrics))
    row.update(_flat("", rec.components))
    row.update(_flat("system.", rec.system))
    row["error"] = rec.error or ""
    return csv_safe(row)


class RunDirectory:
    """A run's own directory and its files; also an event sink that writes
    steps as they come. Knob runs and `cli-ai tune` policy runs use
    runs/<UTC stamp>/ (spec.json, trajectory.csv, result.json, the model,
    plots/); the autoscaling toolkit's seed-002 layout is a subclass."""

    # The suffix that tells apart two runs started in the same instant.
    separator = "-"
    # Sub-directories created with the run directory.
    subdirs: tuple[str, ...] = ()

    def __init__(self, base: str | os.PathLike | None = None, stamp: str | None = None):
        self.path = unique_dir(Path(base) if base else Path("runs"), stamp or utc_stamp(), separator=self.separator)
        for sub in self.subdirs:
            (self.path / sub).mkdir()
        self.trajectory = self.path / "trajectory.csv"
        self._fields: list[str] = []
        self._fh = None
        self._writer = None
        self._unflushed = 0
        # Knob runs flush every row (a crash keeps every evaluation); simulated
        # targets take thousands of steps per second and flush in batches.
        self.flush_every = 1
        # Target-specific columns for each evaluation (the broker's seed-000 columns).
        self.extra_columns = None

    def write_json(self, name: str, payload: Any) -> Path:
        return write_json(self.path / name, payload)

    def add_row(self, row: Mapping[str, Any]) -> None:
        new = [k for k in row if k not in self._fields]
        if new or self._fh is None:
            # A column appeared (first row, or a metric first seen now): rewrite
            # the file with the wider header (rare: rows are not kept in memory).
            self.close()
            old_rows = []
            if self.trajectory.exists():
                with open(self.trajectory, newline="") as fh:
                    old_rows = list(csv.DictReader(fh))
            self._fields.extend(new)
            self._fh = open(self.trajectory, "w", newline="")
            self._writer = csv.DictWriter(self._fh, fieldnames=self._fields)
            self._writer.writeheader()
            self._writer.writerows(old_rows)
            self._writer.writerow(row)
        else:
            self._writer.writerow(row)
        self._unflushed += 1
        if self._unflushed >= self.flush_every:
            self._fh.flush()
            self._unflushed = 0

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __call__(self, event: Event) -> None:
        if event.kind in ("baseline", "step"):
            for record in event.data.get("runs") or [event.data["record"]]:
                row = trajectory_row(record)
                if self.extra_columns is not None:
                    row.update({k: v for k, v in self.extra_columns(record).items() if k not in row})
                self.add_row(row)
        elif event.kind == "sim_step":
            self.add_row(event.data["row"])


def plot_progress(records: list[StepRecord], path: Path, *, metric: str, direction: str, simulated: bool,
                  baseline: float | None = None, chosen: list[StepRecord] | None = None) -> Path | None:
    """The metric per evaluation and the best so far, with the baseline (the
    mean of its runs) and the measurements of the chosen configuration marked."""
    points = [(r.index, r.metric) for r in records if r.metric is not None and math.isfinite(r.metric) and not r.failed]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys = zip(*points)
    best, best_so_far = None, []
    for y in ys:
        best = y if best is None or (y < best if direction == "minimize" else y > best) else best
        best_so_far.append(best)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(xs, ys, "o-", color="#4c72b0", alpha=0.6, label=metric)
    ax.plot(xs, best_so_far, "-", color="#dd8452", linewidth=2, label="best single measurement so far")
    ax.axhline(baseline if baseline is not None else ys[0], color="grey", linestyle="--", linewidth=1,
               label="baseline (mean of its runs)")
    if chosen:
        ax.plot([r.index for r in chosen], [r.metric for r in chosen], "*", color="#55a868", markersize=14,
                label="chosen configuration (its measurements)")
    failed = [r.index for r in records if r.failed]
    for i, f in enumerate(failed):
        ax.axvline(f, color="#c44e52", alpha=0.3, linewidth=1, label="failed step" if i == 0 else None)
    ax.set_xlabel("evaluation (the first are the baseline runs)")
    ax.set_ylabel(f"{metric} ({'lower' if direction == 'minimize' else 'higher'} is better)")
    ax.set_title("tuning progress" + (" (SIMULATED dry run)" if simulated else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def load_result(path: str | os.PathLike) -> dict[str, Any]:
    """Read a result.json (or a run directory holding one) for apply/export;
    checked as untrusted input (`cli_ai.result_check`)."""
    from cli_ai.result_check import read_result

    return read_result(path)


def now() -> float:
    return time.monotonic()
