"""Problems as the model should read them in a repair round.

The checks' lines are written for a person at a terminal, and a few mislead a
model: a range error offers "--clamp" (a flag of validate and tune, not of
plan); `{"type": "int", "elements": [...]}` gets the schema's "missing
required field 'min'" and "elements[0]: expected object", which push it
towards vector syntax instead of saying that `elements` is for vectors only;
the schema's runner list names "command", which a plan may not use. Here
each is replaced by one line that names the real fix. Pure functions.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cli_ai.strategist.answer import strip_think

SCALAR_EXAMPLES = {
    "int": '"min": .., "max": .. (whole numbers)',
    "float": '"min": .., "max": ..',
    "bool": "nothing more (a 0/1 flag)",
    "enum": '"values": [..] (from the catalogue\'s listed values)',
}


def _schema_runners() -> list[str]:
    from cli_ai.spec import schema

    try:
        return list(schema()["$defs"]["benchmark"]["properties"]["runner"]["enum"])
    except (KeyError, TypeError):
        return []


def _example(param: str, kind: str) -> str:
    """A correct entry for `param`, with its safe range when the catalogue has it."""
    from cli_ai.safety.catalog import load_catalog
    from cli_ai.safety.check import fmt_bound

    entry = load_catalog().get(param)
    if entry is not None and entry.type in ("int", "float") and kind in ("int", "float"):
        return (f'{{"param": "{param}", "type": "{entry.type}", "min": {fmt_bound(entry.min)}, '
                f'"max": {fmt_bound(entry.max)}}} (or a narrower range inside it)')
    if entry is not None and entry.type == "vector":
        ranges = ", ".join(f'{{"min": {fmt_bound(e.min)}, "max": {fmt_bound(e.max)}}}' for e in entry.elements or ())
        return f'{{"param": "{param}", "type": "vector", "elements": [{ranges}]}} ({param} is a vector)'
    return f'{{"param": "{param}", "type": "{kind}", {SCALAR_EXAMPLES.get(kind, "")}}}'


def _elements_misuse(data: Any) -> dict[int, str]:
    """action_space index -> the line for an entry that gives `elements` to a non-vector type."""
    out: dict[int, str] = {}
    items = data.get("action_space") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return out
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "elements" not in item or item.get("type") == "vector":
            continue
        param = item.get("param") if isinstance(item.get("param"), str) else "?"
        kind = item.get("type") if isinstance(item.get("type"), str) else "int"
        out[i] = (f'action_space[{i}] ({param}): "elements" is only for type "vector" (params with several '
                  f'fields, such as net.ipv4.tcp_rmem); a {kind} param takes {SCALAR_EXAMPLES.get(kind, "min and max")}'
                  f" without \"elements\", e.g. {_example(param, kind)}")
    return out


def refine_problems(data: Any, problems: list[str]) -> list[str]:
    """`problems` with the misleading lines replaced by ones naming the real fix."""
    from cli_ai.safety.check import without_clamp_hint
    from cli_ai.strategist.policy import RUNNERS

    misuse = _elements_misuse(data)
    schema_runners = ", ".join(_schema_runners())
    out: list[str] = []
    for p in problems:
        m = re.match(r"action_space\[(\d+)\][.:\[]", p)
        if m and int(m.group(1)) in misuse:
            line = misuse[int(m.group(1))]  # every schema line of that entry becomes this one
        else:
            line = without_clamp_hint(p)
            line = re.sub(r",? or (pass|use) --clamp[^;]*", "", line)
            if schema_runners and schema_runners in line:
                line = line.replace(schema_runners, ", ".join(RUNNERS))
        if line not in out:
            out.append(line)
    return out + [line for line in misuse.values() if line not in out]  # entries the schema let pass


def answer_key(content: str | None, data: Any) -> str:
    """What makes two answers the same: the parsed JSON (key order and spacing
    ignored), else the text without <think> blocks and with spaces collapsed."""
    if data is not None:
        try:
            return "json:" + json.dumps(data, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            pass
    return "text:" + " ".join(strip_think(content or "").split())


__all__ = ["refine_problems", "answer_key"]
