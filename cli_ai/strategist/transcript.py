"""Every round of an LLM conversation, kept so a failed plan leaves something
to look at: what was asked (format, token cap), what came back (the answer,
finish reason, token usage, seconds), what cli-ai's checks said, and whether
the model only sent its previous answer again.

`write_failed_plan` puts it in `<state dir>/failed-plans/` (0600 files in a
0700 directory, the newest KEEP_FAILED kept). Everything is passed through the
strategist's Scrubber before it gets here: no key, no URL password.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FAILED_DIR = "failed-plans"
KEEP_FAILED = 20
MAX_ANSWER_KEPT = 20000  # characters of one answer kept in the file


@dataclass
class Round:
    number: int
    response_format: str
    max_tokens: int | None = None
    answer: str | None = None
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    same_as_round: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["answer"] is not None and len(d["answer"]) > MAX_ANSWER_KEPT:
            d["answer"] = d["answer"][:MAX_ANSWER_KEPT] + f"[... {len(self.answer or '') - MAX_ANSWER_KEPT} more characters]"
        return d


@dataclass
class Transcript:
    goal: str
    model: str
    base_url: str
    timeout: float
    pinned_format: str | None = None
    started: float = field(default_factory=time.time)
    rounds: list[Round] = field(default_factory=list)
    outcome: str = "running"

    def to_dict(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "model": self.model,
            "base_url": self.base_url,
            "timeout_s": self.timeout,
            "pinned_format": self.pinned_format,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "outcome": self.outcome,
            "rounds": [r.to_dict() for r in self.rounds],
        }


def round_lines(r: dict[str, Any]) -> list[str]:
    """One round as lines for a person (the --verbose view)."""
    usage = r.get("usage") or {}
    head = f"round {r['number']}: response format {r['response_format']}"
    if r.get("max_tokens"):
        head += f", max {r['max_tokens']} tokens"
    if r.get("error"):
        return [head, f"  endpoint error: {r['error']}"] + [f"  note: {n}" for n in r.get("notes") or []]
    head += (f"; {r.get('seconds', 0):.1f} s, {usage.get('prompt_tokens', 0)} prompt + "
             f"{usage.get('completion_tokens', 0)} completion tokens, finish {r.get('finish_reason')}")
    lines = [head] + [f"  note: {n}" for n in r.get("notes") or []]
    answer = r.get("answer")
    lines.append("  answer: " + (" ".join(answer.split())[:2000] if answer else "(empty)"))
    if r.get("same_as_round"):
        lines.append(f"  the same answer as round {r['same_as_round']}")
    if r.get("problems"):
        lines.append(f"  {len(r['problems'])} problem(s):")
        lines += [f"    {p}" for p in r["problems"]]
    else:
        lines.append("  passed every check")
    return lines


def _prune(directory: Path) -> None:
    files = sorted(p for p in directory.glob("plan-*.json") if p.is_file() and not p.is_symlink())
    for old in files[:-KEEP_FAILED]:
        try:
            old.unlink()
        except OSError:
            pass


def write_failed_plan(record: dict[str, Any], directory: Path | None = None) -> Path:
    """Write a transcript's (scrubbed) `to_dict()` under the state directory;
    returns the file. Raises StateError (an untrusted state directory) or OSError."""
    from cli_ai.safety.journal import ensure_state_dir, state_dir
    from cli_ai.safety.state import check_state_dir

    base = ensure_state_dir(directory or state_dir())
    d = base / FAILED_DIR
    check_state_dir(d, create=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    payload = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    for n in range(100):
        path = d / f"plan-{stamp}-{os.getpid()}{'' if n == 0 else f'-{n}'}.json"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        _prune(d)
        return path
    raise OSError(f"no free file name in {d}")


__all__ = ["Round", "Transcript", "write_failed_plan", "round_lines", "FAILED_DIR"]
