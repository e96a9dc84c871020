"""What `cli-ai optimize` shows and asks, for `optimize.run_optimize`."""

from __future__ import annotations

from typing import Any

from cli_ai.console import Console


class OptimizeScreen:
    """The console side of `optimize.OptimizeView`."""

    def __init__(self, console: Console, *, json_out: bool = False, verbose: bool = False):
        from cli_ai.console.tune import TuneRenderer

        self.console = console
        self.json_out = json_out
        self.verbose = verbose  # every round with the LLM, on stderr
        self.sink = TuneRenderer(console)

    def plan_made(self, plan_result) -> None:
        from cli_ai.console.plan import render_plan

        if not self.json_out:
            render_plan(self.console, plan_result, show_spec=False, verbose=self.verbose)
        self.console.strategist_used(plan_result)

    def run_screen(self, run, estimate: str) -> None:
        from cli_ai.console.tune import optimize_screen

        optimize_screen(self.console, run, estimate)

    def confirm(self, question: str) -> bool:
        return self.console.confirm(question)

    def note(self, text: str) -> None:
        self.console.note(text)

    def result_json(self, payload: dict[str, Any]) -> None:
        self.console.json(payload)

    def applied(self, outcome) -> None:
        from cli_ai.console.apply import applied

        applied(self.console, outcome)
