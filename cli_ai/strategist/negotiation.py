"""What a chat-completions request may carry for one endpoint and model, and
the memory of what worked.

Servers differ in the `response_format` they accept: OpenAI and vLLM take
`json_schema`; llama-cpp-python's server answers it with HTTP 500 ("Input
should be 'text' or 'json_object'"); others say 400 or 422. So any 4xx/5xx
whose body names the response format means "unsupported here" (never a
transient failure to retry), and the next format is tried: json_schema, then
json_object, then plain text from which the JSON is extracted. What worked is
remembered per endpoint and model, in this process and in the state directory
(`llm-endpoints.json`), so the next run starts with it. That file is read as
untrusted input: a file that fails the state directory's ownership checks, or
does not have exactly the expected shape, is ignored (with a note) and
rewritten on the next success. The person can pin a format with
`--response-format` or CLI_AI_RESPONSE_FORMAT; a pinned format is never
changed or remembered.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from cli_ai.errors import BadInputError, StateError

FORMATS = ("json_schema", "json_object", "text")
FORMAT_ENV = "CLI_AI_RESPONSE_FORMAT"
MEMORY_NAME = "llm-endpoints.json"
MEMORY_VERSION = 1
MAX_ENTRIES = 100
MAX_FIELD_CHARS = 500
TOKEN_PARAMS = ("max_tokens", "max_completion_tokens", "none")
# Words in an error body that name the response format (not bare "format",
# which a server may use for anything).
FORMAT_WORDS = ("response_format", "response format", "json_schema", "json schema", "json_object",
                "structured output")


def pinned_format(option: str | None) -> str | None:
    """The format the person pinned (--response-format, else $CLI_AI_RESPONSE_FORMAT), validated."""
    for value, where in ((option, "--response-format"), (os.environ.get(FORMAT_ENV), FORMAT_ENV)):
        if value is None or value == "":
            continue
        if value not in FORMATS:
            raise BadInputError(f"{where}: {value!r} is not one of {', '.join(FORMATS)}; "
                                "json_object suits llama.cpp and Ollama, json_schema OpenAI and vLLM")
        return value
    return None


def server_message(exc: Any) -> str:
    """The server's own words in an API error, on one line, at most 300 characters."""
    body = getattr(exc, "body", None)
    msg = None
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error") or body.get("detail")
        if isinstance(msg, dict):
            msg = msg.get("message")
    if not msg:
        msg = getattr(exc, "message", None) or str(exc)
    msg = " ".join(str(msg).split())
    return msg[:300] + ("..." if len(msg) > 300 else "")


def _error_text(exc: Any) -> str:
    return (server_message(exc) + " " + str(getattr(exc, "body", "") or "")[:4000]).lower()


def names_response_format(exc: Any) -> bool:
    """Whether an error's body names the response format (then the format is unsupported)."""
    text = _error_text(exc)
    return any(w in text for w in FORMAT_WORDS)


def names_parameter(exc: Any, name: str) -> bool:
    return name in _error_text(exc)


# --------------------------------------------------------------------------- memory


@dataclass
class Choices:
    """What one endpoint and model accepted."""

    response_format: str | None = None
    temperature: bool = True
    tokens_param: str = "max_tokens"


def _entry_problem(entry: Any) -> str | None:
    keys = {"base_url", "model", "response_format", "temperature", "tokens_param", "updated"}
    if not isinstance(entry, dict) or set(entry) != keys:
        return f"an entry is not an object with exactly the keys {', '.join(sorted(keys))}"
    for k in ("base_url", "model"):
        if not isinstance(entry[k], str) or not 0 < len(entry[k]) <= MAX_FIELD_CHARS:
            return f"{k} is not a string of 1-{MAX_FIELD_CHARS} characters"
    if entry["response_format"] not in FORMATS:
        return f"response_format {str(entry['response_format'])[:40]!r} is not one of {', '.join(FORMATS)}"
    if not isinstance(entry["temperature"], bool):
        return "temperature is not true or false"
    if entry["tokens_param"] not in TOKEN_PARAMS:
        return f"tokens_param is not one of {', '.join(TOKEN_PARAMS)}"
    if not isinstance(entry["updated"], (int, float)) or isinstance(entry["updated"], bool):
        return "updated is not a number"
    return None


def parse_memory(text: str) -> dict[tuple[str, str], Choices]:
    """The endpoints file's entries; ValueError naming what is wrong (pure)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict) or set(data) != {"version", "endpoints"}:
        raise ValueError('not an object with exactly the keys "version" and "endpoints"')
    if data["version"] != MEMORY_VERSION:
        raise ValueError(f"version is not {MEMORY_VERSION}")
    entries = data["endpoints"]
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise ValueError(f"endpoints is not a list of at most {MAX_ENTRIES} entries")
    out: dict[tuple[str, str], Choices] = {}
    for i, entry in enumerate(entries):
        problem = _entry_problem(entry)
        if problem:
            raise ValueError(f"endpoints[{i}]: {problem}")
        out[(entry["base_url"], entry["model"])] = Choices(entry["response_format"], entry["temperature"],
                                                           entry["tokens_param"])
    return out


@dataclass
class EndpointMemory:
    """Choices per (shown base URL, model): this process's, backed by the state file."""

    directory: Any = None  # a Path; None: the state directory
    notes: list[str] = field(default_factory=list)
    _cache: dict[tuple[str, str], Choices] = field(default_factory=dict)
    _loaded: bool = False

    def _path(self):
        from cli_ai.safety.journal import state_dir

        return (self.directory or state_dir()) / MEMORY_NAME

    def _load(self) -> dict[tuple[str, str], Choices]:
        from cli_ai.safety.state import check_state_dir, read_state_file

        path = self._path()
        try:
            if not check_state_dir(path.parent, create=False):
                return {}
            text = read_state_file(path, "endpoint memory")
        except StateError as exc:
            self.notes.append(f"remembered response formats not used: {exc}")
            return {}
        if text is None:
            return {}
        try:
            return parse_memory(text)
        except ValueError as exc:
            self.notes.append(f"ignored {path}: {exc}; it is rewritten after the next plan")
            return {}

    def get(self, key: tuple[str, str]) -> Choices | None:
        if key not in _PROCESS:
            if not self._loaded:
                self._cache = self._load()
                self._loaded = True
            if key in self._cache:
                _PROCESS[key] = self._cache[key]
        return _PROCESS.get(key)

    def choices(self, key: tuple[str, str]) -> Choices:
        found = self.get(key)
        if found is None:
            found = _PROCESS[key] = Choices()
        return found

    def save(self, key: tuple[str, str]) -> None:
        """Write this key's choices to the state file (atomically, 0600); a
        state directory that cannot be trusted or written is noted, not fatal."""
        from cli_ai.core.files import write_atomic
        from cli_ai.safety.journal import ensure_state_dir

        choice = _PROCESS.get(key)
        if choice is None or choice.response_format is None:
            return
        path = self._path()
        try:
            ensure_state_dir(path.parent)
            entries = dict(self._load())
            entries.pop(key, None)
            entries[key] = choice  # newest last; the oldest drop off
            rows = [
                {"base_url": k[0][:MAX_FIELD_CHARS], "model": k[1][:MAX_FIELD_CHARS],
                 "response_format": c.response_format, "temperature": c.temperature,
                 "tokens_param": c.tokens_param, "updated": round(time.time())}
                for k, c in list(entries.items())[-MAX_ENTRIES:] if c.response_format
            ]
            write_atomic(path, json.dumps({"version": MEMORY_VERSION, "endpoints": rows}, indent=1) + "\n", 0o600)
        except (StateError, OSError) as exc:
            self.notes.append(f"could not remember the response format in {path}: {exc}")


# This process's choices, shared by every strategist (tests clear it).
_PROCESS: dict[tuple[str, str], Choices] = {}


def forget_process_choices() -> None:
    _PROCESS.clear()


def remembered_format(base_url: str, model: str) -> str | None:
    """The response format remembered for this endpoint and model (this process, else the state file)."""
    from cli_ai.strategist.endpoint import display_url

    found = EndpointMemory().get((display_url(base_url), model))
    return found.response_format if found else None


def describe_requests(base_url: str | None = None, model: str | None = None) -> str:
    """What a plan's requests to the configured endpoint will do (for `cli-ai doctor`):
    the wait policy, the token cap, the response format and where it comes from."""
    from cli_ai.strategist.endpoint import DEFAULT_BASE_URL, DEFAULT_MODEL, wait_policy

    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    model = model or os.environ.get("CLI_AI_MODEL") or DEFAULT_MODEL
    try:
        pinned = pinned_format(None)
    except BadInputError as exc:
        return str(exc)
    if pinned:
        fmt = f"response format {pinned} (pinned by CLI_AI_RESPONSE_FORMAT)"
    else:
        known = remembered_format(base_url, model)
        fmt = (f"response format {known} (what {model} accepted last; pin one with --response-format)" if known
               else "response format tried in the order " + ", ".join(FORMATS) + " and remembered")
    return f"{wait_policy(base_url).describe()}; answers capped at {max_tokens_for_spec()} tokens; {fmt}"


# --------------------------------------------------------------------------- sizes


def max_tokens_for_spec() -> int:
    """Completion tokens enough for the largest spec the prompt's rules allow:
    MAX_PARAMS params under the longest catalogue name, a benchmark with a
    dozen args, a rationale of 600 characters, counted at 2.5 characters a
    token (JSON tokenises worse than prose) with half again as headroom. It
    stops a small model that rambles (one answer ran to 1,557 tokens, 418 s
    on two CPU cores) without cutting a real spec short."""
    from cli_ai.safety.catalog import load_catalog
    from cli_ai.strategist.plan_rules import MAX_PARAMS

    longest = max((n for n in load_catalog()), key=len, default="x" * 40)
    spec = {
        "workload_name": "w" * 60,
        "description": "d" * 600,
        "target": "sysctl",
        "reward_metric": "transactions_per_second",
        "metric_direction": "maximize",
        "benchmark": {"runner": "redis-benchmark", "args": ["--option-value"] * 12, "timeout_s": 120},
        "action_space": [{"param": longest, "type": "int", "min": 1000000, "max": 1000000000, "scale": "log"}]
        * MAX_PARAMS,
        "training_config": {"algorithm": "auto", "budget": 30},
    }
    chars = len(json.dumps(spec, indent=2))
    tokens = int(chars / 2.5 * 1.5)
    return (tokens + 63) // 64 * 64


__all__ = ["FORMATS", "FORMAT_ENV", "pinned_format", "server_message", "names_response_format", "EndpointMemory",
           "Choices", "parse_memory", "forget_process_choices", "max_tokens_for_spec", "remembered_format",
           "describe_requests"]
