"""Rendering of a tuning run, as seed 004 shows it: a header, one row per
evaluation with a progress bar over the budget, then the summary with the
optimal configuration and the `sysctl -w` lines that apply it."""

from __future__ import annotations

import math
from typing import Any

from cli_ai.console.text import escape, numeric_bools
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli_ai.console import Console
from cli_ai.console.tables import knob_table, show_table
from cli_ai.events import Event

SIMULATED = "[bold yellow]SIMULATED[/] dry run: no value is written and no benchmark runs; its numbers come from a surrogate model"


def _fmt_value(v: Any, kernel: bool = False) -> str:
    """A knob value for the screen. Bools as the target writes them: 0/1 for
    sysctls (`kernel`, as /proc/sys and `sysctl -w` spell them), else true/false."""
    if isinstance(v, (tuple, list)):
        return " ".join(map(str, v))
    if isinstance(v, bool):
        return ("1" if v else "0") if kernel else ("true" if v else "false")
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _target_value(target: str, name: str, v: Any, kernel: bool) -> str:
    """A value as its target spells it (postgres: 512MB, 300s), else `_fmt_value`."""
    from cli_ai.targets import TARGETS

    t = TARGETS.get(target)
    text = t.value_text(name, v) if t is not None and v != "-" else None
    return text if text is not None else _fmt_value(v, kernel)


def _fmt_num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:,.4g}" if abs(x) < 1000 else f"{x:,.1f}"


def _pct(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    colour = "green" if x > 0 else ("red" if x < 0 else "white")
    return f"[{colour}]{x:+.1f}%[/]"


class PolicyRendering:
    """Mixin: how a policy-training run (scheduler, autoscaling) is drawn."""

    def on_policy_started(self, data: dict) -> None:
        spec = data["spec"]
        self.metric = spec.reward_metric or "metric"
        self.simulated = True
        self._every = None
        lines = [
            f"Workload:      {escape(spec.workload_name)}",
            f"Target:        {escape(spec.target)} (simulated: nothing on this machine is changed)",
            f"Metric:        {escape(self.metric)} ({spec.metric_direction})",
            f"Algorithm:     {escape(data['agent'].algorithm)}",
            f"Budget:        {data['budget']:,} environment steps",
        ]
        self.rc.print(Panel("\n".join(lines), title="cli-ai tune (policy)", title_align="left", expand=False))
        self.rc.print(f"Run directory: {escape(data['run_dir'])}", soft_wrap=True)  # whole, outside the panel
        for note in data["notes"]:
            self.rc.print(f"[cyan]note:[/] {escape(note)}", soft_wrap=True)
        self.progress = Progress(TextColumn("[bold]steps"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[best]}"), console=self.rc, transient=True)
        self.task = self.progress.add_task("train", total=data["budget"], best="")
        self.progress.start()
        self._done = 0

    def on_episode(self, data: dict) -> None:
        ep = data["episode"]
        if self._every is None:  # about 25 lines over the whole run
            self._every = max(1, math.ceil(data["budget"] / max(ep.steps, 1) / 25))
        if ep.index % self._every == 0:
            self._print(f"episode {ep.index:>4}: {ep.steps} steps, reward {ep.reward:+.2f}, "
                        f"{escape(self.metric)} {_fmt_num(ep.mean_metric)}")
        if self.progress is not None:
            self.progress.update(self.task, completed=data["steps"], best=f"episode {ep.index}")

    def on_policy_finished(self, data: dict) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        r = data["result"]
        ev = r.extra.get("evaluation") or {}
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("Steps", f"{r.evaluations:,} of {r.budget:,} ({r.extra.get('episodes', 0)} episodes)")
        table.add_row("Stopped", escape(r.stopped_reason))
        metric = escape(r.metric or "")
        untrained = r.extra.get("untrained") or {}
        heuristic = r.extra.get("heuristic") or {}

        def shown(e: dict) -> str:
            return (f"{_fmt_num(e['mean_metric'])} ± {_fmt_num(e['std_metric'])} {metric}, "
                    f"reward {e['mean_reward']:+.2f}")

        if ev:
            table.add_row(f"Trained ({ev['episodes']} eval episodes)", shown(ev))
        if untrained:
            table.add_row("Untrained (same episodes)", shown(untrained))
        table.add_row("Improvement", _pct(r.improvement) + (" over the untrained policy" if r.improvement is not None else ""))
        if heuristic:
            table.add_row(f"Best heuristic ({escape(heuristic['name'])})", shown(heuristic))
            if heuristic.get("improvement_pct") is not None:
                table.add_row("Against the heuristic", _pct(heuristic["improvement_pct"]))
        self.rc.print(Panel(table, title="Training complete (SIMULATED target)", title_align="left", expand=False))
        if r.model_path:
            self.rc.print(f"model: {escape(r.model_path)}", soft_wrap=True)
        if r.run_dir:
            self.rc.print(f"[dim]run directory: {escape(r.run_dir)}[/]", soft_wrap=True)


class TuneRenderer(PolicyRendering):
    """An event sink that draws the run. In --json mode it draws on stderr so
    stdout carries only the final JSON object."""

    def __init__(self, console: Console):
        self.console = console
        self.rc = console.err if console.json_mode else console.out
        self.progress: Progress | None = None
        self.task = None
        self.metric = "metric"
        self.simulated = False
        self.kernel = False

    # what -q still shows: the final summary, and values that could not be restored
    QUIET_EVENTS = frozenset({"run_finished", "policy_finished", "restore_failed"})

    def __call__(self, event: Event) -> None:
        handler = getattr(self, "on_" + event.kind, None)
        if handler and (not self.console.quiet or event.kind in self.QUIET_EVENTS):
            handler(event.data)

    # ---------------------------------------------------------------- header
    def on_run_started(self, data: dict) -> None:
        """Keep what the header shows; it is drawn once the baseline runs have
        measured the noise (or at the end, when they never finished)."""
        run = data["run"]
        self.metric = run.spec.reward_metric or "metric"
        self.simulated = run.dry_run
        self.kernel = numeric_bools(run.spec.target)
        self._started = data
        self._held: list[str] = []
        self.progress = Progress(
            TextColumn("[bold]evaluations"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[best]}"), console=self.rc, transient=True,
        )
        self.task = self.progress.add_task("tune", total=run.budget, best="")
        self.progress.start()

    def _header(self, noise: str | None) -> None:
        data, self._started = getattr(self, "_started", None), None
        if data is None:
            return
        run = data["run"]
        spec = run.spec
        agent = data["agent"]
        search = agent.algorithm + (f" (preset {agent.preset})" if agent.preset else "")
        lines = [
            f"Workload:      {escape(spec.workload_name)}",
            f"Target:        {escape(spec.target)}",
            f"Reward metric: {escape(self.metric)} ({spec.metric_direction})",
            f"Action space:  {run.space.dims} dimension(s) over {len(run.space.knobs)} parameter(s)",
            f"State space:   {len(spec.state_space)} metrics ({escape(', '.join(m.metric for m in spec.state_space))})",
            f"Search:        {escape(search)}",
            f"Budget:        {run.budget} evaluations: {run.baseline_runs} baseline run(s), {run.search_evaluations} "
            f"search, {run.recheck_runs} re-measurement(s) of the top few",
            "Verification:  " + (f"{run.verify_runs} runs each of baseline and best, alternating (outside the budget)"
                                 if run.verify_runs else "off (--verify 0): nothing will be offered to apply"),
            f"Benchmark:     {escape(data['benchmark'] or '-')}" + (" [dim](not run: simulated)[/]" if run.dry_run else ""),
        ]
        if noise:
            lines.append(f"Noise:         {noise}")
        if run.dry_run:
            lines.append(SIMULATED)
        self._print(Panel("\n".join(lines), title="cli-ai tune", title_align="left", expand=False))
        self._print(f"Run directory: {escape(data['run_dir'])}")  # a str: printed whole, outside the panel
        if run.search_reason:
            self._print(f"[cyan]search:[/] {escape(run.search_reason)}")
        for warning in run.warnings:
            self._print(f"[yellow]warning:[/] {escape(warning)}")
        for note in run.notes:
            self._print(f"[cyan]note:[/] {escape(note)}")
        for text in self._held:
            self._print(text)
        self._held = []

    def _print(self, text) -> None:
        # Lines of text keep their length (a terminal wraps them, copy-paste stays whole); panels wrap inside.
        (self.progress.console if self.progress else self.rc).print(text, soft_wrap=isinstance(text, str),
                                                                   highlight=False)

    def on_target_warning(self, data: dict) -> None:
        text = f"[yellow]warning:[/] {escape(str(data.get('message', data)))}"
        if getattr(self, "_started", None) is not None:
            self._held.append(text)  # printed under the header
        else:
            self._print(text)

    def on_broker_refused(self, data: dict) -> None:
        self._print(f"[red]broker refused the config:[/] {escape(str(data.get('reason', data.get('message', ''))))}")

    def on_journal_written(self, data: dict) -> None:
        self._print(f"[dim]journal of {len(data['originals'])} original value(s) written to {escape(data['path'])}[/]")

    def on_baseline(self, data: dict) -> None:
        runs = data.get("runs") or [data["record"]]
        for rec in runs:
            values = ", ".join(f"{k}={_fmt_value(v, self.kernel)}" for k, v in rec.values.items())
            self._print(f"[bold]baseline[/] ({rec.duration_s:.1f}s): {escape(self.metric)}={_fmt_num(rec.metric)}"
                        f"   [dim]{escape(values)}[/]")
        self._advance(len(runs), data.get("mean"))

    def on_noise(self, data: dict) -> None:
        cv = data.get("cv")
        if cv is None:
            text = f"unknown ({data['runs']} baseline run: no spread to measure)"
        else:
            text = f"{cv * 100:.1f} % run to run (coefficient of variation of {data['runs']} baseline runs)"
            if data.get("min_detectable_gain") is not None:
                text += f"; smallest gain the verification can show: about {data['min_detectable_gain'] * 100:.0f} %"
        self._header(text)

    def on_step(self, data: dict) -> None:
        rec = data["record"]
        values = ", ".join(f"{k}={_fmt_value(v, self.kernel)}" for k, v in rec.values.items())
        label = "recheck" if rec.phase == "recheck" else "step"
        if rec.failed:
            self._print(f"[red]{label} {rec.index:>3} failed[/] {escape(values)}: {escape(rec.error or '')}")
        else:
            best = " [bold yellow]new best[/]" if rec.is_best else ""
            comps = rec.components
            parts = ""
            if "performance" in comps and "stability" in comps:
                parts = f" (perf {comps['performance']:+.3f}, stab {comps['stability']:.2f})"
            self._print(
                f"{label} {rec.index:>3} ({rec.duration_s:.1f}s) {escape(values)} -> {escape(self.metric)}="
                f"{_fmt_num(rec.metric)} reward {rec.reward:+.3f}{parts} {_pct(rec.improvement_pct)}{best}"
            )
        best_rec = data.get("best")
        self._advance(1, best_rec.metric if best_rec else None)

    def _advance(self, n: int, best: float | None) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, advance=n, best=f"best {_fmt_num(best)}")

    def on_verify_started(self, data: dict) -> None:
        self._print(f"[bold]verifying[/]: {data['runs']} runs each of the baseline and the chosen configuration, "
                    "alternating")

    def on_verify_run(self, data: dict) -> None:
        if data["error"]:
            self._print(f"  {data['label']} run {data['index'] + 1} [red]failed[/]: {escape(data['error'])}")
        else:
            self._print(f"  {data['label']:<8} run {data['index'] + 1}: {escape(self.metric)}={_fmt_num(data['metric'])}")

    def on_verify_finished(self, data: dict) -> None:
        pass  # shown in the summary

    def on_restored(self, data: dict) -> None:
        if data.get("changed") and not self.simulated:
            self._print(f"[green]✓[/] restored {len(data['values'])} original value(s)")

    def on_restore_failed(self, data: dict) -> None:
        for failure in data["failures"]:
            self._print(f"[red]not restored:[/] {escape(failure)}")

    # ---------------------------------------------------------------- summary
    def on_run_finished(self, data: dict) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        self._header(None)
        r = data["result"]
        if r.baseline is None:
            self.rc.print("[red]stopped before the baseline was measured[/]: nothing was changed (the error follows)")
            if r.run_dir:
                self.rc.print(f"[dim]run directory: {escape(r.run_dir)}[/]", soft_wrap=True)
            return
        self.rc.print(Panel(summary_table(r), title="Optimization complete" + (" (SIMULATED)" if r.simulated else ""),
                            title_align="left", expand=False))
        verdict = r.extra.get("verdict")
        if r.best_config and verdict != "no improvement":
            kernel = numeric_bools(r.target)
            rows = [(escape(name), escape(_target_value(r.target, name, r.baseline_config.get(name, "-"), kernel)),
                     escape(_target_value(r.target, name, value, kernel)))
                    for name, value in r.best_config.items()]
            title = "Chosen configuration" if verdict == "better" else "Best candidate (not shown better)"
            show_table(self.rc, knob_table(title, ("baseline", "best"), rows), rows)
        for line in conclusion(r):
            self.rc.print(line, soft_wrap=True, highlight=False)
        if r.simulated:
            self.rc.print(SIMULATED)
        if r.run_dir:
            self.rc.print(f"[dim]run directory: {escape(r.run_dir)}[/]", soft_wrap=True)


VERDICT_COLOURS = {"better": "green", "worse": "red", "failed": "red"}


def summary_table(r) -> Table:
    """The numbers of a finished knob run: baseline with its noise, the chosen
    configuration, the single best sample (labelled), the verification."""
    unit = escape(r.metric or "")
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Workload", escape(r.workload))
    search = r.extra.get("search") or {}
    table.add_row("Search", escape(str(search.get("used") or r.algorithm)))
    table.add_row("Evaluations", f"{r.evaluations} of {r.budget} ({r.failed_steps} failed)")
    table.add_row("Stopped", escape(r.stopped_reason))
    runs = r.extra.get("baseline_runs") or []
    cv = r.extra.get("noise_cv")
    noise = f", noise {cv * 100:.1f} %" if cv is not None else ""
    table.add_row("Baseline", f"{_fmt_num(r.baseline)} {unit} (mean of {len(runs)} run(s){noise})")
    best_runs = r.extra.get("best_runs") or []
    verdict = r.extra.get("verdict")
    if verdict == "no improvement":
        table.add_row("Best", "the baseline: no configuration beat it")
    elif r.best is not None:
        table.add_row("Best", f"{_fmt_num(r.best)} {unit} (mean of {len(best_runs)} measurement(s) of the chosen "
                              f"configuration; estimate {_pct(r.extra.get('improvement_estimate'))})")
    sample = r.extra.get("best_sample")
    if sample:
        table.add_row("Best sample", f"{_fmt_num(sample['metric'])} {unit} at evaluation {sample['step']} "
                                     f"({_pct(sample['improvement'])}, one measurement: [dim]unverified, biased up by "
                                     "its noise[/])")
    ver = r.extra.get("verification")
    if ver:
        if ver.get("baseline_mean") is not None and ver.get("best_mean") is not None:
            table.add_row("Verified", f"baseline {_fmt_num(ver['baseline_mean'])} ± {_fmt_num(ver['baseline_std'])}, "
                                      f"best {_fmt_num(ver['best_mean'])} ± {_fmt_num(ver['best_std'])} "
                                      f"({len(ver['best_runs'])} runs each, alternating)")
        table.add_row("Verdict", verdict_text(ver))
    basis = r.extra.get("improvement_basis", "")
    table.add_row("Improvement", f"{_pct(r.improvement)} [dim]({escape(basis)})[/]")
    return table


def verdict_text(ver: dict) -> str:
    verdict = ver.get("verdict", "?")
    colour = VERDICT_COLOURS.get(verdict, "yellow")
    parts = [f"[{colour}]{verdict}[/]"]
    if ver.get("improvement") is not None:
        parts.append(_pct(ver["improvement"]))
    if ver.get("ci_low") is not None:
        parts.append(f"(95 % CI {ver['ci_low']:+.1f} .. {ver['ci_high']:+.1f} %)")
    if ver.get("p_value") is not None:
        parts.append(f"p = {ver['p_value']:.3g} (Welch's t-test, {ver['df']:.1f} df)" if ver.get("df")
                     else f"p = {ver['p_value']:.3g}")
    if verdict == "failed" and ver.get("failures"):
        parts.append(f"({len(ver['failures'])} run(s) failed: {escape(ver['failures'][0])})")
    return " ".join(parts)


def conclusion(r) -> list[str]:
    """What to do next: apply lines only for a verified gain on a real run."""
    verdict = r.extra.get("verdict")
    if verdict == "better":
        lines = []
        if r.applicable and r.best_config:
            from cli_ai.results import sysctl_commands

            if r.simulated:
                lines.append("These lines would apply it until the next reboot (but it was found on a simulated "
                             "system: run without --dry-run to measure for real):")
            else:
                lines.append("The gain held up under verification. To apply this configuration until the next "
                             "reboot, run:")
            lines += [f"  {escape(line)}" for line in sysctl_commands(r.best_config)]
            if r.run_dir and not r.simulated:
                lines.append(f"or: cli-ai apply {escape(r.run_dir)}/result.json   (journaled; undo with "
                             "cli-ai rollback)")
                lines.append(f"To keep it across reboots: cli-ai apply {escape(r.run_dir)}/result.json --persist "
                             "(also writes /etc/sysctl.d/99-cli-ai.conf), or cli-ai export "
                             f"{escape(r.run_dir)}/result.json for a sysctl.d file of your own.")
        elif r.best_config and not r.simulated:
            from cli_ai.targets import TARGETS

            t = TARGETS.get(r.target)
            if t is not None and t.exports and r.run_dir:
                lines.append("The gain held up under verification. The chosen settings:")
                lines += [f"  {escape(name)} = {escape(_target_value(r.target, name, v, False))}"
                          for name, v in r.best_config.items()]
                formats = list(t.exports)
                lines.append(f"To deploy them: cli-ai export {escape(r.run_dir)}/result.json --format {formats[0]}"
                             + (f" (or {', '.join(formats[1:])})" if len(formats) > 1 else ""))
            else:
                lines.append(f"The gain held up under verification; use the chosen configuration in the {r.target} "
                             "it belongs to.")
        return lines
    if verdict == "no improvement":
        return ["[bold]No configuration beat the baseline: keep the current settings.[/]"]
    if verdict == "not verified":
        stopped = r.stopped_reason or ""
        why = "--verify 0" if stopped in ("", "budget spent") else f"the run stopped early: {escape(stopped)}"
        return [f"[yellow]Not verified[/] ({why}): the gain above is an estimate from the search itself, so "
                "nothing is offered to apply; run again with --verify 3 for proof."]
    if verdict == "failed":
        return ["[red]The verification failed[/], so no improvement is shown: keep the current settings."]
    if verdict == "worse":
        return ["[bold]The chosen configuration measured worse than the baseline on re-measurement: keep the "
                "current settings.[/]"]
    return ["[bold]No significant improvement was found: keep the current settings.[/] The difference between "
            "the best configuration and the baseline is within the noise of the benchmark."]


def confirmation_screen(console: Console, run) -> None:
    """What a real run will change, shown before asking."""
    from cli_ai.pipeline import benchmark_text
    from cli_ai.tactician.knobs import describe_range

    rc = console.err
    kernel = numeric_bools(run.spec.target)
    rows = [(escape(knob.name), escape(_fmt_value(run.current.get(knob.name, "-"), kernel)),
             escape(describe_range(knob.spec, kernel)))
            for knob in run.space.knobs]
    table = knob_table("This run will change these values on this machine", ("current", "search range"), rows)
    from cli_ai.targets import get_target

    if get_target(run.spec.target).confirms_values:
        show_table(rc, table, rows)
        rc.print("Every original value is journaled before the first write and restored at the end, on Ctrl+C or "
                 "SIGTERM; after a crash, `cli-ai rollback` restores them.")
    rc.print(f"Benchmark ({run.budget} evaluations): {escape(benchmark_text(run.spec) or '-')}", soft_wrap=True)
    plan = run.checked.command
    if plan is not None and plan.shell:
        console.show_command("This benchmark runs through /bin/sh (--allow-shell). Exact command:", plan.text)
    elif plan is not None and plan.interpreter:
        rc.print(f"[yellow]--allow-shell:[/] {escape(plan.interpreter)}")
    for what, text in get_target(run.spec.target).runs(run):
        console.show_command(f"{what}:", text)



def optimize_screen(console: Console, run, estimate: str) -> None:
    """optimize's confirmation screen: what changes, how it is measured, how long."""
    from cli_ai.pipeline import benchmark_text
    from cli_ai.tactician.knobs import describe_range

    rc = console.err
    rows = []
    kernel = numeric_bools(run.spec.target)
    for knob in run.space.knobs:
        entry = run.checked.report.entries.get(knob.name)
        rows.append((escape(knob.name), escape(_fmt_value(run.current.get(knob.name, "-"), kernel)),
                     escape(describe_range(knob.spec, kernel)), escape(entry.range_text()) if entry else "-"))
    show_table(rc, knob_table("Plan", ("current", "search range", "safe range"), rows), rows)
    rc.print(f"Benchmark: {escape(benchmark_text(run.spec) or '-')}", soft_wrap=True)
    rc.print(f"Metric:    {escape(run.spec.reward_metric or '-')} ({run.spec.metric_direction})")
    rc.print(f"Budget:    {run.budget} evaluations")
    rc.print(f"Time:      {escape(estimate)}", soft_wrap=True)
    if not run.dry_run:
        from cli_ai.targets import get_target

        for what, text in get_target(run.spec.target).runs(run):
            console.show_command(f"{what}:", text)
    if run.dry_run:
        rc.print("[yellow]--dry-run:[/] the values above are not written; the benchmark does not run.")
    else:
        rc.print("Every original value is journaled first and restored at the end (cli-ai rollback after a crash).")
