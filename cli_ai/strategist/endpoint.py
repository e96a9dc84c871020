"""Which LLM endpoint to ask, how it is shown, and the waiting policy that fits it.

A model served on this machine or the local network (llama.cpp, Ollama,
vLLM on a CPU or a small GPU) takes minutes for a first answer where a cloud
API takes seconds, and it keeps computing a request its client gave up on: a
retried timeout only queues a second copy behind the first. So a local base
URL gets a longer default timeout and its timeouts are not retried; a remote
one keeps the short timeout and the retries.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from cli_ai.core.secrets import NO_KEY
from cli_ai.strategist.base import EndpointNotConfigured

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Seconds per request: a cloud API; a server on this machine or the local network.
REMOTE_TIMEOUT_S = 60.0
LOCAL_TIMEOUT_S = 600.0
LOCAL_SUFFIXES = (".local", ".lan", ".internal", ".localhost", ".home.arpa")


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


def is_local_url(url: str | None) -> bool:
    """Whether the base URL is on this machine or a private network (loopback,
    RFC 1918, link-local, a bare or .local/.lan host name)."""
    if not url:
        return False
    try:
        host = (urlsplit(str(url)).hostname or "").lower()
    except ValueError:
        return False
    if not host:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or "." not in host or host.endswith(LOCAL_SUFFIXES)
    return ip.is_loopback or ip.is_private or ip.is_link_local


@dataclass(frozen=True)
class Endpoint:
    model: str
    base_url: str
    api_key: str
    key_given: bool

    @property
    def shown(self) -> str:
        return display_url(self.base_url)

    @property
    def local(self) -> bool:
        return is_local_url(self.base_url)


@dataclass(frozen=True)
class WaitPolicy:
    """How long to wait for one answer and which failures to retry."""

    timeout: float
    retry_timeouts: bool
    local: bool

    def describe(self) -> str:
        where = "on this machine or the local network" if self.local else "remote"
        retry = ("a timeout is not retried (a local server keeps computing the abandoned request)"
                 if not self.retry_timeouts else "timeouts, 429 and 5xx are retried with backoff")
        return f"{where}: {self.timeout:g} s per request (--timeout), {retry}"


def wait_policy(base_url: str | None, timeout: float | None = None) -> WaitPolicy:
    """The timeout (`timeout`, else the default for where the endpoint is) and
    whether a timed-out request is sent again."""
    local = is_local_url(base_url)
    default = LOCAL_TIMEOUT_S if local else REMOTE_TIMEOUT_S
    return WaitPolicy(timeout=float(timeout) if timeout else default, retry_timeouts=not local, local=local)


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
    return Endpoint(model=model, base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"), api_key=api_key or NO_KEY,
                    key_given=bool(api_key))


__all__ = ["Endpoint", "WaitPolicy", "wait_policy", "display_url", "is_local_url", "llm_configured",
           "resolve_endpoint", "DEFAULT_MODEL", "DEFAULT_BASE_URL", "LOCAL_TIMEOUT_S", "REMOTE_TIMEOUT_S"]
