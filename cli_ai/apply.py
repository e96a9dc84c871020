"""`cli-ai apply` and `cli-ai export`: the best configuration of a result.

Only a gain that was shown is applied: the result's verification (baseline
and best re-measured alternately, Welch's test) must say `better`; anything
else is refused (exit 3) unless `--force`, and a forced apply is recorded in
the result file. Apply writes the values under the Guard with `keep_on_success`: the originals
are journaled before the first write, an error or Ctrl+C restores them, and on
success they stay recorded in `applied.json` so `cli-ai rollback` undoes the
apply. `--persist` also writes a sysctl.d file (backing up an existing one),
which rollback restores too. A target whose values live elsewhere
(`Target.applies_through_backend`: postgres, on the run's attached server)
gives its own backend; the Guard and applied.json are the same. Export only
prints.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from cli_ai.errors import BadInputError, SafetyError
from cli_ai.results import load_result
from cli_ai.safety.catalog import lookup
from cli_ai.safety.files import PERSIST_FILE, sysctl_d_dir  # noqa: F401 - rollback knows them too
from cli_ai.core.backend import Value
from cli_ai.tactician.backends.sysctl import PROC_SYS, SysctlBackend
from cli_ai.targets.exports import comment, render_sysctl_d



@dataclass
class ApplyPlan:
    result: dict[str, Any]
    values: dict[str, Value]
    current: dict[str, Value] = field(default_factory=dict)
    persist_path: Path | None = None
    forced: str | None = None  # why the verification did not allow it, when --force overrode that
    backend: Any = None  # a target's own backend (postgres: an attached server); None: the kernel's sysctls


def verified_gain_problem(result: Mapping[str, Any]) -> str | None:
    """Why a result's best configuration was not shown to be better, or None
    when its verification says `better` (the only case apply goes ahead)."""
    ver = result.get("verification")
    verdict = result.get("verdict")
    if not isinstance(ver, dict):
        if verdict == "no improvement":
            return "no configuration beat the baseline, so there is nothing better to apply; keep the current settings"
        return ("its gain was never verified (the run had --verify 0, or predates verification), so it may be "
                "noise; tune again with --verify 3")
    v = ver.get("verdict")
    if v == "better" and verdict == "better":
        return None
    p = ver.get("p_value")
    p_text = f", p = {p:.3g}" if isinstance(p, (int, float)) and not isinstance(p, bool) and math.isfinite(p) else ""
    if v == "worse":
        return f"its verification found the configuration worse than the baseline{p_text}; keep the current settings"
    if v == "failed":
        return "its verification failed (a run of the best configuration failed), so no gain was shown"
    return (f"its verification found no significant improvement ({v or 'no verdict'}{p_text}): the difference is "
            "within the benchmark's noise; keep the current settings")


def checked_values(result: Mapping[str, Any]) -> dict[str, Value]:
    """The result's best configuration for `apply`: a target whose values
    cli-ai writes to this machine (sysctl), each value checked by its Target."""
    target = _target_of(result)
    if not target.applicable and not target.applies_through_backend:
        raise BadInputError(
            f"{result.get('_path')}: a {result.get('target')!r} result has no kernel values to apply; "
            + (f"export it (cli-ai export --format {next(iter(target.exports))}) and use it in the broker or "
               "server it belongs to" if target.exports else "use its best_config in the program or broker it belongs to")
        )
    return target.result_values(result)


def _target_of(result: Mapping[str, Any]):
    from cli_ai.targets import TARGETS

    name = result.get("target", "sysctl")
    target = TARGETS.get(name)
    if target is None:
        raise BadInputError(f"{result.get('_path')}: target {name!r} is not one of {', '.join(TARGETS)}")
    return target


def prepare_apply(path: str | os.PathLike, *, persist: bool = False, allow_simulated: bool = False,
                  force: bool = False, proc_root: str = PROC_SYS) -> ApplyPlan:
    result = load_result(path)
    if result.get("simulated") and not allow_simulated:
        raise SafetyError(
            f"{result['_path']}: this result comes from a --dry-run; its best configuration was found on a "
            "simulated system. Run the tune for real first (or pass --allow-simulated)"
        )
    problem = verified_gain_problem(result)
    if problem is not None and not force:
        raise SafetyError(f"{result['_path']}: not applied: {problem} (--force applies it anyway)")
    values = checked_values(result)
    own = _target_of(result)
    if own.applies_through_backend:
        if persist:
            raise BadInputError(f"--persist: a {own.name} result persists where it is applied; drop --persist")
        backend = own.apply_backend(result)
        return ApplyPlan(result, values, backend.read(list(values)), None, forced=problem, backend=backend)
    backend = SysctlBackend(proc_root)
    missing = [n for n in values if not backend.exists(n)]
    if missing:
        raise SafetyError(f"{', '.join(missing)}: does not exist on this kernel")
    if os.geteuid() != 0:
        raise SafetyError("writing /proc/sys needs root: run with sudo")
    current = backend.read(list(values))
    from cli_ai.safety.constraints import memory_kib, problems as rule_problems
    from cli_ai.targets.sysctl import rule_partners

    broken = rule_problems({**rule_partners(values, dry_run=False, proc_root=proc_root), **values},
                           mem_kib=memory_kib())
    if broken:  # with the kernel's own values of the params the result leaves alone
        raise SafetyError(f"{len(broken)} rule(s) between params broken with this kernel's values", problems=broken)
    return ApplyPlan(result, values, current, sysctl_d_dir() / PERSIST_FILE if persist else None, forced=problem)


def apply(plan: ApplyPlan, *, sink=None, proc_root: str = PROC_SYS) -> ApplyPlan:
    from cli_ai.events import null_sink
    from cli_ai.safety.guard import Guard

    backend = plan.backend or SysctlBackend(proc_root)
    netns = [n for n in plan.values if plan.backend is None and lookup(n) and lookup(n).netns]
    with Guard(backend, list(plan.values), sink=sink or null_sink, keep_on_success=True,
               workload=plan.result.get("workload"), netns_params=netns) as guard:
        guard.apply(plan.values)
        if plan.persist_path is not None:
            persist(plan.persist_path, plan.values, plan.result, forced=plan.forced, record=guard.record_file)
    record_apply(plan)
    return plan


def record_apply(plan: ApplyPlan) -> None:
    """Note the apply in the result file (atomically), with whether --force
    overrode its verification, so the result says how it came to be applied."""
    path = plan.result.get("_path")
    if not path:
        return
    p = Path(path)
    from cli_ai.core.files import read_untrusted_text

    try:
        data = json.loads(read_untrusted_text(p, "result file"))
    except (BadInputError, ValueError, RecursionError):
        return  # the values are applied and journaled; the note is a courtesy
    if not isinstance(data, dict):
        return
    entry = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "forced": plan.forced is not None,
             "persisted": str(plan.persist_path) if plan.persist_path else None}
    if plan.forced is not None:
        entry["forced_over"] = plan.forced
    applies = data.get("applies") if isinstance(data.get("applies"), list) else []
    data["applies"] = [*applies, entry]
    from cli_ai.core.files import write_atomic

    try:
        write_atomic(p, json.dumps(data, indent=2) + "\n")
    except OSError:
        pass


def persist(path: Path, values: Mapping[str, Value], result: Mapping[str, Any], *, forced: str | None = None,
            record=None) -> str | None:
    """Write the sysctl.d file atomically, keeping an existing one under a new
    backup name first (never over an earlier backup). `record(path, backup)`
    is called before the file changes, so the journal knows what to put back
    even if cli-ai dies in between. Returns the backup's path, or None."""
    from cli_ai.core.files import backup_file, write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_sysctl_d(values, result)
    if forced is not None:
        text = text.replace("\n", f"\n# APPLIED WITH --force although {comment(forced)}\n", 1)
    backup = backup_file(path)
    if record is not None:
        record(str(path), backup)
    write_atomic(path, text)
    return backup


def export(path: str | os.PathLike, fmt: str | None = None, *, force: bool = False) -> str:
    """The result's configuration as a deployable file of its target (the
    target's first format unless `fmt`); like `apply`, only for a gain
    verified better unless `force` (and then the file says so)."""
    result = load_result(path)
    target = _target_of(result)
    if not target.exports:
        raise BadInputError(f"{result['_path']}: a {target.name!r} result has nothing to export; "
                            "use its best_config in the program it belongs to")
    fmt = fmt or next(iter(target.exports))
    if fmt not in target.exports:
        raise BadInputError(f"--format: {fmt!r} is not a format of a {target.name} result; "
                            f"use {' | '.join(target.exports)}")
    values = target.result_values(result)
    problem = verified_gain_problem(result)
    if problem is not None and not force:
        raise SafetyError(f"not exported: {problem} (--force exports it anyway)")
    text = target.exports[fmt](values, result)
    if problem is not None:
        # no `$` from the file: TuneD expands ${...} (and ${f:exec:...} runs a program)
        mark = "--" if text.startswith("--") else "#"  # SQL comments are --
        marker = f"{mark} EXPORTED WITH --force although {comment(problem).replace('$', '')}"
        first, _, rest = text.partition("\n")
        text = f"{first}\n{marker}\n{rest}" if first.startswith("#!") else f"{marker}\n{text}"
    return text
