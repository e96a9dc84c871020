"""The sysctl target: kernel parameters under /proc/sys, checked against the
catalogue's safe ranges, measured by the spec's benchmark; a result verified
better can be applied and exported (sysctl.d, TuneD)."""

from __future__ import annotations

import os
from typing import Any, Sequence

from cli_ai.core.backend import Value
from cli_ai.errors import CliAiError, SafetyError
from cli_ai.safety.catalog import lookup
from cli_ai.safety.check import SafetyReport, available_values, check_spec
from cli_ai.safety.constraints import load_constraints, memory_kib
from cli_ai.safety.constraints import problems as rule_problems
from cli_ai.spec import TuningSpec
from cli_ai.targets.base import Target, TargetSession
from cli_ai.targets.exports import SYSCTL_EXPORTS, checked_result_values


class SysctlTarget(Target):
    name = "sysctl"
    confirms_values = True
    applicable = True
    planning = "templates"
    exports = SYSCTL_EXPORTS
    numeric_bools = True

    def knob_rules(self, space: Any, *, dry_run: bool, proc_root: str):
        """The catalogue's rules between sysctls, against the kernel's current
        values of the params the run does not tune."""
        from cli_ai.safety.constraints import repair

        fixed = rule_partners(space.names, dry_run=dry_run, proc_root=proc_root)
        bounds, mem = space.bounds(), memory_kib()
        return lambda values: repair(values, bounds, fixed=fixed, mem_kib=mem)

    def doctor_checks(self, proc_root: str):
        from pathlib import Path

        is_root = os.geteuid() == 0
        probe = Path(proc_root) / "vm" / "swappiness"
        writable = os.access(probe, os.W_OK)
        return [
            ("running as root", is_root, "yes" if is_root else "no: real tuning needs root; --dry-run does not"),
            ("/proc/sys writable", writable, str(probe) + (" is writable" if writable else " is read-only here")),
        ]

    def result_values(self, result):
        from cli_ai.safety.check import param_name_problem

        def entry_of(name: str):
            why = param_name_problem(name)
            entry = lookup(name) if why is None else None
            return entry, why or (None if entry is not None else "not in the safety catalogue")

        values = checked_result_values(result, entry_of)
        broken = rule_problems(values, mem_kib=memory_kib())
        if broken:
            raise SafetyError(f"{len(broken)} rule(s) between params broken", problems=broken)
        return values

    def check(self, spec: TuningSpec, *, clamp: bool, dry_run: bool, proc_root: str) -> SafetyReport:
        """The catalogue's checks; on a dry run a param this kernel lacks is a
        warning (nothing is written), not a refusal."""
        from cli_ai.tactician.backends.sysctl import SysctlBackend

        backend = SysctlBackend(proc_root)
        report = check_spec(
            spec,
            clamp=clamp,
            exists=None if dry_run else backend.exists,
            check_available=None if dry_run else (lambda n: available_values(n, proc_root)),
            fixed=rule_partners(spec.params, dry_run=dry_run, proc_root=proc_root),
            mem_kib=memory_kib(),
        )
        if dry_run:
            for name in spec.params:
                if not backend.exists(name):
                    report.warnings.append(f"{name} does not exist on this kernel; the dry run simulates it anyway")
        return report

    def knob_ordering(self, param: str) -> str | None:
        entry = lookup(param)
        return entry.ordered if entry else None

    def netns_params(self, names: Sequence[str]) -> list[str]:
        return [n for n in names if (lookup(n) and lookup(n).netns)]

    def current_values(self, spec: TuningSpec, space: Any, *, dry_run: bool, proc_root: str) -> dict[str, Value]:
        """This machine's values (read-only, also on a dry run, where a param
        the kernel lacks starts from the catalogue's default)."""
        from cli_ai.tactician.backends.sysctl import SysctlBackend

        backend = SysctlBackend(proc_root)
        out: dict[str, Value] = {}
        for knob in space.knobs:
            try:
                out[knob.name] = backend.read([knob.name])[knob.name]
            except CliAiError:
                if not dry_run:
                    raise
                entry = lookup(knob.name)
                out[knob.name] = entry.default if entry and entry.default is not None else knob.default_value()
        return out

    def writes_machine(self, run: Any) -> bool:
        return not run.dry_run

    def require_access(self, names: Sequence[str], *, dry_run: bool, proc_root: str) -> None:
        if dry_run:
            return
        from cli_ai.tactician.backends.sysctl import SysctlBackend

        backend = SysctlBackend(proc_root)
        if os.geteuid() != 0:
            raise SafetyError("writing /proc/sys needs root: run with sudo, or try it first with --dry-run")
        read_only = [n for n in names if not backend.writable(n)]
        if read_only:
            raise SafetyError(
                f"{', '.join(read_only)}: read-only here (inside a container or a child network namespace these "
                "mirror the host); drop them from the spec or tune on the host"
            )

    def session(self, run: Any, options: Any, sink) -> TargetSession:
        from cli_ai.tactician.backends.sysctl import SysctlBackend
        from cli_ai.targets.evaluation import benchmark_session

        backend = None if run.dry_run else SysctlBackend(options.proc_root)
        return benchmark_session(run, options, backend=backend)


def rule_partners(names, *, dry_run: bool, proc_root: str) -> dict[str, Value]:
    """The current values of the params that share a rule with one of `names`
    but are not among them (the catalogue's defaults on a dry run)."""
    names = set(names)
    partners = set()
    for c in load_constraints():
        pair = {getattr(c, "low", None), getattr(c, "high", None)} - {None}
        if pair & names:
            partners |= pair - names
    if not partners:
        return {}
    if dry_run:
        return {n: lookup(n).default for n in partners if lookup(n) is not None and lookup(n).default is not None}
    from cli_ai.tactician.backends.sysctl import SysctlBackend

    backend = SysctlBackend(proc_root)
    present = [n for n in partners if backend.exists(n)]
    try:
        return backend.read(present)
    except CliAiError:
        return {}
