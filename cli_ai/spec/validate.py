"""What makes a spec valid: the JSON Schema (with one-line messages that name
the field) and the checks a schema cannot say (min above max, duplicate
params, the command target's placeholders, ...)."""

from __future__ import annotations

import difflib
import json
import math
import re
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from cli_ai.text import has_controls
from cli_ai.spec.model import BUILTIN_RUNNERS, COMMAND_KNOB_NAME, PLACEHOLDER, SPEC_SHAPES


def schema_path() -> Path:
    """The schema file: inside the installed wheel, or at the repository root."""
    package = Path(__file__).resolve().parent.parent  # cli_ai/
    packaged = package / "schemas" / "tuning_spec.schema.json"
    if packaged.exists():
        return packaged
    return package.parent / "schemas" / "tuning_spec.schema.json"


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


def json_type_name(value: Any) -> str:
    """What a JSON value is, for a one-line error ("a string", "null", ...)."""
    if value is None:
        return "null"
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
        return f"{path}: expected {wanted}, got {json_type_name(inst)} {_short(inst)}"
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


def validation_problems(data: Any) -> list[str]:
    """Every schema and semantic problem of a decoded spec, one line each."""
    problems = list(_non_finite(data, []))
    if problems:
        return problems
    if not isinstance(data, dict):
        return [f"(spec): expected a JSON object, got {json_type_name(data)}"]
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


# C0 controls, DEL and C1: an escape code or a newline in a workload name
# would restyle the terminal or start a new line in a sysctl.d file, a TuneD
# profile or a script. Free text that may run over lines keeps \n and \t.
_CONTROL_IN_PROSE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_PROSE_FIELDS = ("description",)


def _non_finite(value: Any, path: list[Any]):
    """Non-finite numbers and control characters anywhere in the spec, one
    line each. Iterative, so a deeply nested value cannot overflow the stack."""
    stack = [(value, path)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            yield f"{format_path(path)}: {value} is not a finite number"
        elif isinstance(value, str):
            prose = bool(path) and path[-1] in _PROSE_FIELDS
            if _CONTROL_IN_PROSE.search(value) if prose else has_controls(value):
                yield (f"{format_path(path)}: holds a control character (a newline, tab or escape code); "
                       "write it on one line of plain text")
        elif isinstance(value, dict):
            for k, v in reversed(value.items()):
                if has_controls(k):
                    yield f"{format_path(path)}: a key holds a control character; write it as plain text"
                stack.append((v, path + [k]))
        elif isinstance(value, list):
            for i in reversed(range(len(value))):
                stack.append((value[i], path + [i]))


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
            return [f"{p}.default: expected a number, got {json_type_name(d)} {_short(d)}"]
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
        if not has_cmd and not has_args and bench.get("runner") not in BUILTIN_RUNNERS:
            out.append("benchmark_command: missing; give the benchmark as benchmark_command or benchmark.args")
        if bench.get("runner") in BUILTIN_RUNNERS:
            from cli_ai.spec.builtin import builtin_args_problems

            out.extend(builtin_args_problems(bench["runner"], list(bench.get("args", []))))
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
