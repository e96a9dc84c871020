"""The `cli-ai` command: parses arguments and delegates; never prints itself.

Imports of the pipeline, torch and stable-baselines3 happen inside commands so
that `cli-ai --help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="cli-ai",
    help="Agentic command-line tuner for Linux: plan a tuning spec from a goal, "
    "search it with reinforcement learning, keep the machine safe.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion: bash, zsh, fish (Typer's own)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


from cli_ai.cli_support import State as _State  # noqa: E402
from cli_ai.cli_support import handled  # noqa: E402
from cli_ai.cli_support import make_console as _console  # noqa: E402


def _version(value: bool) -> None:
    if value:
        from cli_ai import __version__

        typer.echo(f"cli-ai {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors (also accepted after the command)."),
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    _State.debug = _State.debug or debug  # `run` takes a --debug given after the command


SPEC_ARG = typer.Argument(..., help="Path of a tuning spec (JSON).", show_default=False)


@app.command()
@handled
def validate(
    spec: Path = SPEC_ARG,
    clamp: bool = typer.Option(False, "--clamp", help="Narrow ranges outside the safe ones instead of refusing."),
    allow_shell: bool = typer.Option(False, "--allow-shell", help="Accept shell syntax in the benchmark command."),
) -> None:
    """Check a spec: schema, catalogue ranges, params on this kernel, benchmark command."""
    from cli_ai import pipeline

    console = _console()
    checked = pipeline.validate(spec, clamp=clamp, allow_shell=allow_shell)
    console.spec_summary(checked.spec, checked.report, pipeline.benchmark_text(checked.spec))
    console.success(f"{spec}: valid")


@app.command()
@handled
def params(
    search: Optional[str] = typer.Argument(None, help="Show only params whose name or description contains this."),
    json_out: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """List the safety catalogue: name, current value here, safe range, description."""
    from cli_ai import pipeline

    _console(json_mode=json_out).params_table(pipeline.param_rows(search))


@app.command()
@handled
def rollback(
    force: bool = typer.Option(False, "--force", help="Restore even from another network namespace or while the writer lives."),
    discard: bool = typer.Option(False, "--discard", help="Delete the journal without restoring (its namespace is gone)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Restore originals outside the safe range without asking."),
) -> None:
    """Restore every value a crashed or killed run left changed (from the journal)."""
    from cli_ai import pipeline
    from cli_ai.errors import OriginalsOutOfRange

    console = _console()
    try:
        outcome = pipeline.rollback(force=force, discard=discard, allow_out_of_range=yes)
    except OriginalsOutOfRange as exc:
        # A value outside the safe range may be this machine's real original:
        # restored only when the person says so.
        for line in exc.lines()[:-1]:
            console.warn(line)
        pipeline.require_confirmation(console, "Restore these values outside the safe range", yes=False)
        outcome = pipeline.rollback(force=force, discard=discard, allow_out_of_range=True)
    console.rollback_report(outcome)
    pipeline.raise_for_rollback_failures(outcome)


@app.command()
@handled
def doctor(json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Check this machine: root, /proc/sys, kernel, benchmark tools, LLM endpoint, system profile."""
    from cli_ai import pipeline
    from cli_ai.strategist import gather_profile

    _console(json_mode=json_out).doctor_report(pipeline.doctor_checks(), gather_profile().to_dict())


@app.command()
@handled
def tune(
    spec: Path = SPEC_ARG,
    dry_run: bool = typer.Option(False, "--dry-run", help="Simulate: no value written, no benchmark run, no root needed."),
    algo: Optional[str] = typer.Option(None, "--algo", help="auto | ppo | ddpg | td3 | sac | per-ddpg | random | sarsa | dqn (auto: the target's default search; sarsa and dqn for discrete targets)"),
    budget: Optional[int] = typer.Option(None, "--budget", min=2, help="Maximum benchmark evaluations, baseline included."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Seed for a reproducible run."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Where run directories go (default: ./runs)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    allow_shell: bool = typer.Option(False, "--allow-shell", help="Let the benchmark command use shell syntax (confirmed)."),
    clamp: bool = typer.Option(False, "--clamp", help="Narrow ranges outside the safe ones instead of refusing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final summary (the result table and the run directory): no header, progress or per-step lines."),
    verify: Optional[int] = typer.Option(None, "--verify", min=0, max=50, help="Re-measure baseline and best N times each, alternately, and test the gain (Welch); default 3, 0 skips (then nothing is offered to apply)."),
    tensorboard: Optional[Path] = typer.Option(None, "--tensorboard", help="Write the training log and the reward breakdown as TensorBoard events here."),
    replay_buffer_size: Optional[int] = typer.Option(None, "--replay-buffer-size", min=1, help="PER buffer size (per-ddpg on the mosquitto target; default 100000)."),
    replay_alpha: Optional[float] = typer.Option(None, "--replay-alpha", min=0, help="PER prioritization strength alpha."),
    replay_beta: Optional[float] = typer.Option(None, "--replay-beta", min=0, max=1, help="PER importance-sampling beta at the start."),
    replay_beta_increment: Optional[float] = typer.Option(None, "--replay-beta-increment", min=0, help="PER beta increase per sampling."),
    enable_workload: Optional[bool] = typer.Option(None, "--enable-workload/--no-workload", help="Mosquitto: run the MQTT workload while measuring (default on)."),
    total_timesteps: Optional[int] = typer.Option(None, "--total-timesteps", min=1, help="Mosquitto (seed 000): search steps after the baseline runs; the budget is N plus the baseline runs and the re-measurements."),
) -> None:
    """Search a spec's space for the best configuration (apply, benchmark, learn, restore)."""
    from cli_ai import pipeline, tuning
    from cli_ai.console.tune import TuneRenderer, confirmation_screen

    console = _console(json_mode=json_out, quiet=quiet)
    options = tuning.TuneOptions(dry_run=dry_run, algorithm=algo, budget=budget, seed=seed,
                                 output_dir=str(output_dir) if output_dir else None, yes=yes,
                                 allow_shell=allow_shell, clamp=clamp, verify=verify,
                                 tensorboard=str(tensorboard) if tensorboard else None,
                                 broker={"replay_buffer_size": replay_buffer_size, "replay_alpha": replay_alpha,
                                         "replay_beta": replay_beta, "replay_beta_increment": replay_beta_increment,
                                         "enable_workload": enable_workload, "total_timesteps": total_timesteps})

    def confirm(run) -> None:
        # Every real run starts a program or changes something (a sysctl, a
        # broker's config, the benchmark itself): it asks first, or needs --yes.
        if run.dry_run:
            return
        confirmation_screen(console, run)
        pipeline.require_confirmation(console, "Start tuning", yes=yes)

    result = tuning.tune(spec, options, sink=TuneRenderer(console), confirm=confirm)
    if json_out:
        console.json(result.to_json())


GOAL_ARG = typer.Argument(..., help='What to optimize, in plain words, e.g. "optimize this system for database workload".', show_default=False)
PROVIDER_OPT = typer.Option("auto", "--provider", help="auto (LLM if configured, else offline) | openai | offline")
MODEL_OPT = typer.Option(None, "--model", help="LLM model (default: $CLI_AI_MODEL, else the strategist's default).")
BASE_URL_OPT = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL).")
TIMEOUT_OPT = typer.Option(None, "--timeout", min=1, help="Seconds to wait for the LLM per request (default 60; 600 for a server on this machine or the local network, whose timeouts are not retried).", show_default=False)
FORMAT_OPT = typer.Option(None, "--response-format", help="Pin the LLM answer format: json_schema | json_object | text (default: $CLI_AI_RESPONSE_FORMAT, else the one this endpoint and model accepted last, found by trying them in that order).", show_default=False)
REPAIRS_OPT = typer.Option(2, "--max-repairs", min=0, max=10, help="Rounds of sending errors back to the LLM.")


@app.command()
@handled
def plan(
    goal: str = GOAL_ARG,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the spec to this file."),
    provider: str = PROVIDER_OPT,
    model: Optional[str] = MODEL_OPT,
    base_url: Optional[str] = BASE_URL_OPT,
    timeout: Optional[float] = TIMEOUT_OPT,
    max_repairs: int = REPAIRS_OPT,
    response_format: Optional[str] = FORMAT_OPT,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every round with the LLM on stderr: format, answer, problems, tokens, seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print the plan as JSON (on failure, a JSON error object)."),
) -> None:
    """Turn a goal into a validated tuning spec and show why (nothing runs)."""
    from cli_ai import optimize
    from cli_ai.console.plan import render_failed_plan, render_plan
    from cli_ai.errors import CliAiError

    console = _console(json_mode=json_out)
    try:
        result, _ = optimize.make_plan(goal, optimize.PlanOptions(provider, model, base_url, timeout, max_repairs,
                                                                  response_format))
    except CliAiError as exc:
        render_failed_plan(console, exc, verbose=verbose)
        raise
    render_plan(console, result, verbose=verbose)
    if output is not None:
        optimize.write_spec(output, result.spec_dict)
        console.success(f"spec written to {output}; next: cli-ai tune {output} --dry-run")


@app.command()
@handled
def optimize(
    goal: Optional[str] = typer.Argument(None, help='What to optimize, in plain words, e.g. "optimize this system for database workload".', show_default=False),
    spec_file: Optional[Path] = typer.Option(None, "--spec", help="Skip the strategist: optimize this ready spec (then GOAL is optional)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Simulate the tune: nothing written, no benchmark run."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before tuning."),
    apply_best: bool = typer.Option(False, "--apply", help="Apply the best configuration at the end without asking, if its verification says better."),
    force: bool = typer.Option(False, "--force", help="With --apply: apply even when the verification did not show a gain (recorded in the result)."),
    budget: Optional[int] = typer.Option(None, "--budget", min=2, help="Maximum benchmark evaluations."),
    algo: Optional[str] = typer.Option(None, "--algo", help="auto | ppo | ddpg | td3 | sac | per-ddpg | random | sarsa | dqn (auto: the target's default search)"),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Seed for a reproducible run."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Where run directories go (default: ./runs)."),
    provider: str = PROVIDER_OPT,
    model: Optional[str] = MODEL_OPT,
    base_url: Optional[str] = BASE_URL_OPT,
    timeout: Optional[float] = TIMEOUT_OPT,
    max_repairs: int = REPAIRS_OPT,
    response_format: Optional[str] = FORMAT_OPT,
    clamp: bool = typer.Option(False, "--clamp", help="Narrow ranges outside the safe ones instead of refusing."),
    verify: Optional[int] = typer.Option(None, "--verify", min=0, max=50, help="Re-measure baseline and best N times each at the end, alternately (default 3; 0 skips, and then nothing is applied)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every round with the LLM on stderr: format, answer, problems, tokens, seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout."),
) -> None:
    """Plan from a goal, confirm, tune, verify, summarize, and offer to apply a verified gain."""
    import sys as _sys

    from cli_ai import optimize as opt
    from cli_ai import tuning
    from cli_ai.console.optimize import OptimizeScreen

    request = opt.OptimizeRequest(
        goal=goal, spec_file=spec_file, plan=opt.PlanOptions(provider, model, base_url, timeout, max_repairs, response_format),
        tune=tuning.TuneOptions(dry_run=dry_run, algorithm=algo, budget=budget, seed=seed,
                                output_dir=str(output_dir) if output_dir else None, yes=yes, clamp=clamp,
                                verify=verify),
        apply_best=apply_best, force=force, yes=yes, json_out=json_out, interactive=_sys.stdin.isatty(),
    )
    from cli_ai.console.plan import render_failed_plan
    from cli_ai.errors import StrategistError

    console = _console(json_mode=json_out)
    try:
        opt.run_optimize(request, OptimizeScreen(console, json_out=json_out, verbose=verbose))
    except StrategistError as exc:
        if verbose and not json_out:
            render_failed_plan(console, exc, verbose=True)
        raise


RESULT_ARG = typer.Argument(..., help="A result.json (or the run directory holding it).", show_default=False)


@app.command("apply")
@handled
def apply_cmd(
    result: Path = RESULT_ARG,
    persist: bool = typer.Option(False, "--persist", help=(
        "Also write /etc/sysctl.d/99-cli-ai.conf, so the values survive a reboot (an existing one is backed up). "
        "The environment variable CLI_AI_SYSCTL_DIR names another directory instead of /etc/sysctl.d.")),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    allow_simulated: bool = typer.Option(False, "--allow-simulated", help="Apply a result found by a --dry-run."),
    force: bool = typer.Option(False, "--force", help="Apply although the result's verification did not say better (recorded in the result)."),
) -> None:
    """Apply a result's best configuration, if its verification showed a gain (journaled: `cli-ai rollback` undoes it)."""
    from cli_ai import apply as applying
    from cli_ai import pipeline
    from cli_ai.console.apply import apply_screen, applied

    console = _console()
    plan = applying.prepare_apply(result, persist=persist, allow_simulated=allow_simulated, force=force)
    apply_screen(console, plan)
    pipeline.require_confirmation(console, "Apply these values", yes=yes)
    applied(console, applying.apply(plan))


@app.command("export")
@handled
def export_cmd(
    result: Path = RESULT_ARG,
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="sysctl.d | tuned | script for a sysctl result "
                                      "(default sysctl.d); mosquitto.conf for a mosquitto one; sql | conf for a "
                                      "postgres one (default sql)"),
    force: bool = typer.Option(False, "--force", help="export a configuration that was not verified better "
                               "(the file says so)"),
) -> None:
    """Print a result's verified-better configuration in a deployable form: a sysctl.d file, a TuneD profile or a
    shell script (sysctl), a mosquitto.conf snippet (mosquitto), ALTER SYSTEM statements or a postgresql.conf
    snippet (postgres)."""
    from cli_ai import apply as applying

    _console().raw(applying.export(result, fmt, force=force))


examples_app = typer.Typer(help="The ready specs that ship with cli-ai: list them, copy one out.",
                            invoke_without_command=True, rich_markup_mode=None)
app.add_typer(examples_app, name="examples")


@examples_app.callback()
@handled
def examples_list(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the packaged example specs (name, target, workload); `cli-ai examples copy NAME` copies one here."""
    if ctx.invoked_subcommand is not None:
        return
    from cli_ai.examples import examples_dir, list_examples

    _console(json_mode=json_out).examples_table(list_examples(), examples_dir())


@examples_app.command("copy")
@handled
def examples_copy(
    name: str = typer.Argument(..., help="An example's name, as `cli-ai examples` lists it."),
    directory: Path = typer.Argument(Path("."), help="Where to put it (default: here)."),
    force: bool = typer.Option(False, "--force", help="Overwrite a file of that name."),
) -> None:
    """Copy an example spec out, to edit it and run it with `cli-ai validate` / `cli-ai tune`."""
    from cli_ai.examples import copy_example

    dest = copy_example(name, directory, force=force)
    _console().success(f"copied {name} to {dest}")


bench_app = typer.Typer(help="Built-in benchmarks.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(bench_app, name="bench")


@bench_app.command("tcp-accept")
@handled
def bench_tcp_accept(
    connections: int = typer.Option(2000, "--connections", min=1, help="Connections to open in total."),
    concurrency: int = typer.Option(512, "--concurrency", min=1, help="Connections in flight at once."),
    accept_delay_ms: float = typer.Option(0.2, "--accept-delay-ms", min=0, help="Pause of the listener after each accept."),
    timeout: float = typer.Option(15.0, "--timeout", min=0.1, help="Give up on one connection after this many seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Accept storm on loopback: connections_per_second depends on net.core.somaxconn and the SYN backlog."""
    from cli_ai import pipeline

    result = pipeline.bench_tcp_accept(connections=connections, concurrency=concurrency,
                                       accept_delay_ms=accept_delay_ms, timeout=timeout)
    _console(json_mode=json_out).bench_result(result, json_out=json_out)


from cli_ai.spec.builtin import PROBE_RESOURCES  # noqa: E402  (data only)

PROBE_HELP = [f"{r.name} ({r.unit})" for r in PROBE_RESOURCES.values()]


@bench_app.command("probe")
@handled
def bench_probe(
    resource: str = typer.Option(..., "--resource", help="What to ask the kernel for: " + " | ".join(PROBE_HELP)),
    count: int = typer.Option(..., "--count", help="How many units (see --resource for each one's unit)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Capacity probe: ask the kernel for COUNT units of a limited resource; `obtained` is how many it granted."""
    from cli_ai import pipeline

    result = pipeline.bench_probe(resource=resource, count=count)
    _console(json_mode=json_out).bench_result(result, json_out=json_out)


from cli_ai.autoscale.cli import autoscale_app  # noqa: E402  (typer only at import time)

from cli_ai.scheduler.cli import scheduler_app  # noqa: E402

app.add_typer(autoscale_app, name="autoscale")
app.add_typer(scheduler_app, name="scheduler")


def main() -> None:
    from cli_ai.cli_support import run

    run(app)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
