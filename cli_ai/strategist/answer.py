"""Reading an LLM's answer: the spec object in it (the whole text, a fenced
block, or the first balanced object), <think> blocks removed in one pass, a
size cap. Pure functions; nothing here talks to an endpoint."""

from __future__ import annotations

import re
from typing import Any

from cli_ai.errors import SpecError
from cli_ai.spec import parse_json_text


def _balanced_objects(text: str):
    """Every top-level {...} substring, in order (string-aware)."""
    start = text.find("{")
    while start != -1:
        depth = 0
        in_str = False
        esc = False
        for i in range(start, len(text)):
            ch = text[i]
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    yield text[start : i + 1]
                    break
        else:
            return
        start = text.find("{", start + 1)


def _unwrap(data: Any) -> Any:
    """{"spec": {...}} or {"tuning_spec": {...}} -> the inner spec."""
    if isinstance(data, dict) and len(data) == 1:
        (inner,) = data.values()
        if isinstance(inner, dict) and "action_space" in inner:
            return inner
    return data


#: The longest answer parsed: a spec is a few KB; a reasoning model's
#: <think> block may add some hundred KB. Beyond this it is refused unread.
MAX_ANSWER_CHARS = 512 * 1024


def strip_think(text: str) -> str:
    """`text` without its <think>...</think> blocks, in one pass. (The regex
    `<think>.*?</think>` rescans the rest of the text from every unclosed
    `<think>`: quadratic, 100 s for 280 KB of them.) An unclosed block is kept,
    as the regex kept it."""
    out: list[str] = []
    pos = 0
    while True:
        start = text.find("<think>", pos)
        end = text.find("</think>", start + 7) if start != -1 else -1
        if end == -1:  # no later <think> can be closed either
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos:start])
        pos = end + len("</think>")


def extract_json(content: str | None) -> tuple[Any, str | None]:
    """The spec object in an answer: the whole text, a fenced block, or the first
    balanced object. Returns (data, None) or (None, a problem line for repair)."""
    if content is None or not content.strip():
        return None, "(answer): empty; answer with the spec as one JSON object"
    if len(content) > MAX_ANSWER_CHARS:
        return None, (f"(answer): {len(content)} characters, over the limit of {MAX_ANSWER_CHARS}; "
                      "answer with the spec only, as one JSON object")
    text = strip_think(content).strip()
    candidates = [text]
    candidates += [m.strip() for m in re.findall(r"```[A-Za-z]*[ \t]*\n?(.*?)```", text, flags=re.S)]
    first_error: str | None = None
    for cand in candidates:
        if not cand.startswith("{"):
            continue
        try:
            return _unwrap(parse_json_text(cand, "(answer)")), None
        except SpecError as exc:
            first_error = first_error or exc.problems[0]
    for n, obj in enumerate(_balanced_objects(text)):
        if n >= 20:
            break
        try:
            data = parse_json_text(obj, "(answer)")
        except SpecError as exc:
            first_error = first_error or exc.problems[0]
            continue
        if isinstance(data, dict):
            return _unwrap(data), None
    if first_error:
        return None, first_error
    return None, "(answer): no JSON object found; answer with the spec as one JSON object, no prose"
