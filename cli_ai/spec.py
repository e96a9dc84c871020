"""The tuning spec: the one contract between the strategist and the tactician.

`load_spec(path)` and `spec_from_dict(data)` validate against
`schemas/tuning_spec.schema.json`, then check what a schema cannot say (min
above max, duplicate params, placeholders of the command target, ...), and
return typed, default-filled dataclasses. Every problem is reported at once,
one line each, prefixed with its JSON path (`action_space[1].max: ...`).
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
import shlex
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Literal

from cli_ai.errors import SpecError

KnobType = Literal["int", "float", "bool", "enum", "vector"]
Scale = Literal["linear", "log"]



@dataclass(frozen=True)
class SpecShape:
    """What a target's spec fragment holds, as data (each target's own checks
    live with its Target in cli_ai/targets/)."""

    benchmark: bool = False  # measured by the spec's benchmark: it needs one and a reward_metric
    placeholders: bool = False  # its knobs are {name} placeholders of the benchmark command
    block: bool = False  # its settings sit in a block named after the target


SPEC_SHAPES: dict[str, SpecShape] = {
    "sysctl": SpecShape(benchmark=True),
    "command": SpecShape(benchmark=True, placeholders=True),
    "mosquitto": SpecShape(block=True),
    "autoscaling": SpecShape(block=True),
    "scheduler": SpecShape(block=True),
}
TARGETS = tuple(SPEC_SHAPES)
ALGORITHMS = ("auto", "ppo", "ddpg", "td3", "sac", "per-ddpg", "random", "sarsa", "dqn")
COMMAND_KNOB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

# Seed 004's defaults, used when training_config leaves a field out.
DEFAULT_TRAINING = {
    "total_timesteps": 10000,
    "max_steps_per_episode": 50,
    "learning_rate": 0.0003,
    "n_steps": 2048,
    "batch_size": 64,
    "n_epochs": 10,
    "gamma": 0.99,
    "benchmark_timeout": 120,
    # The target's own default search: model-based for knob targets, PPO for
    # the sequential simulated ones (scheduler, autoscaling).
    "algorithm": "auto",
}
DEFAULT_STATE_SPACE = (
    ("cpu_utilization", "/proc/stat"),
    ("iowait", "/proc/stat"),
    ("memory_used", "/proc/meminfo"),
    ("memory_pressure", "/proc/pressure/memory"),
    ("load_average", "/proc/loadavg"),
    ("context_switches", "/proc/stat"),
)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class VectorElement:
    """One field of a multi-value sysctl; min == max holds the field fixed."""

    min: int
    max: int
    scale: Scale = "linear"

    @property
    def fixed(self) -> bool:
        return self.min == self.max


@dataclass(frozen=True)
class KnobSpec:
    """One tunable parameter as the spec states it (before catalogue narrowing)."""

    param: str
    type: KnobType = "int"
    min: float | None = None
    max: float | None = None
    values: tuple[Any, ...] | None = None
    scale: Scale = "linear"
    default: Any = None
    elements: tuple[VectorElement, ...] | None = None
    description: str | None = None


@dataclass(frozen=True)
class StateMetric:
    metric: str
    source: str | None = None


@dataclass(frozen=True)
class BenchmarkSpec:
    """How to run the benchmark. `command` is the seed-004 string form; `args`
    the structured argv after the runner's program (the full argv for 'command')."""

    runner: str = "command"
    command: str | None = None
    args: tuple[str, ...] | None = None
    timeout_s: float = 120.0
    repeats: int = 1
    warmup_runs: int = 0


@dataclass(frozen=True)
class TrainingConfig:
    total_timesteps: int = 10000
    max_steps_per_episode: int = 50
    learning_rate: float = 0.0003
    n_steps: int = 2048
    batch_size: int = 64
    n_epochs: int = 10
    gamma: float = 0.99
    benchmark_timeout: float = 120.0
    algorithm: str = "auto"
    preset: str | None = None
    budget: int | None = None
    seed: int | None = None
    tau: float | None = None
    buffer_size: int | None = None
    learning_starts: int | None = None
    explicit: frozenset[str] = frozenset()

    def given(self, name: str) -> bool:
        """Whether the spec set this field itself (as opposed to a default)."""
        return name in self.explicit


@dataclass(frozen=True)
class RewardConfig:
    mode: str = "weighted"
    performance_weight: float = 0.5
    stability_weight: float = 0.5
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SafetyConfig:
    max_consecutive_failures: int = 3
    failure_penalty: float = -1.0


@dataclass(frozen=True)
class TuningSpec:
    workload_name: str
    action_space: tuple[KnobSpec, ...]
    target: str = "sysctl"
    reward_metric: str | None = None
    metric_direction: str = "maximize"
    benchmark: BenchmarkSpec | None = None
    state_space: tuple[StateMetric, ...] = ()
    training_config: TrainingConfig = field(default_factory=TrainingConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    target_config: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    source: str | None = None

    @property
    def params(self) -> list[str]:
        return [k.param for k in self.action_space]

    def with_overrides(
        self,
        *,
        budget: int | None = None,
        algorithm: str | None = None,
        seed: int | None = None,
    ) -> "TuningSpec":
        """The spec with command-line overrides applied, to both the typed view
        and `raw`, so that the saved spec.json reproduces the run."""
        raw = copy.deepcopy(self.raw)
        tc = raw.setdefault("training_config", {})
        changes: dict[str, Any] = {}
        explicit = set(self.training_config.explicit)
        for key, value in (("budget", budget), ("algorithm", algorithm), ("seed", seed)):
            if value is not None:
                tc[key] = value
                changes[key] = value
                explicit.add(key)
        if not changes:
            return self
        if "algorithm" in changes and changes["algorithm"] not in ALGORITHMS:
            raise SpecError(
                f"--algo: {changes['algorithm']!r} is not one of {', '.join(ALGORITHMS)}"
            )
        training = replace(self.training_config, explicit=frozenset(explicit), **changes)
        return replace(self, training_config=training, raw=raw)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)


# --------------------------------------------------------------------------- schema


def schema_path() -> Path:
    """The schema file: inside the installed wheel, or at the repository root."""
    packaged = Path(__file__).resolve().parent / "schemas" / "tuning_spec.schema.json"
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parent.parent / "schemas" / "tuning_spec.schema.json"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(schema_path().read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def format_path(parts: Iterable[Any]) -> str:
    """('action_space', 1, 'max') -> 'action_space[1].max'."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(spec)"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _schema_message(error) -> str:
    """Turn a jsonschema error into one readable line with a fix."""
    path = format_path(error.absolute_path)
    kind = error.validator
    inst = error.instance
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{path}: missing required field {missing!r}"
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extras = [k for k in inst if k not in allowed] if isinstance(inst, dict) else []
        parts = []
        for extra in extras:
            close = difflib.get_close_matches(extra, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"{path}: unknown field {extra!r}{hint}; allowed: {', '.join(allowed)}")
        return "; ".join(parts) or f"{path}: {error.message}"
    if kind == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        if isinstance(inst, str) and wanted in ("number", "integer"):
            return f"{path}: {_short(inst)} is a string; write the {wanted} without quotes"
        return f"{path}: expected {wanted}, got {_json_type(inst)} {_short(inst)}"
    if kind in ("enum", "const"):
        options = error.validator_value if kind == "enum" else [error.validator_value]
        close = difflib.get_close_matches(str(inst), [str(o) for o in options], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{path}: {_short(inst)} is not one of {', '.join(map(str, options))}{hint}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": "at least", "exclusiveMinimum": "above",
                "maximum": "at most", "exclusiveMaximum": "below"}[kind]
        return f"{path}: {_short(inst)} must be {word} {error.validator_value}"
    if kind in ("minItems", "maxItems", "minLength", "maxLength"):
        word = "at least" if kind.startswith("min") else "at most"
        unit = "items" if kind.endswith("Items") else "characters"
        return f"{path}: must have {word} {error.validator_value} {unit}"
    return f"{path}: {error.message}"


# --------------------------------------------------------------------------- parsing


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
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{p}: no such file; give the path of a tuning spec (see examples/)") from None
    except IsADirectoryError:
        raise SpecError(f"{p}: is a directory; give the path of a tuning spec file") from None
    except UnicodeDecodeError:
        raise SpecError(f"{p}: is not UTF-8 text; a tuning spec is a JSON file") from None
    except OSError as exc:
        raise SpecError(f"{p}: cannot be read ({exc.strerror})") from None
    data = parse_json_text(text, str(p))
    return spec_from_dict(data, source=str(p))


def validation_problems(data: Any) -> list[str]:
    """Every schema and semantic problem of a decoded spec, one line each."""
    problems = list(_non_finite(data, []))
    if problems:
        return problems
    if not isinstance(data, dict):
        return [f"(spec): expected a JSON object, got {_json_type(data)}"]
    errors = sorted(_validator().iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    seen: set[str] = set()
    for err in errors:
        line = _schema_message(err)
        if line not in seen:
            seen.add(line)
            problems.append(line)
    if problems:
        return problems
    return _semantic_problems(data)


def _non_finite(value: Any, path: list[Any]):
    if isinstance(value, float) and not math.isfinite(value):
        yield f"{format_path(path)}: {value} is not a finite number"
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _non_finite(v, path + [k])
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _non_finite(v, path + [i])


def _is_whole(x: Any) -> bool:
    return isinstance(x, int) or (isinstance(x, float) and x.is_integer())


def _knob_problems(i: int, knob: dict[str, Any], target: str) -> list[str]:
    p = f"action_space[{i}]"
    kind = knob.get("type", "int")
    out: list[str] = []
    lo, hi = knob.get("min"), knob.get("max")
    if SPEC_SHAPES[target].placeholders and not COMMAND_KNOB_NAME.match(knob["param"]):
        out.append(
            f"{p}.param: {knob['param']!r} is not a valid knob name for the command target; "
            "use letters, digits, '_', '.', '-' and start with a letter or '_'"
        )
    if kind in ("int", "float"):
        if lo > hi:
            out.append(f"{p}.min: {lo} is above max {hi}; swap them")
        elif lo == hi:
            out.append(f"{p}: min equals max ({lo}); give a range to search, or drop the knob")
        if kind == "int":
            for key in ("min", "max"):
                if not _is_whole(knob[key]):
                    out.append(f"{p}.{key}: {knob[key]} is not a whole number; an int knob needs integers")
        if knob.get("scale") == "log" and lo <= 0:
            out.append(f"{p}.scale: log scale needs min > 0 (min is {lo}); use linear or raise min")
    else:
        for key in ("min", "max"):
            if key in knob and not (kind == "bool" and knob[key] in (0, 1)):
                out.append(f"{p}.{key}: not used by a {kind} knob; remove it")
        if knob.get("scale", "linear") != "linear":
            out.append(f"{p}.scale: only int and float knobs have a scale; remove it")
    if kind != "enum" and "values" in knob:
        out.append(f"{p}.values: only enum knobs take values; set type to \"enum\" or remove it")
    if kind != "vector" and "elements" in knob:
        out.append(f"{p}.elements: only vector knobs take elements; set type to \"vector\" or remove it")
    if kind == "enum":
        values = knob["values"]
        if len(values) < 2:
            out.append(f"{p}.values: an enum knob needs at least 2 values to choose from")
        if len(set(map(str, values))) != len(values):
            out.append(f"{p}.values: duplicate values; list each once")
    if kind == "vector":
        elements = knob["elements"]
        for j, el in enumerate(elements):
            if el["min"] > el["max"]:
                out.append(f"{p}.elements[{j}].min: {el['min']} is above max {el['max']}; swap them")
            if el.get("scale") == "log" and el["min"] <= 0:
                out.append(f"{p}.elements[{j}].scale: log scale needs min > 0")
        if all(el["min"] == el["max"] for el in elements):
            out.append(f"{p}.elements: every element is fixed (min == max); let at least one vary")
    if "default" in knob:
        out.extend(_default_problems(p, knob, kind))
    return out


def _default_problems(p: str, knob: dict[str, Any], kind: str) -> list[str]:
    d = knob["default"]
    if kind in ("int", "float"):
        if isinstance(d, bool) or not isinstance(d, (int, float)):
            return [f"{p}.default: expected a number, got {_json_type(d)} {_short(d)}"]
        if not knob["min"] <= d <= knob["max"]:
            return [f"{p}.default: {d} is outside [{knob['min']}, {knob['max']}]"]
        if kind == "int" and not _is_whole(d):
            return [f"{p}.default: {d} is not a whole number"]
    elif kind == "bool":
        if d not in (True, False, 0, 1):
            return [f"{p}.default: expected true or false, got {_short(d)}"]
    elif kind == "enum":
        if d not in knob["values"]:
            return [f"{p}.default: {_short(d)} is not one of the values"]
    elif kind == "vector":
        els = knob["elements"]
        if not (isinstance(d, list) and len(d) == len(els) and all(_is_whole(x) and not isinstance(x, bool) for x in d)):
            return [f"{p}.default: expected a list of {len(els)} integers"]
        for j, (x, el) in enumerate(zip(d, els)):
            if not el["min"] <= x <= el["max"]:
                return [f"{p}.default[{j}]: {x} is outside [{el['min']}, {el['max']}]"]
    return []


def command_placeholders(command: str) -> list[str]:
    return PLACEHOLDER.findall(command)


def _semantic_problems(data: dict[str, Any]) -> list[str]:
    out: list[str] = []
    target = data.get("target", "sysctl")
    seen: dict[str, int] = {}
    for i, knob in enumerate(data["action_space"]):
        name = knob["param"]
        if name in seen:
            out.append(f"action_space[{i}].param: {name!r} already appears at action_space[{seen[name]}]; list each param once")
        else:
            seen[name] = i
        out.extend(_knob_problems(i, knob, target))

    bench = data.get("benchmark", {})
    has_cmd = "benchmark_command" in data
    has_args = "args" in bench
    if has_cmd and has_args:
        out.append("benchmark.args: benchmark_command already gives the command; keep only one of them")
    shape = SPEC_SHAPES[target]
    if shape.benchmark:
        if not has_cmd and not has_args and bench.get("runner") != "tcp-accept":
            out.append("benchmark_command: missing; give the benchmark as benchmark_command or benchmark.args")
        if "reward_metric" not in data:
            out.append("reward_metric: missing required field; name the number in the benchmark output to optimize")
        if has_cmd:
            out.extend(_command_text_problems(data["benchmark_command"]))
    if shape.placeholders:
        text = data.get("benchmark_command") or " ".join(bench.get("args", []))
        names = set(seen)
        used = set(command_placeholders(text))
        for name in sorted(used - names):
            out.append(f"benchmark_command: placeholder {{{name}}} names no knob of action_space; add the knob or remove the placeholder")
        for name in sorted(names - used):
            out.append(f"action_space[{seen[name]}].param: {name!r} never appears as {{{name}}} in the benchmark command; the program would never see it")
    reward = data.get("reward", {})
    if reward.get("mode", "weighted") == "weighted":
        pw = reward.get("performance_weight", 0.5)
        sw = reward.get("stability_weight", 0.5)
        if pw + sw <= 0:
            out.append("reward: performance_weight and stability_weight are both 0; give at least one a positive weight")
    return out


def _command_text_problems(command: str) -> list[str]:
    if "\n" in command or "\x00" in command:
        return ["benchmark_command: contains a newline or NUL character; give one command line"]
    try:
        shlex.split(command)
    except ValueError as exc:
        return [f"benchmark_command: cannot be split into arguments ({exc}); check the quotes"]
    return []


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
