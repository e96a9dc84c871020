"""The LLM strategist: any OpenAI-compatible chat-completions endpoint.

OpenAI itself, gateways, Ollama, vLLM and llama.cpp all speak
`POST {base_url}/chat/completions`. The answer is asked for with structured
output when the endpoint takes it (`negotiation`: json_schema, json_object,
then plain text; what worked is remembered per endpoint and model in the
state directory, or pinned with --response-format), with `max_tokens` sized
for the largest spec the rules allow, and with the waiting policy of where
the endpoint is (`endpoint.wait_policy`: a local server gets a long timeout
and no retried timeouts).

Every answer goes through the schema, the safety checks, the plan policy and
the prompt's rules (`plan_rules`); what fails goes back to the model with the
error lines as it should read them (`repair`), for a bounded number of repair
rounds, saying so when it only sent its last answer again. Every round is
kept (`transcript`): shown with --verbose, written to the state directory
when the plan fails. Retries (429, 5xx, timeouts, connection errors) use an
own bounded loop with exponential backoff; the client's retries are off so
the count is exact. The API key never appears in a message, log line, file
or result.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable

from cli_ai.core.secrets import Scrubber, url_secrets
from cli_ai.errors import CliAiError
from cli_ai.spec import spec_from_dict
from cli_ai.strategist.answer import MAX_ANSWER_CHARS, extract_json, strip_think  # noqa: F401  (public names)
from cli_ai.strategist.base import (
    EndpointError,
    NoUsableAnswerError,
    PlanResult,
    StrategistError,
    UnsafeAnswerError,
    assess_spec,
)
from cli_ai.strategist.endpoint import (  # noqa: F401  (public names)
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    display_url,
    llm_configured,
    resolve_endpoint,
    wait_policy,
)
from cli_ai.strategist.negotiation import (  # noqa: F401  (public names)
    FORMATS,
    EndpointMemory,
    describe_requests,
    remembered_format,
    forget_process_choices,
    max_tokens_for_spec,
    names_parameter,
    names_response_format,
    pinned_format,
    server_message,
)
from cli_ai.strategist.profile import SystemProfile
from cli_ai.strategist.ready import ready_spec_for_answer
from cli_ai.strategist.prompts import build_messages, echo_answer, repair_message, response_schema
from cli_ai.strategist.repair import answer_key, refine_problems
from cli_ai.strategist.transcript import Round, Transcript, write_failed_plan

log = logging.getLogger("cli_ai.strategist")

RETRY_STATUSES = (408, 409, 429)
MAX_RETRY_AFTER = 60.0


def forget_format_choices() -> None:
    """Forget what endpoints accepted in this process (for tests); the state file stays."""
    forget_process_choices()


class OpenAIStrategist:
    """Plans with an LLM behind an OpenAI-compatible endpoint."""

    name = "openai"

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        max_repairs: int = 2,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 8.0,
        response_format: str | None = None,
        max_tokens: int | None = None,
        retry_timeouts: bool | None = None,
        temperature: float | None = 0.2,
        dry_run: bool = False,
        proc_root: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.endpoint = resolve_endpoint(model, base_url, api_key)
        self.scrub = Scrubber(self.endpoint.api_key, api_key, *url_secrets(self.endpoint.base_url), from_env=True)
        self.forced_format = pinned_format(response_format)  # BadInputError names the flag or variable
        self.policy = wait_policy(self.endpoint.base_url, timeout)
        if retry_timeouts is not None:  # None: as the policy says for where the endpoint is
            self.policy = dataclasses.replace(self.policy, retry_timeouts=bool(retry_timeouts))
        self.timeout = self.policy.timeout
        self.max_repairs = max(0, int(max_repairs))
        self.max_retries = max(0, int(max_retries))
        self.retry_backoff = float(retry_backoff)
        self.retry_backoff_max = float(retry_backoff_max)
        self.max_tokens = int(max_tokens) if max_tokens else max_tokens_for_spec()
        self.temperature = temperature
        self.dry_run = dry_run
        self.proc_root = proc_root
        self.sleep = sleep
        self.memory = EndpointMemory()
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
        return self.forced_format or self.memory.choices(self._key).response_format or "json_schema"

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
        """One chat completion, retried on 408/409/429/5xx, connection errors and
        (remote endpoints only) timeouts. An error that names the response
        format is no transient failure: raised at once for the fallback."""
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
                if "response_format" in kwargs and names_response_format(exc):
                    raise
                failure: Exception = exc
                what = f"HTTP {exc.status_code}"
            except openai.APITimeoutError as exc:
                if not self.policy.retry_timeouts:
                    raise
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
            if self.policy.retry_timeouts:
                msg = (f"the LLM endpoint {url} did not answer within {self.timeout:g} s{tried}; "
                       "raise --timeout or check the server")
            else:
                msg = (f"the LLM endpoint {url} did not answer within {self.timeout:g} s (not retried: a local "
                       "server keeps computing the abandoned request); raise --timeout or use a smaller model")
        elif isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            reason = f" ({cause})" if cause else ""
            msg = (
                f"cannot reach the LLM endpoint {url}{reason}{tried}; check OPENAI_BASE_URL (--base-url) "
                "and that the server is running"
            )
        elif isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            server = server_message(exc)
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

    def _request(self, messages: list[dict[str, str]], fmt: str) -> dict[str, Any]:
        choice = self.memory.choices(self._key)
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.temperature is not None and choice.temperature:
            kwargs["temperature"] = self.temperature
        if choice.tokens_param != "none":
            kwargs[choice.tokens_param] = self.max_tokens
        if fmt == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "tuning_spec", "schema": response_schema(), "strict": False},
            }
        elif fmt == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        return kwargs

    def _negotiate(self, exc: Any, kwargs: dict[str, Any], fmt: str, notes: list[str]) -> bool:
        """Whether a rejected request can be sent again without what the
        endpoint refused (a response format, a temperature, the token cap)."""
        choice = self.memory.choices(self._key)
        status = exc.status_code
        if "response_format" in kwargs and names_response_format(exc):
            if self.forced_format:
                raise EndpointError(self.scrub(
                    f"the LLM endpoint {self.base_url} does not accept the pinned response format {fmt} "
                    f"(HTTP {status}: {server_message(exc)}); pin another with --response-format "
                    f"({', '.join(f for f in FORMATS if f != fmt)}) or CLI_AI_RESPONSE_FORMAT, or unset both "
                    "so that cli-ai finds one")) from None
            nxt = FORMATS[FORMATS.index(fmt) + 1]
            choice.response_format = nxt
            notes.append(self.scrub(
                f"the endpoint rejected response_format {fmt} (HTTP {status}: {server_message(exc)}); using {nxt}"))
            return True
        if status not in (400, 422):
            return False
        if "temperature" in kwargs and names_parameter(exc, "temperature"):
            choice.temperature = False
            notes.append("the endpoint rejected a temperature; asking without one")
            return True
        param = choice.tokens_param
        if param in kwargs and names_parameter(exc, param):
            choice.tokens_param = "max_completion_tokens" if param == "max_tokens" else "none"
            notes.append(f"the endpoint rejected {param}; asking with "
                         f"{choice.tokens_param if choice.tokens_param != 'none' else 'no token cap'}")
            return True
        return False

    def _complete(self, messages: list[dict[str, str]], notes: list[str]) -> tuple[str | None, dict[str, int], str | None]:
        """Ask once (with retries and format fallback); returns (content, usage, finish_reason)."""
        import openai

        while True:
            fmt = self._format()
            kwargs = self._request(messages, fmt)
            log.debug("LLM request to %s: model %s, response format %s, %d messages", self.base_url, self.model, fmt, len(messages))
            try:
                response = self._send(kwargs)
            except openai.APIStatusError as exc:
                if self._negotiate(exc, kwargs, fmt, notes):
                    continue
                raise self._translate(exc) from None
            except openai.OpenAIError as exc:
                raise self._translate(exc) from None
            if self.forced_format is None:
                self.memory.choices(self._key).response_format = fmt
                self.memory.save(self._key)
                notes.extend(self.scrub(n) for n in self.memory.notes)
                self.memory.notes.clear()
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
    def _usage(self, calls: list[dict[str, int]]) -> dict[str, Any]:
        return {
            "calls": [dict(c) for c in calls],
            "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
            "completion_tokens": sum(c["completion_tokens"] for c in calls),
            "total_tokens": sum(c["total_tokens"] for c in calls),
            "requests": self.requests,
            "retries": self.retries,
        }

    def _fail(self, error: StrategistError, transcript: Transcript, reasoning: list[str],
              calls: list[dict[str, int]]) -> StrategistError:
        """`error` with what a person needs to look into it: usage, reasoning,
        every round, and the failed-plan file that keeps them."""
        transcript.outcome = f"failed: {error.problems[0]}"
        record = self.scrub.data(transcript.to_dict())
        error.usage = self._usage(calls)  # type: ignore[attr-defined]
        error.reasoning = [self.scrub(r) for r in reasoning]  # type: ignore[attr-defined]
        error.transcript = record  # type: ignore[attr-defined]
        error.failed_plan_file = None  # type: ignore[attr-defined]
        try:
            path = write_failed_plan(record)
        except (CliAiError, OSError) as exc:  # an untrusted state directory: the plan's own error still comes first
            error.problems.append(f"every round could not be kept: {exc}")
        else:
            error.failed_plan_file = str(path)  # type: ignore[attr-defined]
            error.problems.append(f"every round (answers, problems, format, tokens) is in {path}")
        return error

    def plan(self, goal: str, profile: SystemProfile | None) -> PlanResult:
        if not goal or not goal.strip():
            raise NoUsableAnswerError("the goal is empty; say what to tune, e.g. \"my postgres stalls on writes\"")
        self.requests = 0
        self.retries = 0
        messages = build_messages(goal, profile)
        reasoning = [f"goal: {goal.strip()!r}", f"asked model {self.model} at {self.base_url}"]
        transcript = Transcript(goal=goal.strip(), model=self.model, base_url=self.base_url, timeout=self.timeout,
                                pinned_format=self.forced_format)
        calls: list[dict[str, int]] = []
        seen: dict[str, int] = {}  # answer_key -> the round it first came in
        unsafe_seen = False
        problems: list[str] = []

        for round_no in range(self.max_repairs + 1):
            notes: list[str] = []
            record = Round(number=round_no + 1, response_format=self._format(), max_tokens=self.max_tokens)
            transcript.rounds.append(record)
            started = time.monotonic()
            try:
                content, counts, finish = self._complete(messages, notes)
            except EndpointError as exc:
                record.error, record.notes = str(exc), notes
                record.seconds = round(time.monotonic() - started, 2)
                raise self._fail(exc, transcript, reasoning + notes, calls) from None
            record.seconds = round(time.monotonic() - started, 2)
            record.response_format, record.notes = self._format(), notes
            record.answer, record.finish_reason, record.usage = self.scrub(content or ""), finish, counts
            reasoning.extend(notes)
            calls.append(counts)
            data, problem = extract_json(content)
            # An endpoint may echo the key or the URL's password inside its
            # answer: scrubbed here, they never reach plan.json or spec.json.
            data = self.scrub.data(data)
            if data is None:
                problems = [problem or "(answer): no JSON object found"]
                if finish == "length":
                    problems.append(f"(answer): was cut off at the token limit ({self.max_tokens}); answer with "
                                    "the spec only, no prose, and a description of one or two sentences")
                unsafe = False
            else:
                # {"target": "mosquitto"} and the like: that target's ready spec (issue 16)
                ready = ready_spec_for_answer(data)
                data = ready if ready is not None else data
                # a ready spec is curated: neither the policy nor the prompt's rules apply to it
                verdict = assess_spec(data, dry_run=self.dry_run, proc_root=self.proc_root, goal=goal,
                                      policy=ready is None, rules=ready is None)
                problems = refine_problems(data, verdict.problems)
                unsafe = verdict.unsafe
            record.problems = [self.scrub(p) for p in problems]
            key = answer_key(content, data)
            same = seen.get(key)
            seen.setdefault(key, round_no + 1)
            record.same_as_round = same
            if not problems:
                transcript.outcome = "planned"
                spec = spec_from_dict(data)
                reasoning.append(f"response format: {self._format()}")
                if round_no:
                    reasoning.append(f"answer {round_no + 1} passed every check after {round_no} repair round(s)")
                else:
                    reasoning.append("the first answer passed the schema, safety, policy and rule checks")
                if isinstance(data.get("description"), str):
                    reasoning.append(f"model's rationale: {' '.join(data['description'].split())}")
                total = self._usage(calls)
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
                    rounds=self.scrub.data(transcript.to_dict())["rounds"],
                )
            unsafe_seen = unsafe_seen or unsafe
            again = f", the same answer as round {same}" if same else ""
            reasoning.append(f"answer {round_no + 1} refused ({len(problems)} problem(s){again}):")
            reasoning.extend(f"  {p}" for p in problems)
            log.info("LLM answer %d refused: %s", round_no + 1, self.scrub("; ".join(problems)))
            if round_no < self.max_repairs:
                messages = messages + [
                    {"role": "assistant", "content": echo_answer(content or "")},
                    {"role": "user", "content": repair_message(problems, same_as=same)},
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
        raise self._fail(error, transcript, reasoning, calls)


__all__ = [
    "OpenAIStrategist",
    "Scrubber",
    "extract_json",
    "display_url",
    "resolve_endpoint",
    "llm_configured",
    "forget_format_choices",
    "remembered_format",
    "DEFAULT_MODEL",
]
