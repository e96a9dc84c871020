"""The postgres target: a PostgreSQL server's own settings (shared_buffers,
work_mem, the WAL and checkpoint knobs, ...), set with ALTER SYSTEM on a
managed private cluster or an attached server, measured by pgbench.

Safety as for sysctl: the catalogue's safe ranges (`catalog.json`, sized for
this machine) checked before anything starts and cross-checked against the
server's own pg_settings; settings that trade durability for speed refused
(exit 3) unless the spec names the risk; the ALTER SYSTEM state journaled
before the first write and restored, verified in pg_settings, on every exit
path (`backend.py`)."""

from __future__ import annotations

import os
from typing import Any, Sequence

from cli_ai.core.backend import Value
from cli_ai.errors import SafetyError
from cli_ai.safety.check import SafetyReport
from cli_ai.spec import TuningSpec
from cli_ai.targets.base import Target, TargetSession
from cli_ai.targets.postgres.catalog import catalog, display_text, durability_settings, lookup
from cli_ai.targets.postgres.exports import POSTGRES_EXPORTS
from cli_ai.targets.postgres.settings import MODES, PG_METRICS, PostgresSettings, script_problem

RISK_FLAG = "postgres.allow_data_loss_on_crash"


def settings_of(spec: TuningSpec) -> PostgresSettings:
    try:
        return PostgresSettings.from_spec(spec)
    except (KeyError, TypeError, ValueError) as exc:
        raise SafetyError(f"postgres: cannot read the block ({exc})") from None


def check_postgres_spec(spec: TuningSpec, *, clamp: bool, real_run: bool) -> SafetyReport:
    """Every knob a catalogued setting inside its safe range (narrowed under
    `clamp`); durability-reducing ones refused unless the spec accepts the
    risk; restart knobs on an attached server only with consent; the metric
    one pgbench reports; a script file without \\shell."""
    from cli_ai.safety.check import check_knob, difflib_close

    s = settings_of(spec)
    tunable = catalog()
    risky = durability_settings()
    errors: list[str] = []
    notes: list[str] = []
    warnings: list[str] = []
    knobs = []
    entries = {}
    for i, knob in enumerate(spec.action_space):
        setting = tunable.get(knob.param)
        if setting is None and knob.param in risky:
            setting = risky[knob.param]
            if not s.allow_data_loss_on_crash:
                errors.append(f"action_space[{i}].param: {knob.param} trades durability for speed: {setting.risk}. "
                              f"Refused; to accept that risk set \"{RISK_FLAG}\": true in the spec")
                knobs.append(knob)
                continue
            warnings.append(f"{knob.param}: accepted by {RISK_FLAG}: {setting.risk}")
        if setting is None:
            errors.append(f"action_space[{i}].param: {knob.param!r} is not a PostgreSQL setting cli-ai tunes"
                          f"{difflib_close(knob.param, list(tunable))}; known: {', '.join(sorted(tunable))}")
            knobs.append(knob)
            continue
        entries[knob.param] = setting.entry
        knobs.append(check_knob(i, knob, setting.entry, clamp, notes, errors))
    restart = [k.param for k in knobs if lookup(k.param, allow_risk=True) and
               lookup(k.param, allow_risk=True).needs_restart]
    if restart:
        if s.managed:
            notes.append(f"{', '.join(restart)} take effect only after a restart: cli-ai restarts its managed "
                         "cluster when one changes")
        elif not (s.attach and s.attach.allow_restart and s.attach.restart_command):
            errors.append(f"postgres.attach.allow_restart: {', '.join(restart)} need a server restart to take effect; "
                          "an attached server is restarted only with \"allow_restart\": true and its "
                          "\"restart_command\" (or drop those knobs)")
        else:
            notes.append(f"{', '.join(restart)} need a restart: the attached server is restarted with "
                         f"{' '.join(s.attach.restart_command or ())} when one changes")
    metric = spec.reward_metric or "tps"
    if metric not in PG_METRICS:
        errors.append(f"reward_metric: {metric!r} is not measured by the postgres target; choose one of "
                      f"{', '.join(PG_METRICS)}")
    elif PG_METRICS[metric] != spec.metric_direction:
        errors.append(f"metric_direction: {metric} is to be {PG_METRICS[metric]}d, the spec says "
                      f"{spec.metric_direction}")
    pg = s.pgbench
    if pg.mode not in MODES:
        errors.append(f"postgres.pgbench.mode: {pg.mode!r} is not one of {', '.join(MODES)}")
    if pg.mode == "script":
        if not pg.script:
            errors.append("postgres.pgbench.script: mode \"script\" needs the path of a pgbench script file")
        elif real_run or os.path.exists(pg.script):
            try:
                with open(pg.script, errors="replace") as fh:
                    problem = script_problem(fh.read(1_000_000))
            except OSError as exc:
                problem = f"cannot be read ({exc.strerror})"
            if problem:
                errors.append(f"postgres.pgbench.script: {pg.script}: {problem}")
    if pg.threads > pg.clients:
        errors.append(f"postgres.pgbench.threads: {pg.threads} threads for {pg.clients} clients; pgbench needs "
                      "threads <= clients")
    if errors:
        raise SafetyError(f"{len(errors)} safety problem(s)", problems=errors)
    return SafetyReport(knobs=tuple(knobs), notes=notes, warnings=warnings, entries=entries)


class PostgresTarget(Target):
    name = "postgres"
    confirms_values = True
    exports = POSTGRES_EXPORTS

    def check(self, spec: TuningSpec, *, clamp: bool, dry_run: bool, proc_root: str) -> SafetyReport:
        return check_postgres_spec(spec, clamp=clamp, real_run=not dry_run)

    def value_text(self, name: str, value: Value) -> str | None:
        setting = lookup(name, allow_risk=True)
        return None if setting is None else display_text(setting, value)

    def runs(self, run: Any) -> list[tuple[str, str]]:
        s = settings_of(run.spec)
        pg = s.pgbench
        load = (f"pgbench -c {pg.clients} -j {pg.threads} -T {pg.duration_s:g} {' '.join(pg.flags())}".strip()
                + f" (after {pg.warmup_s:g} s of warm-up)")
        if s.managed:
            return [("Starts its own PostgreSQL cluster", "initdb + pg_ctl in a private temp dir, 127.0.0.1, a free "
                     f"port, as an unprivileged user; pgbench -i -s {s.scale}; removed at the end"),
                    ("Measures each configuration with", load)]
        from cli_ai.targets.postgres.session import safe_dsn

        return [("Changes this server with ALTER SYSTEM (journaled, restored at the end)", safe_dsn(s.attach.dsn)),
                ("Measures each configuration with", load)]

    def current_values(self, spec: TuningSpec, space: Any, *, dry_run: bool, proc_root: str) -> dict[str, Value]:
        """A managed cluster starts from PostgreSQL's defaults (the catalogue's);
        an attached server's values are read (read-only) on a real run."""
        s = settings_of(spec)
        defaults = {}
        for knob in space.knobs:
            setting = lookup(knob.name, allow_risk=True)
            default = setting.entry.default if setting is not None else None
            defaults[knob.name] = default if default is not None else knob.default_value()
        if dry_run or s.managed:
            return defaults
        from cli_ai.targets.postgres.session import read_attached

        return read_attached(s, space.names)

    def require_access(self, names: Sequence[str], *, dry_run: bool, proc_root: str) -> None:
        return None  # an attached server's role is checked when the session connects (it needs the spec)

    def session(self, run: Any, options: Any, sink) -> TargetSession:
        from cli_ai.tactician.rewards import make_reward
        from cli_ai.targets.evaluation import dry_session

        reward = make_reward(run.spec.reward, run.spec.metric_direction)
        if run.dry_run:
            return dry_session(run, reward)
        from cli_ai.tactician.observe import SystemObserver
        from cli_ai.targets.postgres.session import PostgresSession

        pg = PostgresSession(run.spec, list(run.space.names), sink=sink)
        return TargetSession(pg.backend, pg.evaluate, SystemObserver(), reward, closer=pg)

    def plan_hints(self, profile) -> list[str]:
        # A spec cannot guess a DSN and its credentials: the plan stays managed and says how to attach.
        if profile is not None and profile.runs("postgres"):
            return ["a PostgreSQL server runs here: this plan tunes a private managed cluster; to tune that server "
                    "instead, add \"attach\": {\"dsn\": \"host=... dbname=... user=...\"} to the spec's postgres "
                    "block (its role must be allowed ALTER SYSTEM)"]
        return []

    def doctor_checks(self, proc_root: str):
        from cli_ai.errors import CliAiError
        from cli_ai.targets.postgres.server import find_bindir, find_pgbench

        out = []
        for what, find in (("postgres target: server binaries", find_bindir), ("postgres target: pgbench", find_pgbench)):
            try:
                out.append((what, True, find()))
            except CliAiError as exc:
                out.append((what, None, str(exc)))
        try:
            import importlib.util

            found = importlib.util.find_spec("psycopg") is not None
        except (ImportError, ValueError):
            found = False
        out.append(("postgres target: psycopg", True if found else None,
                    "psycopg 3 installed" if found else "pip install 'psycopg[binary]' (the client of the postgres target)"))
        return out

    applies_through_backend = True

    def apply_backend(self, result):
        """The attached server of the run that found `result` (its spec.json
        next to result.json, read as untrusted input). Nothing from that file
        runs: a setting that needs a restart is written and left pending,
        and the person restarts the server."""
        from pathlib import Path

        from cli_ai.errors import BadInputError
        from cli_ai.targets.postgres.backend import PostgresBackend
        from cli_ai.targets.postgres.session import parse_dsn

        where = Path(str(result.get("_path") or ".")).parent / "spec.json"
        s = PostgresSettings.from_block(_run_block(where))
        if s.managed:
            raise BadInputError(f"{result.get('_path')}: found on a managed cluster, which cli-ai removed at the end "
                                "of the run; apply it to your server with `cli-ai export RESULT --format sql`, or "
                                "tune that server attached (postgres.attach)")
        backend = PostgresBackend(parse_dsn(s.attach.dsn), mode="attached", allow_restart=False,
                                  allow_risk=False, leave_pending=True)
        return backend

    def result_values(self, result):
        from cli_ai.targets.exports import checked_result_values

        def entry_of(name: str):
            setting = lookup(name)
            if setting is not None:
                return setting.entry, None
            risky = durability_settings().get(name)
            if risky is not None:
                return None, f"trades durability for speed ({risky.risk}); cli-ai does not export it"
            return None, "not a PostgreSQL setting cli-ai tunes"

        return checked_result_values(result, entry_of)


def _run_block(path) -> dict:
    """The `postgres` block of a run directory's spec.json (untrusted)."""
    import json

    from cli_ai.core.files import read_untrusted_text
    from cli_ai.errors import BadInputError

    try:
        data = json.loads(read_untrusted_text(path, "the run's spec"))
    except ValueError as exc:
        raise BadInputError(f"{path}: not JSON ({exc})") from None
    block = data.get("postgres") if isinstance(data, dict) else None
    if block is not None and not isinstance(block, dict):
        raise BadInputError(f"{path}: postgres must be an object")
    attach = (block or {}).get("attach")
    if attach is not None and not (isinstance(attach, dict) and isinstance(attach.get("dsn"), str)):
        raise BadInputError(f"{path}: postgres.attach.dsn must be a connection string")
    return block or {}


__all__ = ["PostgresTarget", "check_postgres_spec", "RISK_FLAG"]

