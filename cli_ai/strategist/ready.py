"""Targets planned from ready specs (Mosquitto, autoscaling, the request
scheduler): an LLM answers only with the target's name, and cli-ai loads the
curated example for it, exactly as the offline planner does."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def ready_spec_path(target: str, examples_dir: str | Path | None = None) -> Path | None:
    """The example spec file of a ready-spec target, or None."""
    from cli_ai.strategist.planning import examples_dirs, template_for

    wl = template_for(target)
    if wl is None:
        return None
    for d in examples_dirs(examples_dir):
        path = d / wl.example
        if path.is_file():
            return path
    return None


def ready_spec_for_answer(data: Any, examples_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The ready spec an answer like {"target": "autoscaling", "description": ".."}
    asks for; None when the answer is a spec of its own (or names no such target)."""
    from cli_ai.targets import TARGETS, get_target

    if not isinstance(data, dict) or "action_space" in data:
        return None
    target = data.get("target")
    if not isinstance(target, str) or target not in TARGETS or get_target(target).planning != "examples":
        return None
    path = ready_spec_path(target, examples_dir)
    if path is None:
        return None
    from cli_ai.spec import load_spec

    return load_spec(path).to_dict()


__all__ = ["ready_spec_for_answer", "ready_spec_path"]
