"""Secrets out of every file and message.

The API key (OPENAI_API_KEY) and credentials in a URL (`user:password@host`
in OPENAI_BASE_URL, which httpx also sends as `Basic base64(user:password)`)
must never be written to disk or shown: an endpoint may echo them back, in an
error or inside the spec it answers. `Scrubber` replaces every known secret,
and anything shaped like a key, a bearer/basic token or URL credentials, by
`***` (a Basic token is scrubbed as a known secret only: "basic configuration"
is prose); `scrub_data` does it to every string of a JSON-like value.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any, Iterable
from urllib.parse import unquote, urlsplit

#: The placeholder key for local servers that ignore it; not a secret.
NO_KEY = "no-key-needed"

_PATTERNS = (
    (re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-*.]{4,}"), "sk-***"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',}]+"), r"\1***"),
    (re.compile(r"(?i)(api[_-]?key[\"']?\s*[=:]\s*[\"']?)[^\s\"',}&]+"), r"\1***"),
    # scheme://user:password@host -> scheme://***@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@\"']+@"), r"\1***@"),
)


def url_secrets(url: str | None) -> list[str]:
    """The credentials in `url`: user:password, the password, and the Basic
    token an HTTP client makes of them."""
    if not url:
        return []
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return []
    out = []
    if parts.password:
        out += [parts.password, unquote(parts.password)]
    if parts.username is not None and "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        user, _, password = unquote(userinfo).partition(":")
        out.append(userinfo)
        out.append(base64.b64encode(f"{user}:{password}".encode()).decode())
    return out


def env_secrets() -> list[str]:
    """The secrets of this process's environment: the API key and the base URL's credentials."""
    return [os.environ.get("OPENAI_API_KEY") or "", *url_secrets(os.environ.get("OPENAI_BASE_URL"))]


class Scrubber:
    """Removes secrets from any text before it is shown or written."""

    def __init__(self, *secrets: str | None, from_env: bool = False):
        found: Iterable[str | None] = (*secrets, *(env_secrets() if from_env else ()))
        self.secrets = sorted({s for s in found if s and len(s) >= 4 and s != NO_KEY}, key=len, reverse=True)

    def __call__(self, text: Any) -> str:
        out = str(text)
        for s in self.secrets:
            out = out.replace(s, "***")
        for pattern, repl in _PATTERNS:
            out = pattern.sub(repl, out)
        return out

    def data(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string (and key) scrubbed."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.data(v) for v in value)
        return value


def scrub_text(text: Any) -> str:
    """`text` without the environment's secrets or anything shaped like one."""
    return Scrubber(from_env=True)(text)


def scrub_data(value: Any) -> Any:
    """A JSON-like value without the environment's secrets (for files cli-ai writes)."""
    return Scrubber(from_env=True).data(value)


__all__ = ["NO_KEY", "Scrubber", "env_secrets", "scrub_data", "scrub_text", "url_secrets"]
