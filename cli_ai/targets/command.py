"""The command target: a program's flags. Each knob is a `{name}` placeholder
in the benchmark command; nothing on the machine changes (the values live in
memory and reach the program through its argv)."""

from __future__ import annotations

from typing import Any

from cli_ai.targets.base import Target, TargetSession


class CommandTarget(Target):
    name = "command"
    planning = "person"
    substitutes_values = True

    def session(self, run: Any, options: Any, sink) -> TargetSession:
        from cli_ai.targets.evaluation import benchmark_session

        return benchmark_session(run, options, substitute_values=True)
