"""One real run's server: a managed cluster started (initdb, pg_ctl,
pgbench -i) or an attached server connected to; the role's right to ALTER
SYSTEM and the spec's knobs checked against the server's pg_settings; the
backend and the pgbench evaluator; `close()` stops what was started."""

from __future__ import annotations

import time
from typing import Mapping, Sequence

from cli_ai.core.backend import Value
from cli_ai.errors import SafetyError, TargetError
from cli_ai.events import Event, EventSink, null_sink
from cli_ai.targets.postgres.catalog import catalog, cross_check, durability_settings
from cli_ai.targets.postgres.settings import DEFAULT_METRIC, PostgresSettings


def parse_dsn(dsn: str) -> dict[str, str]:
    """A libpq connection string (key=value or a postgresql:// URI) as its parts."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise SafetyError(f"postgres.attach.dsn: not a libpq connection string ({exc})") from None
    parts = {k: str(v) for k, v in parts.items()}
    parts.setdefault("host", "localhost")
    parts.setdefault("port", "5432")
    import getpass

    parts.setdefault("user", getpass.getuser())
    parts.setdefault("dbname", parts["user"])
    parts.setdefault("connect_timeout", "10")
    return parts


def safe_dsn(dsn: str) -> str:
    """The connection string for the screen and the journal: no password."""
    try:
        parts = parse_dsn(dsn)
    except (SafetyError, ImportError):
        return "<the spec's postgres.attach.dsn>"
    return " ".join(f"{k}={v}" for k, v in parts.items() if k in ("host", "port", "user", "dbname"))


def check_alter_system(conn, names: Sequence[str]) -> None:
    """Refuse (exit 3) a role that may not ALTER SYSTEM each of `names`."""
    row = conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    user, superuser = (row or ("?", False))
    if superuser:
        return
    denied = []
    for name in names:
        try:
            ok = conn.execute("SELECT has_parameter_privilege(%s, 'ALTER SYSTEM')", (name,)).fetchone()[0]
        except Exception:  # noqa: BLE001 - before PostgreSQL 15 only superusers may
            ok = False
        if not ok:
            denied.append(name)
    if denied:
        raise SafetyError(f"role {user} may not ALTER SYSTEM {', '.join(denied)}; connect as a superuser or "
                          f"GRANT ALTER SYSTEM ON PARAMETER {', '.join(denied)} TO {user}")


def read_attached(settings: PostgresSettings, names: Sequence[str]) -> dict[str, Value]:
    """An attached server's current values (read-only: the confirmation screen)."""
    from cli_ai.targets.postgres.backend import PostgresBackend

    backend = PostgresBackend(parse_dsn(settings.attach.dsn), mode="attached",
                              allow_risk=settings.allow_data_loss_on_crash)
    try:
        return backend.read(list(names))
    finally:
        backend.close()


class PostgresSession:
    """The server of one real run, its backend and its evaluator."""

    def __init__(self, spec, names: Sequence[str], *, sink: EventSink = null_sink):
        from cli_ai.targets.postgres.backend import PostgresBackend, connect, server_settings
        from cli_ai.targets.postgres.server import ManagedCluster, find_pgbench
        from cli_ai.targets.postgres.workload import initialize

        self.spec = spec
        self.settings = s = PostgresSettings.from_spec(spec)
        self.sink = sink
        self.metric_name = spec.reward_metric or DEFAULT_METRIC
        self.cluster = None
        self.backend = None
        self.pgbench = find_pgbench(s.bindir)
        try:
            if s.managed:
                started = time.monotonic()
                self.cluster = ManagedCluster(bindir=s.bindir, start_timeout_s=s.start_timeout_s).start()
                conninfo = self.cluster.conninfo()
                self._event("postgres_started", {"mode": "managed", "host": conninfo["host"],
                                                 "port": int(conninfo["port"]), "workdir": str(self.cluster.workdir),
                                                 "passfile": conninfo["passfile"]})
                initialize(self.pgbench, conninfo, s.scale)
                self._event("postgres_ready", {"seconds": time.monotonic() - started, "scale": s.scale})
            else:
                conninfo = parse_dsn(s.attach.dsn)
            self.conninfo = conninfo
            self.backend = PostgresBackend(
                conninfo, mode="managed" if s.managed else "attached", cluster=self.cluster, names=names,
                allow_restart=bool(s.attach and s.attach.allow_restart),
                restart_command=s.attach.restart_command if s.attach else None,
                allow_risk=s.allow_data_loss_on_crash, on_event=self._event)
            conn = connect(conninfo)
            try:
                check_alter_system(conn, names)
                known = dict(catalog())
                if s.allow_data_loss_on_crash:
                    known.update(durability_settings())
                server = server_settings(conn, list(names))
                knobs = [(k.param, k.type, k.min, k.max, k.values) for k in spec.action_space]
                problems = cross_check(knobs, server, known)
                if not s.managed:
                    tables = conn.execute("SELECT to_regclass('pgbench_accounts') IS NOT NULL").fetchone()[0]
                    if not tables and s.pgbench.mode != "script":
                        problems.append(f"database {conninfo['dbname']} has no pgbench tables; run pgbench -i -s "
                                        f"{s.scale} {conninfo['dbname']} first (cli-ai never initializes an "
                                        "attached server: it drops tables)")
            finally:
                conn.close()
            if problems:
                raise SafetyError(f"{len(problems)} knob(s) this server does not take", problems=problems)
        except BaseException:
            self.close()
            raise

    def _event(self, kind: str, data: dict) -> None:
        self.sink(Event(kind, {"target": "postgres", **data}))

    def evaluate(self, values: Mapping[str, Value]):
        from cli_ai.tactician.envs.knob_env import Evaluation
        from cli_ai.targets.postgres.workload import measure

        if self.cluster is not None and not self.cluster.running():
            raise TargetError("the managed PostgreSQL server is not running: " + (self.cluster.log_tail() or "?"))
        self._checkpoint()
        log_parent = str(self.cluster.workdir) if self.cluster is not None else None
        metrics, seconds = measure(self.pgbench, self.conninfo, self.settings.pgbench, log_parent)
        latency_key = f"latency_{self.settings.latency_percentile}_ms"
        return Evaluation(metric=float(metrics.get(self.metric_name, float("nan"))), metrics=metrics,
                          duration_s=seconds, throughput=metrics.get("tps"),
                          latency_ms=metrics.get(latency_key, metrics.get("latency_avg_ms")))

    def _checkpoint(self) -> None:
        """Start each measurement from a clean buffer pool state: what the
        previous configuration left dirty is written out first, so it is not
        billed to this one (a role without pg_checkpoint just skips it)."""
        import psycopg

        try:
            self.backend.conn.execute("CHECKPOINT")
        except psycopg.Error:
            pass

    def close(self) -> None:
        """Close the connection; stop and remove a managed cluster (idempotent)."""
        if self.backend is not None:
            self.backend.close()
        if self.cluster is not None:
            self.cluster.close()


__all__ = ["PostgresSession", "check_alter_system", "parse_dsn", "read_attached", "safe_dsn"]
