"""The steps of a run as plain functions: load and check a spec, list params,
diagnose the machine, roll back. The CLI calls these; so can Python code."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli_ai.errors import ConfirmationRefused, SafetyError
from cli_ai.safety.catalog import search
from cli_ai.safety.check import CommandPlan, SafetyReport, check_argv, plan_command
from cli_ai.spec import TuningSpec, load_spec
from cli_ai.tactician.backends.sysctl import PROC_SYS, SysctlBackend, format_sysctl_value

BENCHMARK_TOOLS = ("pgbench", "wrk", "sysbench", "redis-benchmark", "fio", "mosquitto_pub")  # the broker: the mosquitto target's own check


@dataclass
class CheckedSpec:
    """A spec that passed the schema and the safety checks."""

    spec: TuningSpec
    report: SafetyReport
    command: CommandPlan | None


def benchmark_text(spec: TuningSpec) -> str | None:
    b = spec.benchmark
    if b is None:
        return None
    if b.command is not None:
        return b.command
    if b.args is not None:
        import shlex

        argv = list(b.args) if b.runner == "command" else [b.runner, *b.args]
        return shlex.join(argv)
    return b.runner


def check_loaded_spec(
    spec: TuningSpec,
    *,
    clamp: bool = False,
    allow_shell: bool = False,
    dry_run: bool = False,
    proc_root: str = PROC_SYS,
) -> CheckedSpec:
    """Safety checks for a loaded spec: its target's (`Target.check`), then the
    benchmark command's. On a dry run a param this kernel lacks is a warning
    (nothing is written), not a refusal."""
    from cli_ai.errors import SpecError
    from cli_ai.targets import get_target

    target = get_target(spec.target)
    problem = target.algorithm_problem(spec.training_config.algorithm)
    if problem is not None:  # before the target's own checks: validate says what tune would
        raise SpecError(problem)
    report = target.check(spec, clamp=clamp, dry_run=dry_run, proc_root=proc_root)
    return CheckedSpec(spec, report, check_benchmark_command(spec, allow_shell=allow_shell))


def check_benchmark_command(spec: TuningSpec, *, allow_shell: bool = False) -> CommandPlan | None:
    """The benchmark's shell and interpreter checks (`safety.check`), over
    every value the command target's placeholders can take. Returns the plan
    of a `benchmark_command` (None for `benchmark.args`, which run as given)."""
    from cli_ai.safety.interpreters import knob_renderings

    b = spec.benchmark
    candidates = knob_renderings(spec.action_space)
    if b is not None and b.command is not None:
        return plan_command(b.command, allow_shell=allow_shell, candidates=candidates)
    if b is not None and b.args is not None:
        check_argv(b.args, allow_shell=allow_shell, runner=b.runner, candidates=candidates)
    return None


def validate(path: str | Path, *, clamp: bool = False, allow_shell: bool = False) -> CheckedSpec:
    """`cli-ai validate`: schema, semantics, catalogue, kernel presence, command."""
    return check_loaded_spec(load_spec(path), clamp=clamp, allow_shell=allow_shell)


def param_rows(term: str | None = None, proc_root: str = PROC_SYS) -> list[dict[str, Any]]:
    """The catalogue with this machine's current values (None where missing)."""
    backend = SysctlBackend(proc_root)
    rows = []
    for entry in search(term):
        try:
            current = format_sysctl_value(backend.read([entry.name])[entry.name]) if backend.exists(entry.name) else None
        except Exception:  # unreadable entries show as missing, never crash a listing
            current = None
        rows.append(
            {
                "name": entry.name,
                "current": current,
                "safe_range": entry.range_text(),
                "unit": entry.unit,
                "netns": entry.netns,
                "description": entry.description,
                "source": entry.source,
            }
        )
    return rows


def llm_configured() -> tuple[bool, str]:
    """Whether an OpenAI-compatible endpoint is configured (never reveals the key)."""
    key = bool(os.environ.get("OPENAI_API_KEY"))
    base = os.environ.get("OPENAI_BASE_URL")
    model = os.environ.get("CLI_AI_MODEL")
    if key or base:
        parts = []
        if base:
            from cli_ai.strategist.openai_strategist import display_url

            parts.append(f"base URL {display_url(base)}")  # no user:password, no query string
        parts.append("API key set" if key else "no API key")
        if model:
            parts.append(f"model {model}")
        return True, ", ".join(parts)
    return False, "no OPENAI_API_KEY or OPENAI_BASE_URL: the offline strategist plans"


# What was measured with a local model (docs/benchmarks.md, "The LLM path against a real local model").
LOCAL_LLM_TRIED = ("llama-cpp-python 0.3.16's server with SmolLM2-135M-Instruct Q4_1 on 2 CPU cores: 38-218 s a "
                   "plan, no usable spec (too small a model); larger models were not available to try here")


def doctor_checks(proc_root: str = PROC_SYS) -> list[tuple[str, bool | None, str]]:
    """What `cli-ai doctor` reports: can this machine be tuned, and with what."""
    from cli_ai.targets import TARGETS

    checks: list[tuple[str, bool | None, str]] = []
    for plugin in TARGETS.values():  # what each target needs (root and /proc/sys for sysctl, a broker, ...)
        checks.extend(plugin.doctor_checks(proc_root))
    checks.append(("kernel", True, f"{platform.system()} {platform.release()} ({platform.machine()})"))
    checks.append(("python", True, sys.version.split()[0]))
    for tool in BENCHMARK_TOOLS:
        where = shutil.which(tool)
        checks.append((f"tool: {tool}", bool(where) or None, where or "not installed"))
    pressure = Path("/proc/pressure")
    checks.append(("pressure stall info", pressure.exists() or None, "/proc/pressure present" if pressure.exists() else "absent (PSI disabled)"))
    ok, detail = llm_configured()
    checks.append(("LLM endpoint", ok or None, detail))
    if ok:
        from cli_ai.strategist.openai_strategist import describe_requests

        checks.append(("LLM requests", True, describe_requests()))
    checks.append(("LLM tried", None, LOCAL_LLM_TRIED))
    return checks


def require_confirmation(console, question: str, *, yes: bool) -> None:
    """Ask on a terminal; with no terminal on stdin, refuse unless --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfirmationRefused(
            f"{question.rstrip('?')}: needs confirmation, and stdin is not a terminal; pass --yes to confirm"
        )
    if not console.confirm(question):
        raise ConfirmationRefused("not confirmed; nothing was changed")


def bench_tcp_accept(*, connections: int, concurrency: int, accept_delay_ms: float, timeout: float):
    """`cli-ai bench tcp-accept`: one accept storm on loopback."""
    from cli_ai.errors import BenchmarkError
    from cli_ai.tactician.tcp_accept import AcceptStormConfig, loopback_is_up, raise_fd_limit, run_accept_storm

    if not loopback_is_up():
        raise BenchmarkError("tcp-accept: cannot listen on 127.0.0.1; bring loopback up (`ip link set lo up`)")
    raise_fd_limit(concurrency)
    cfg = AcceptStormConfig(connections=connections, concurrency=concurrency, accept_delay_ms=accept_delay_ms,
                            connect_timeout_s=timeout)
    result = run_accept_storm(cfg)
    if result.completed == 0:
        raise BenchmarkError(f"tcp-accept: none of {connections} connections completed")
    return result


def bench_probe(*, resource: str, count: int):
    """`cli-ai bench probe`: one capacity probe (tactician/probes.py)."""
    from cli_ai.errors import BadInputError
    from cli_ai.tactician.probes import run_probe

    try:
        return run_probe(resource, count)
    except ValueError as exc:
        raise BadInputError(str(exc)) from None


def rollback(*, force: bool = False, discard: bool = False, allow_out_of_range: bool = False):
    """`cli-ai rollback`: restore a left-over journal (see safety.guard.rollback)."""
    from cli_ai.safety.guard import rollback as _rollback
    from cli_ai.tactician.backends import backend_from_description

    return _rollback(force=force, discard=discard, backend_for=backend_from_description,
                     allow_out_of_range=allow_out_of_range)


def raise_for_rollback_failures(outcome) -> None:
    if outcome.failures:
        from cli_ai.errors import RestoreError

        raise RestoreError(
            f"{len(outcome.failures)} value(s) not restored; the journal is kept",
            problems=[f"not restored: {f}" for f in outcome.failures]
            + ["the journal is kept; fix the cause and run `cli-ai rollback` again"],
        )


__all__ = [
    "CheckedSpec",
    "validate",
    "check_loaded_spec",
    "check_benchmark_command",
    "param_rows",
    "doctor_checks",
    "require_confirmation",
    "rollback",
    "SafetyError",
]
