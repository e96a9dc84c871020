"""A result file is untrusted input: checked like a spec before apply or export.

`result.json` is written by cli-ai, but `cli-ai apply` and `cli-ai export`
take any path, and what they read ends up in /proc/sys, in /etc/sysctl.d, in
a TuneD profile or in a shell script. So every field they use is checked for
its JSON type, the texts they print or write for control characters (a
newline in `workload` would start a new line in the sysctl.d file), and
best_config for its shape; the values themselves are then checked against the
target's catalogue by `Target.result_values`. Each problem is one line naming
the field (BadInputError, exit 2).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from cli_ai.errors import BadInputError
from cli_ai.spec.validate import json_type_name
from cli_ai.text import has_controls

#: Texts of a result that reach a file or the terminal, and their longest length.
TEXT_FIELDS = {"workload": 200, "target": 40, "metric": 120, "verdict": 40}
NUMBER_FIELDS = ("baseline", "best", "improvement")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def text_problem(value: Any, limit: int) -> str | None:
    """Why `value` is not a one-line text of at most `limit` characters, or None."""
    if not isinstance(value, str):
        return f"is {json_type_name(value)}, expected a string"
    if len(value) > limit:
        return f"is {len(value)} characters long, over the limit of {limit}"
    if has_controls(value):
        return "holds a control character (a newline, tab or escape code); a result cli-ai writes never does"
    return None


def result_problems(data: Any) -> list[str]:
    """Every problem of a decoded result file, one line each ('field: why')."""
    if not isinstance(data, dict):
        return [f"(result): is {json_type_name(data)}, expected a JSON object with best_config"]
    problems: list[str] = []
    for name, limit in TEXT_FIELDS.items():
        if data.get(name) is not None:
            why = text_problem(data[name], limit)
            if why:
                problems.append(f"{name}: {why}")
    for name in NUMBER_FIELDS:
        value = data.get(name)
        if value is not None and not _is_number(value):
            problems.append(f"{name}: is {json_type_name(value)}, expected a number or null")
    if "simulated" in data and not isinstance(data["simulated"], bool):
        problems.append(f"simulated: is {json_type_name(data['simulated'])}, expected true or false")
    problems += _verification_problems(data.get("verification"))
    if "best_config" not in data:
        problems.append("best_config: missing; a cli-ai result has the best configuration there")
    else:
        problems += config_problems(data["best_config"], "best_config")
    return problems


def _verification_problems(ver: Any) -> list[str]:
    if ver is None:
        return []
    if not isinstance(ver, dict):
        return [f"verification: is {json_type_name(ver)}, expected an object or null"]
    problems = []
    if ver.get("verdict") is not None:
        why = text_problem(ver["verdict"], 40)
        if why:
            problems.append(f"verification.verdict: {why}")
    for name in ("p_value", "improvement", "ci_low", "ci_high"):
        value = ver.get(name)
        if value is not None and not _is_number(value):
            problems.append(f"verification.{name}: is {json_type_name(value)}, expected a number or null")
    return problems


def config_problems(config: Any, where: str) -> list[str]:
    """A configuration's shape: names to numbers, strings or flat lists of
    numbers (what a knob's value can be); the catalogue check comes after."""
    if not isinstance(config, dict):
        return [f"{where}: is {json_type_name(config)}, expected an object of param names to values"]
    problems = []
    for name, value in config.items():
        why = text_problem(name, 200)
        if why:
            problems.append(f"{where}: a param name {why}")
        elif isinstance(value, list):
            if not all(_is_number(x) for x in value):
                problems.append(f"{where}.{name}: a list value must hold numbers only")
        elif isinstance(value, str):
            why = text_problem(value, 200)
            if why:
                problems.append(f"{where}.{name}: {why}")
        elif not _is_number(value) and not isinstance(value, bool):
            problems.append(f"{where}.{name}: is {json_type_name(value)}, expected a number, a string or a list")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where}.{name}: {value} is not a finite number")
    return problems


def check_result(data: Any, source: str) -> Mapping[str, Any]:
    """`data` if it is a well-formed result; else BadInputError naming `source`."""
    problems = result_problems(data)
    if problems:
        raise BadInputError(f"{source}: {problems[0]}", problems=[f"{source}: {p}" for p in problems])
    return data






def read_result(path) -> dict[str, Any]:
    """Read and check a result.json, or the one in a run directory `path`."""
    import json
    from pathlib import Path

    from cli_ai.core.files import read_untrusted_text

    p = Path(path)
    if p.is_dir():
        p = p / "result.json"
    text = read_untrusted_text(p, "result file (a result.json or its run directory)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{p}: not a cli-ai result (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise BadInputError(f"{p}: not a cli-ai result (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer over Python's digit limit
        raise BadInputError(f"{p}: not a cli-ai result ({' '.join(str(exc).split())[:120]})") from None
    check_result(data, str(p))
    data["_path"] = str(p)  # where it was read from; never what the file says
    return data


__all__ = ["check_result", "config_problems", "read_result", "result_problems", "text_problem"]
