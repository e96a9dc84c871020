"""The generic rule: the number printed after the metric's name; and key=value lines."""

from __future__ import annotations

import re

from cli_ai.errors import BenchmarkError
from cli_ai.tactician.benchmarks.common import finite_only, metric_key, screen_lines, to_float


_GENERIC_NUMBER = (
    r"(?P<v>[-+]?(?:nan|inf(?:inity)?)(?![a-z])"
    r"|[-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?)"
    r"(?!\.?\d)"
)
_GENERIC_SEPARATOR = r"(?:\s*[\"']?\s*[:=]\s*[\"']?\s*|\s+)"


def generic_pattern(metric: str) -> re.Pattern[str]:
    """The regex of the generic rule for one metric name: its words (split at
    '_', '-' and spaces) separated by any of those, not preceded by a letter,
    digit, '_' or '-', then ':', '=' or spaces, then the number."""
    words = [w for w in re.split(r"[\s_-]+", metric.strip()) if w]
    if not words:
        raise BenchmarkError("reward_metric is empty; name the number in the benchmark output to optimize")
    name = r"[\s_-]+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![\w-]){name}{_GENERIC_SEPARATOR}{_GENERIC_NUMBER}", re.I)


def parse_generic(text: str, metric: str) -> float | None:
    """The number printed after the metric's name: `name: 1.5`, `name=1.5`,
    `name 1.5`, `"name": 1.5`; case-insensitive; underscores in the name also
    match spaces and hyphens ('requests_per_second' finds 'Requests per
    second:'); units may follow the number and are not converted; thousands
    separators (1,234) are read. The last occurrence wins: progress lines come
    before the summary. Returns None when the name is not there; nan/inf are
    returned as such so the caller can refuse them."""
    last = None
    for last in generic_pattern(metric).finditer("\n".join(screen_lines(text))):
        pass
    if last is None:
        return None
    return to_float(last["v"])


_KEY_VALUE = re.compile(
    rf"^[ \t]*[\"']?(?P<k>[A-Za-z][A-Za-z0-9_./-]*(?:[ \t][A-Za-z0-9_./-]+){{0,5}})[\"']?[ \t]*[:=][ \t]*{_GENERIC_NUMBER}",
    re.M,
)


def parse_key_values(text: str) -> dict[str, float]:
    """Every `name: number` / `name = number` line of a program's own output,
    under canonical names (last occurrence wins): the "every number found" of
    a benchmark that is no known tool. Non-finite values are left out."""
    out: dict[str, float] = {}
    for m in _KEY_VALUE.finditer("\n".join(screen_lines(text))):
        key = metric_key(m["k"])
        if key:
            out[key] = to_float(m["v"])
    return finite_only(out)
