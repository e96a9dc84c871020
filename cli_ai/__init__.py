"""cli-ai: an agentic command-line tuner for Linux."""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: the Python API pulls in the tactician (and torch) only when used.
    if name == "run_rl_optimization":
        from cli_ai.api import run_rl_optimization

        return run_rl_optimization
    raise AttributeError(f"module 'cli_ai' has no attribute {name!r}")


__all__ = ["__version__", "run_rl_optimization"]
