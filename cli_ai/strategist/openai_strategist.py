"""The LLM strategist: any OpenAI-compatible chat-completions endpoint.

OpenAI itself, gateways, Ollama, vLLM and llama.cpp all speak
`POST {base_url}/chat/completions`. The answer is asked for with structured
output (`response_format` json_schema with the project's schema); an endpoint
that rejects that with a 400 gets `json_object`, and one that rejects that gets
plain text from which the JSON is extracted. The choice is remembered per
endpoint and model for the rest of the process.

Every answer goes through the schema, the safety checks and the plan policy;
what fails goes back to the model with the error lines, for a bounded number
of repair rounds. Retries (429, 5xx, timeouts, connection errors) use an own
bounded loop with exponential backoff; the client's retries are off so the
count is exact. The API key never appears in a message, log line or result.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from cli_ai.core.secrets import NO_KEY, Scrubber, url_secrets
from cli_ai.spec import spec_from_dict
from cli_ai.strategist.base import (
    EndpointError,
    EndpointNotConfigured,
    NoUsableAnswerError,
    PlanResult,
    UnsafeAnswerError,
    assess_spec,
)
from cli_ai.strategist.answer import MAX_ANSWER_CHARS, extract_json, strip_think  # noqa: F401  (public names)
from cli_ai.strategist.profile import SystemProfile
from cli_ai.strategist.ready import ready_spec_for_answer
from cli_ai.strategist.prompts import build_messages, echo_answer, repair_message, response_schema

log = logging.getLogger("cli_ai.strategist")

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
# NO_KEY: local servers (Ollama, llama.cpp) ignore the key but the client wants one.
FORMATS = ("json_schema", "json_object", "text")
RETRY_STATUSES = (408, 409, 429)
MAX_RETRY_AFTER = 60.0

# (base URL, model) -> the response format that endpoint accepted; and which
# endpoints refuse a temperature. Remembered for the life of the process.
_FORMAT_MEMORY: dict[tuple[str, str], str] = {}
_NO_TEMPERATURE: set[tuple[str, str]] = set()


def forget_format_choices() -> None:
    """Forget what endpoints accepted (for tests, or after a server upgrade)."""
    _FORMAT_MEMORY.clear()
    _NO_TEMPERATURE.clear()


def remembered_format(base_url: str, model: str) -> str | None:
    return _FORMAT_MEMORY.get((display_url(base_url), model))


# --------------------------------------------------------------------------- secrets


def display_url(url: str | None) -> str:
    """The base URL as shown to people: no user:password, no query string."""
    if not url:
        return DEFAULT_BASE_URL
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<unparsable base URL>"
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


# --------------------------------------------------------------------------- endpoint


@dataclass(frozen=True)
class Endpoint:
    model: str
    base_url: str
    api_key: str
    key_given: bool

    @property
    def shown(self) -> str:
        return display_url(self.base_url)


def llm_configured(base_url: str | None = None, api_key: str | None = None) -> bool:
    """Whether an LLM endpoint is configured: a key or a base URL, given or in the environment."""
    return bool(api_key or base_url or os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def resolve_endpoint(model: str | None = None, base_url: str | None = None, api_key: str | None = None) -> Endpoint:
    """Arguments first, then OPENAI_API_KEY / OPENAI_BASE_URL / CLI_AI_MODEL."""
    model = model or os.environ.get("CLI_AI_MODEL") or DEFAULT_MODEL
    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
    if not base_url and not api_key:
        raise EndpointNotConfigured(
            "no LLM endpoint configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for a server other "
            "than OpenAI's), or plan with --provider offline"
        )
    return Endpoint(model=model, base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"), api_key=api_key or NO_KEY, key_given=bool(api_key))


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    msg = None
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error")
        if isinstance(msg, dict):
            msg = msg.get("message")
    if not msg:
        msg = getattr(exc, "message", None) or str(exc)
    msg = " ".join(str(msg).split())
    return msg[:300] + ("..." if len(msg) > 300 else "")


def _rejects_format(exc: Any) -> bool:
    text = (_server_message(exc) + " " + str(getattr(exc, "body", ""))).lower()
    return any(k in text for k in ("response_format", "response format", "json_schema", "json schema", "json_object", "structured output", "schema", "format"))


def _rejects_temperature(exc: Any) -> bool:
    return "temperature" in (_server_message(exc) + " " + str(getattr(exc, "body", ""))).lower()


# --------------------------------------------------------------------------- strategist


class OpenAIStrategist:
    """Plans with an LLM behind an OpenAI-compatible endpoint."""

    name = "openai"

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_repairs: int = 2,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 8.0,
        response_format: str | None = None,
        temperature: float | None = 0.2,
        dry_run: bool = False,
        proc_root: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.endpoint = resolve_endpoint(model, base_url, api_key)
        self.scrub = Scrubber(self.endpoint.api_key, api_key, *url_secrets(self.endpoint.base_url), from_env=True)
        if response_format is not None and response_format not in FORMATS:
            raise ValueError(f"response_format must be one of {', '.join(FORMATS)}")
        self.timeout = float(timeout)
        self.max_repairs = max(0, int(max_repairs))
        self.max_retries = max(0, int(max_retries))
        self.retry_backoff = float(retry_backoff)
        self.retry_backoff_max = float(retry_backoff_max)
        self.forced_format = response_format
        self.temperature = temperature
        self.dry_run = dry_run
        self.proc_root = proc_root
        self.sleep = sleep
        self.requests = 0
        self.retries = 0
        self._last_retries = 0
        self._client = None

    @property
    def model(self) -> str:
        return self.endpoint.model

    @property
    def base_url(self) -> str:
        return self.endpoint.shown

    @property
    def _key(self) -> tuple[str, str]:
        return (self.endpoint.shown, self.endpoint.model)

    def _format(self) -> str:
        return self.forced_format or _FORMAT_MEMORY.get(self._key, "json_schema")

    # ------------------------------------------------------------------ http
    def client(self):
        if self._client is None:
            import openai

            try:
                self._client = openai.OpenAI(
                    api_key=self.endpoint.api_key,
                    base_url=self.endpoint.base_url,
                    timeout=self.timeout,
                    max_retries=0,
                )
            except Exception as exc:  # bad URL and the like; never echo the key
                raise EndpointError(f"cannot set up the LLM client for {self.base_url}: {self.scrub(exc)}") from None
        return self._client

    def _delay(self, attempt: int, exc: Any) -> float:
        delay = min(self.retry_backoff * (2**attempt), self.retry_backoff_max)
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                after = float(response.headers.get("retry-after", ""))
                if 0 < after <= MAX_RETRY_AFTER:
                    delay = max(delay, after)
            except (TypeError, ValueError):
                pass
        return delay

    def _send(self, kwargs: dict[str, Any]):
        """One chat completion, retried on 408/409/429/5xx, timeouts and connection errors."""
        import openai

        attempt = 0
        self._last_retries = 0
        while True:
            self.requests += 1
            try:
                return self.client().chat.completions.create(**kwargs)
            except openai.APIStatusError as exc:
                if exc.status_code not in RETRY_STATUSES and exc.status_code < 500:
                    raise
                failure: Exception = exc
                what = f"HTTP {exc.status_code}"
            except openai.APITimeoutError as exc:
                failure, what = exc, "timeout"
            except openai.APIConnectionError as exc:
                failure, what = exc, "connection error"
            if attempt >= self.max_retries:
                raise failure
            delay = self._delay(attempt, failure)
            attempt += 1
            self.retries += 1
            self._last_retries = attempt
            log.info("LLM endpoint %s: %s; retry %d of %d in %.2f s", self.base_url, what, attempt, self.max_retries, delay)
            self.sleep(delay)

    def _translate(self, exc: Exception) -> EndpointError:
        """A one-line, key-free message for anything the endpoint did."""
        import openai

        url = self.base_url
        n = self._last_retries
        tried = f" after {n} retr{'y' if n == 1 else 'ies'}" if n else ""
        if isinstance(exc, openai.APITimeoutError):
            msg = (
                f"the LLM endpoint {url} did not answer within {self.timeout:g} s{tried}; "
                "raise the timeout or check the server"
            )
        elif isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            reason = f" ({cause})" if cause else ""
            msg = (
                f"cannot reach the LLM endpoint {url}{reason}{tried}; check OPENAI_BASE_URL (--base-url) "
                "and that the server is running"
            )
        elif isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            server = _server_message(exc)
            if status == 401:
                msg = f"the LLM endpoint {url} rejected the API key (401 Unauthorized: {server}); check OPENAI_API_KEY"
            elif status == 403:
                msg = f"the LLM endpoint {url} refused access (403 Forbidden: {server}); the key may lack access to model {self.model!r}"
            elif status == 404:
                if "model" in server.lower():
                    msg = (
                        f"the LLM endpoint {url} does not know the model {self.model!r} (404: {server}); "
                        "choose one it serves with --model or CLI_AI_MODEL"
                    )
                else:
                    msg = (
                        f"the LLM endpoint {url} has no chat completions API (404 for {url}/chat/completions); "
                        "check the base URL (OpenAI-compatible servers usually end in /v1)"
                    )
            elif status == 429:
                quota = " (the account is out of quota)" if "quota" in server.lower() else ""
                msg = f"the LLM endpoint {url} kept rate-limiting the requests (429: {server}){quota}{tried}"
            elif status >= 500:
                msg = f"the LLM endpoint {url} failed with HTTP {status} ({server}){tried}"
            else:
                msg = f"the LLM endpoint {url} rejected the request (HTTP {status}: {server})"
        else:
            msg = f"the LLM endpoint {url} failed: {type(exc).__name__}: {exc}"
        return EndpointError(self.scrub(msg))

    def _complete(self, messages: list[dict[str, str]], notes: list[str]) -> tuple[str | None, dict[str, int], str | None]:
        """Ask once (with retries and format fallback); returns (content, usage, finish_reason)."""
        import openai

        while True:
            fmt = self._format()
            kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
            if self.temperature is not None and self._key not in _NO_TEMPERATURE:
                kwargs["temperature"] = self.temperature
            if fmt == "json_schema":
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "tuning_spec", "schema": response_schema(), "strict": False},
                }
            elif fmt == "json_object":
                kwargs["response_format"] = {"type": "json_object"}
            log.debug("LLM request to %s: model %s, response format %s, %d messages", self.base_url, self.model, fmt, len(messages))
            try:
                response = self._send(kwargs)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if fmt != "text" and self.forced_format is None and _rejects_format(exc):
                    nxt = FORMATS[FORMATS.index(fmt) + 1]
                    _FORMAT_MEMORY[self._key] = nxt
                    notes.append(
                        self.scrub(f"the endpoint rejected response_format {fmt} ({_server_message(exc)}); using {nxt}")
                    )
                    continue
                if "temperature" in kwargs and _rejects_temperature(exc):
                    _NO_TEMPERATURE.add(self._key)
                    notes.append("the endpoint rejected a temperature; asking without one")
                    continue
                raise self._translate(exc) from None
            except openai.OpenAIError as exc:
                raise self._translate(exc) from None
            if self.forced_format is None:
                _FORMAT_MEMORY[self._key] = fmt
            usage = getattr(response, "usage", None)
            counts = {
                "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
                "total_tokens": int(getattr(usage, "total_tokens", 0) or 0),
            }
            if counts["total_tokens"] == 0:
                counts["total_tokens"] = counts["prompt_tokens"] + counts["completion_tokens"]
            choices = getattr(response, "choices", None) or []
            if not choices:
                return None, counts, None
            message = choices[0].message
            return getattr(message, "content", None), counts, getattr(choices[0], "finish_reason", None)

    # ------------------------------------------------------------------ plan
    def plan(self, goal: str, profile: SystemProfile | None) -> PlanResult:
        if not goal or not goal.strip():
            raise NoUsableAnswerError("the goal is empty; say what to tune, e.g. \"my postgres stalls on writes\"")
        self.requests = 0
        self.retries = 0
        messages = build_messages(goal, profile)
        reasoning = [f"goal: {goal.strip()!r}", f"asked model {self.model} at {self.base_url}"]
        calls: list[dict[str, int]] = []
        unsafe_seen = False
        problems: list[str] = []

        def usage() -> dict[str, Any]:
            return {
                "calls": [dict(c) for c in calls],
                "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
                "completion_tokens": sum(c["completion_tokens"] for c in calls),
                "total_tokens": sum(c["total_tokens"] for c in calls),
                "requests": self.requests,
                "retries": self.retries,
            }

        for round_no in range(self.max_repairs + 1):
            notes: list[str] = []
            try:
                content, counts, finish = self._complete(messages, notes)
            except EndpointError as exc:
                exc.usage = usage()  # type: ignore[attr-defined]
                exc.reasoning = [self.scrub(r) for r in reasoning + notes]  # type: ignore[attr-defined]
                raise
            reasoning.extend(notes)
            calls.append(counts)
            data, problem = extract_json(content)
            # An endpoint may echo the key or the URL's password inside its
            # answer: scrubbed here, they never reach plan.json or spec.json.
            data = self.scrub.data(data)
            if data is None:
                problems = [problem or "(answer): no JSON object found"]
                if finish == "length":
                    problems.append("(answer): was cut off at the token limit; answer with a shorter spec")
                unsafe = False
            else:
                # {"target": "mosquitto"} and the like: that target's ready spec (issue 16)
                ready = ready_spec_for_answer(data)
                data = ready if ready is not None else data
                verdict = assess_spec(data, dry_run=self.dry_run, proc_root=self.proc_root, goal=goal,
                                      policy=ready is None)
                problems = verdict.problems
                unsafe = verdict.unsafe
            if not problems:
                spec = spec_from_dict(data)
                reasoning.append(f"response format: {self._format()}")
                if round_no:
                    reasoning.append(f"answer {round_no + 1} passed every check after {round_no} repair round(s)")
                else:
                    reasoning.append("the first answer passed the schema, safety and policy checks")
                if isinstance(data.get("description"), str):
                    reasoning.append(f"model's rationale: {' '.join(data['description'].split())}")
                total = usage()
                reasoning.append(
                    f"tokens: {total['prompt_tokens']} prompt + {total['completion_tokens']} completion = "
                    f"{total['total_tokens']} over {len(calls)} call(s)"
                )
                return PlanResult(
                    spec_dict=data,
                    spec=spec,
                    provider="openai",
                    model=self.model,
                    reasoning=[self.scrub(r) for r in reasoning],
                    usage=total,
                    repairs=round_no,
                    response_format=self._format(),
                    base_url=self.base_url,
                )
            unsafe_seen = unsafe_seen or unsafe
            reasoning.append(f"answer {round_no + 1} refused ({len(problems)} problem(s)):")
            reasoning.extend(f"  {p}" for p in problems)
            log.info("LLM answer %d refused: %s", round_no + 1, self.scrub("; ".join(problems)))
            if round_no < self.max_repairs:
                messages = messages + [
                    {"role": "assistant", "content": echo_answer(content or "")},
                    {"role": "user", "content": repair_message(problems)},
                ]
        cls = UnsafeAnswerError if unsafe_seen else NoUsableAnswerError
        kind = "an unsafe spec" if unsafe_seen else "no usable spec"
        headline = self.scrub(
            f"the LLM ({self.model} at {self.base_url}) gave {kind} after {self.max_repairs} repair round(s)"
        )
        error = cls(
            headline,
            problems=[headline + "; nothing was planned. Problems with its last answer:"]
            + [self.scrub(p) for p in problems],
        )
        error.usage = usage()  # type: ignore[attr-defined]
        error.reasoning = [self.scrub(r) for r in reasoning]  # type: ignore[attr-defined]
        raise error


__all__ = [
    "OpenAIStrategist",
    "Scrubber",
    "extract_json",
    "display_url",
    "resolve_endpoint",
    "llm_configured",
    "forget_format_choices",
    "DEFAULT_MODEL",
]
