"""From text or a dict to a `TuningSpec`: strict JSON (no duplicate keys, no
NaN), validation, then the default-filled dataclasses."""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

from cli_ai.errors import SpecError
from cli_ai.spec.model import (
    DEFAULT_STATE_SPACE, DEFAULT_TRAINING, SPEC_SHAPES, BenchmarkSpec, KnobSpec, RewardConfig, SafetyConfig, StateMetric,
    TrainingConfig, TuningSpec, VectorElement,
)
from cli_ai.spec.validate import validation_problems


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number; write a finite number")


def _pairs_without_duplicates(pairs):
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r} in the same object")
        seen[key] = value
    return seen


def parse_json_text(text: str, source: str = "<spec>") -> Any:
    """Strict JSON: NaN/Infinity and duplicate keys are errors with line and column."""
    try:
        return json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_pairs_without_duplicates
        )
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"{source}: line {exc.lineno}, column {exc.colno}: {exc.msg}; fix the JSON syntax there"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise SpecError(f"{source}: {exc}") from None


def load_spec(path: str | Path) -> TuningSpec:
    """Read, parse and validate a spec file."""
    from cli_ai.core.files import read_untrusted_text
    from cli_ai.errors import BadInputError

    p = Path(path)
    try:
        # Not a FIFO, a device, a directory or over 10 MB (one line, exit 2).
        text = read_untrusted_text(p, "tuning spec (`cli-ai examples` lists ready ones)")
    except BadInputError as exc:
        raise SpecError(str(exc)) from None
    data = parse_json_text(text, str(p))
    return spec_from_dict(data, source=str(p))


def spec_from_dict(data: Any, *, source: str | None = None) -> TuningSpec:
    """Validate a decoded spec and build the typed view, defaults filled."""
    problems = validation_problems(data)
    if problems:
        where = f"{source}: " if source else ""
        raise SpecError(
            f"{where}{len(problems)} problem(s) in the tuning spec",
            problems=[f"{where}{p}" for p in problems],
        )
    return _build(copy.deepcopy(data), source)


def _num(x: Any) -> Any:
    return int(x) if isinstance(x, float) and x.is_integer() else x


def _build_knob(k: dict[str, Any]) -> KnobSpec:
    kind = k.get("type", "int")
    lo, hi = k.get("min"), k.get("max")
    if kind == "int":
        lo, hi = int(lo), int(hi)
    elif kind == "float":
        lo, hi = float(lo), float(hi)
    else:
        lo = hi = None
    elements = None
    if kind == "vector":
        elements = tuple(VectorElement(e["min"], e["max"], e.get("scale", "linear")) for e in k["elements"])
    default = k.get("default")
    if default is not None:
        if kind == "int":
            default = int(default)
        elif kind == "bool":
            default = bool(default)
        elif kind == "vector":
            default = tuple(int(x) for x in default)
    return KnobSpec(
        param=k["param"],
        type=kind,
        min=lo,
        max=hi,
        values=tuple(k["values"]) if kind == "enum" else None,
        scale=k.get("scale", "linear"),
        default=default,
        elements=elements,
        description=k.get("description"),
    )


def strip_trailing_redirect(command: str) -> str:
    """Seed 004 ends commands with `2>&1`; stderr is merged anyway, so drop it."""
    return re.sub(r"\s*2>&1\s*$", "", command)


def runner_for_command(command: str) -> str:
    """Infer the parser family from the program name of a command line."""
    try:
        argv = shlex.split(strip_trailing_redirect(command))
    except ValueError:
        return "command"
    if not argv:
        return "command"
    prog = Path(argv[0]).name
    return prog if prog in ("pgbench", "wrk", "sysbench", "redis-benchmark", "fio") else "command"


def _build(data: dict[str, Any], source: str | None) -> TuningSpec:
    tc_raw = data.get("training_config", {})
    bench_raw = data.get("benchmark", {})
    training = TrainingConfig(
        **{**DEFAULT_TRAINING, **{k: _num(v) if k not in ("learning_rate", "gamma", "tau") else v for k, v in tc_raw.items()}},
        explicit=frozenset(tc_raw),
    )
    benchmark = None
    if "benchmark_command" in data or bench_raw:
        timeout = bench_raw.get("timeout_s", training.benchmark_timeout)
        command = data.get("benchmark_command")
        runner = bench_raw.get("runner") or (runner_for_command(command) if command else "command")
        benchmark = BenchmarkSpec(
            runner=runner,
            command=command,
            args=tuple(bench_raw["args"]) if "args" in bench_raw else None,
            timeout_s=float(timeout),
            repeats=bench_raw.get("repeats", 1),
            warmup_runs=bench_raw.get("warmup_runs", 0),
        )
    reward_raw = dict(data.get("reward", {}))
    reward = RewardConfig(
        mode=reward_raw.pop("mode", "weighted"),
        performance_weight=reward_raw.pop("performance_weight", 0.5),
        stability_weight=reward_raw.pop("stability_weight", 0.5),
        params=reward_raw,
    )
    safety_raw = data.get("safety", {})
    safety = SafetyConfig(
        max_consecutive_failures=safety_raw.get("max_consecutive_failures", 3),
        failure_penalty=safety_raw.get("failure_penalty", -1.0),
    )
    state = tuple(StateMetric(s["metric"], s.get("source")) for s in data.get("state_space", ()))
    if not state:
        state = tuple(StateMetric(m, s) for m, s in DEFAULT_STATE_SPACE)
    target = data.get("target", "sysctl")
    return TuningSpec(
        workload_name=data["workload_name"],
        action_space=tuple(_build_knob(k) for k in data["action_space"]),
        target=target,
        reward_metric=data.get("reward_metric"),
        metric_direction=data.get("metric_direction", "maximize"),
        benchmark=benchmark,
        state_space=state,
        training_config=training,
        reward=reward,
        safety=safety,
        target_config=dict(data.get(target, {})) if SPEC_SHAPES[target].block else {},
        description=data.get("description"),
        raw=data,
        source=source,
    )
