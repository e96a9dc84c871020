"""A small OpenAI-compatible chat-completions server for tests.

It listens on 127.0.0.1 (a free port) in a thread, answers
`POST /v1/chat/completions` from a script of steps, and records every request
it gets (path, headers, JSON body). Like the real API it checks the bearer key
(401, echoing the key it got, the worst case for leaks), the model (404), and
optionally rejects response_format types (400, or HTTP 500 with the body
llama-cpp-python's server sends for json_schema: `llama_cpp_style`) and
request parameters (400, as OpenAI does for max_tokens on its reasoning
models), before taking the next step.

    with ScriptedLLM(api_key="sk-test") as llm:
        llm.push(Reply(json.dumps(spec)), Status(429), Reply(...))
        OpenAIStrategist(base_url=llm.url, api_key="sk-test", model="test-model")
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """A 200 answer with this assistant content and token counts."""

    content: str | None
    prompt_tokens: int = 100
    completion_tokens: int = 50
    finish_reason: str = "stop"
    usage: bool = True


@dataclass
class Status:
    """An error answer: HTTP status, an OpenAI-style error body, extra headers."""

    code: int
    message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    code_name: str | None = None


@dataclass
class Delay:
    """Wait before handling `then` (to provoke client timeouts)."""

    seconds: float
    then: Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("messages", []))

    @property
    def last_user_message(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        return users[-1]["content"] if users else ""

    @property
    def response_format(self) -> str | None:
        rf = (self.body or {}).get("response_format")
        return rf.get("type") if isinstance(rf, dict) else None


LLAMA_CPP_JSON_SCHEMA_ERROR = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': "
    "\"Input should be 'text' or 'json_object'\", 'input': '%s', 'ctx': {'expected': \"'text' or "
    "'json_object'\"}}\n\n  File \"/usr/lib/python3/dist-packages/llama_cpp/server/app.py\", line 376, in "
    "create_chat_completion\n    POST /v1/chat/completions"
)


def listening_socket() -> socket.socket:
    """A TCP socket listening on 127.0.0.1 (a free port): a server for a planned
    benchmark to find (plan_rules connects and closes). The caller closes it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScriptedLLM:
    def __init__(
        self,
        *,
        api_key: str | None = "sk-test-key-0123456789",
        models: tuple[str, ...] = ("test-model",),
        reject_formats: tuple[str, ...] = (),
        default: Any = None,
        llama_cpp_style: bool = False,
        reject_params: tuple[str, ...] = (),
    ):
        self.llama_cpp_style = llama_cpp_style
        self.reject_params = set(reject_params)
        self.api_key = api_key
        self.models = set(models)
        self.reject_formats = set(reject_formats)
        self.default = default
        self.script: deque[Any] = deque()
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    # ------------------------------------------------------------------ control
    def push(self, *steps: Any) -> "ScriptedLLM":
        with self.lock:
            self.script.extend(steps)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> "ScriptedLLM":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between headers and body
            wbufsize = -1  # buffered; handle_one_request flushes after each request

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with owner.lock:
                    owner.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                owner._handle(self, body)

            def do_GET(self):
                owner._send(self, 404, {"error": {"message": "Not Found"}})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "ScriptedLLM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ serving
    def _send(self, handler, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def _handle(self, handler, body: Any) -> None:
        if not handler.path.rstrip("/").endswith("/v1/chat/completions"):
            return self._send(handler, 404, {"error": {"message": "Not Found", "type": "invalid_request_error"}})
        if self.api_key is not None:
            got = handler.headers.get("authorization", "")
            if got != f"Bearer {self.api_key}":
                given = got.removeprefix("Bearer ").strip()
                return self._send(
                    handler,
                    401,
                    {
                        "error": {
                            "message": f"Incorrect API key provided: {given}. You can find your API key in your account.",
                            "type": "invalid_request_error",
                            "code": "invalid_api_key",
                        }
                    },
                )
        model = body.get("model") if isinstance(body, dict) else None
        if model not in self.models:
            return self._send(
                handler,
                404,
                {
                    "error": {
                        "message": f"The model `{model}` does not exist or you do not have access to it.",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
            )
        rf = body.get("response_format") if isinstance(body, dict) else None
        if self.llama_cpp_style and isinstance(rf, dict) and rf.get("type") not in ("text", "json_object"):
            # llama-cpp-python 0.3.16's server, measured: its request model takes
            # only these two, and a pydantic error there is an internal error (500)
            return self._send(handler, 500, {"error": {"message": LLAMA_CPP_JSON_SCHEMA_ERROR % rf.get("type"),
                                                       "type": "internal_server_error", "param": None, "code": None}})
        for param in sorted(self.reject_params & set(body if isinstance(body, dict) else ())):
            return self._send(handler, 400, {"error": {
                "message": f"Unsupported parameter: '{param}' is not supported with this model. "
                           "Use 'max_completion_tokens' instead.",
                "type": "invalid_request_error", "param": param, "code": "unsupported_parameter"}})
        if isinstance(rf, dict) and rf.get("type") in self.reject_formats:
            return self._send(
                handler,
                400,
                {
                    "error": {
                        "message": f"response_format of type '{rf.get('type')}' is not supported by this server",
                        "type": "invalid_request_error",
                        "param": "response_format",
                    }
                },
            )
        with self.lock:
            step = self.script.popleft() if self.script else self.default
        self._step(handler, step, model)

    def _step(self, handler, step: Any, model: str) -> None:
        if isinstance(step, Delay):
            time.sleep(step.seconds)
            return self._step(handler, step.then, model)
        if isinstance(step, Status):
            err = {"message": step.message, "type": "server_error" if step.code >= 500 else "invalid_request_error"}
            if step.code_name:
                err["code"] = step.code_name
            return self._send(handler, step.code, {"error": err}, step.headers)
        if isinstance(step, Reply):
            with self.lock:
                self._counter += 1
                n = self._counter
            payload: dict[str, Any] = {
                "id": f"chatcmpl-test-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": step.content},
                        "finish_reason": step.finish_reason,
                    }
                ],
            }
            if step.usage:
                payload["usage"] = {
                    "prompt_tokens": step.prompt_tokens,
                    "completion_tokens": step.completion_tokens,
                    "total_tokens": step.prompt_tokens + step.completion_tokens,
                }
            return self._send(handler, 200, payload)
        return self._send(handler, 500, {"error": {"message": "the test script has no answer left", "type": "server_error"}})
