"""PostgresBackend: a server's settings as knob values, through `ALTER SYSTEM`.

`read` asks `pg_settings` (values in the catalogue's units: shared_buffers in
MB, checkpoint_timeout in s); `write` runs `ALTER SYSTEM SET` for each value
(the name an identifier, the value a literal: nothing from a spec or a
journal is pasted into SQL), `pg_reload_conf()`, and, when a value's context
needs it (`pending_restart`), restarts the server: always on a managed
cluster, on an attached one only with `attach.allow_restart` and its
`restart_command`. Then it waits until `pg_settings` shows every value.

The originals a run journals are the `ALTER SYSTEM` state before it
(`postgresql.auto.conf`): the backend notes which tuned names had no line
there (`auto_absent`, in `describe()`), and writing a name's original value
back runs `ALTER SYSTEM RESET` for those, so the file ends as it began and
the server falls back to postgresql.conf's value, not a pinned copy of it.

Psycopg is imported here, lazily by the target (`cli-ai --help` never loads it).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from cli_ai.core.backend import Backend, Value, same_value
from cli_ai.errors import BackendWriteError, SafetyError, TargetError
from cli_ai.safety.values import type_problem
from cli_ai.targets.postgres.catalog import PgSetting, ServerSetting, from_pg, lookup, sql_text

EventCallback = Callable[[str, dict], None]


def connect(conninfo: Mapping[str, str]):
    import psycopg

    try:
        return psycopg.connect(**dict(conninfo), autocommit=True)
    except psycopg.Error as exc:
        where = f"{conninfo.get('host', '?')}:{conninfo.get('port', '?')}"
        raise TargetError(f"cannot connect to PostgreSQL at {where}: {_first_line(exc)}") from None


def server_settings(conn, names: Sequence[str] | None = None) -> dict[str, ServerSetting]:
    q = ("SELECT name, vartype, unit, context, min_val, max_val, enumvals, setting, pending_restart "
         "FROM pg_settings")
    rows = conn.execute(q + " WHERE name = ANY(%s)", (list(names),)) if names is not None else conn.execute(q)
    return {r[0]: ServerSetting(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6]) if r[6] else None, r[7], bool(r[8]))
            for r in rows.fetchall()}


def auto_conf_names(conn) -> set[str] | None:
    """The names `postgresql.auto.conf` sets (None when this role may not read
    pg_file_settings: then originals are restored with SET, not RESET)."""
    import psycopg

    try:
        rows = conn.execute("SELECT name FROM pg_file_settings WHERE sourcefile LIKE '%%/postgresql.auto.conf'")
        return {r[0] for r in rows.fetchall()}
    except psycopg.Error:
        return None


class PostgresBackend(Backend):
    kind = "postgres"
    changes_machine = True  # ALTER SYSTEM writes postgresql.auto.conf: journaled in both modes

    def __init__(self, conninfo: Mapping[str, str], *, mode: str, cluster: Any = None, names: Sequence[str] = (),
                 allow_restart: bool = False, restart_command: Sequence[str] | None = None,
                 allow_risk: bool = False, auto_absent: Sequence[str] | None = None,
                 on_event: EventCallback | None = None, settle_timeout_s: float = 10.0,
                 leave_pending: bool = False):
        self.conninfo = dict(conninfo)
        self.mode = mode
        self.cluster = cluster  # a ManagedCluster in managed mode
        self.allow_restart = allow_restart or mode == "managed"
        self.restart_command = tuple(restart_command) if restart_command else None
        self.allow_risk = allow_risk
        self.on_event = on_event
        self.settle_timeout_s = settle_timeout_s
        self._conn = None
        self._names = list(names)
        self._originals: dict[str, Value] = {}
        self._auto_absent: set[str] | None = set(auto_absent) if auto_absent is not None else None
        self.restarts = 0
        # `cli-ai apply`: a restart-only setting is written and left pending
        # (the person restarts the server; no command is taken from a file).
        self.leave_pending = leave_pending
        self.pending: list[str] = []
        self._recover = False  # rebuilt from a journal: every write is an original going back

    # ------------------------------------------------------------------ connection
    @property
    def conn(self):
        if self._conn is None or self._conn.closed:
            try:
                self._conn = connect(self.conninfo)
            except TargetError:
                if self.cluster is None:
                    raise
                self._conn = self._managed_back()
        return self._conn

    def _managed_back(self):
        """A managed server that does not answer: a restart cut short (a
        signal, a kill -9 of cli-ai) left it stopped or still starting; it
        is ours, so start it if it is down and wait until it answers, since
        the restore needs it."""
        deadline = time.monotonic() + self.cluster.start_timeout_s
        while True:
            try:
                if not self.cluster.running():
                    self.cluster.start_again()
                return connect(self.conninfo)
            except TargetError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _reconnect(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - a dead connection after a restart
                pass
        self._conn = None

    def _event(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)

    def _setting(self, name: str) -> PgSetting:
        s = lookup(name, allow_risk=self.allow_risk)
        if s is None:
            raise SafetyError(f"{name}: not a PostgreSQL setting cli-ai tunes; refusing to write it")
        return s

    # ------------------------------------------------------------------ Backend
    def read(self, names: Sequence[str]) -> dict[str, Value]:
        rows = self._rows(names)
        missing = [n for n in names if n not in rows]
        if missing:
            raise TargetError(f"{missing[0]}: this server has no such setting (not in pg_settings)")
        out = {n: from_pg(self._setting(n), rows[n].setting, rows[n].unit) for n in names}
        if self._auto_absent is None:
            # The first read is the journal's: note the ALTER SYSTEM state it came from.
            found = auto_conf_names(self.conn)
            self._auto_absent = None if found is None else {n for n in names if n not in found}
        if not self._recover:
            for n in names:
                self._originals.setdefault(n, out[n])
        return out

    def _rows(self, names: Sequence[str]) -> dict[str, ServerSetting]:
        import psycopg

        try:
            return server_settings(self.conn, list(names))
        except psycopg.OperationalError:
            self._reconnect()  # a restart closed it
            return server_settings(self.conn, list(names))

    def write(self, values: Mapping[str, Value]) -> None:
        import psycopg
        from psycopg import sql

        if not values:
            return
        good_auto = self._auto_conf_copy()
        for name, value in values.items():
            setting = self._setting(name)
            problem = type_problem(setting.entry, value)
            if problem:
                raise BackendWriteError(f"{name}: {problem}")
            reset = (self._auto_absent is not None and name in self._auto_absent
                     and (self._recover or (name in self._originals and same_value(value, self._originals[name]))))
            if reset:
                stmt = sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name))
            else:
                stmt = sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name),
                                                                  sql.Literal(sql_text(setting, value)))
            self._event("postgres_alter_system", name=name, value=value, reset=reset)
            try:
                self._execute(stmt)
            except psycopg.Error as exc:
                raise BackendWriteError(f"{name} = {sql_text(setting, value)}: the server refused it: "
                                        f"{_first_line(exc)}") from None
        self._execute("SELECT pg_reload_conf()")
        pending = self._wait_applied(values)
        if pending and self.leave_pending:
            self.pending = sorted(set(self.pending) | set(pending))
            return
        if pending:
            self._restart(pending, good_auto)
            left = self._wait_applied(values)
            if left:
                raise BackendWriteError(f"{left[0]}: pg_settings does not show the new value after the restart")

    def _execute(self, stmt) -> None:
        import psycopg

        try:
            self.conn.execute(stmt)
        except psycopg.OperationalError:
            self._reconnect()
            self.conn.execute(stmt)

    def _wait_applied(self, values: Mapping[str, Value]) -> list[str]:
        """Wait (the reload is asynchronous) until pg_settings shows every
        value; returns the names that need a restart to take effect."""
        deadline = time.monotonic() + self.settle_timeout_s
        while True:
            rows = self._rows(list(values))
            # Shown as wanted: applied (pending_restart may still be set from
            # an earlier change that this one undid); else a restart-only
            # setting waits for its restart, and any other for the reload.
            unlike = [n for n in values if not shows(from_pg(self._setting(n), rows[n].setting, rows[n].unit),
                                                     values[n])]
            pending = [n for n in unlike if rows[n].pending_restart]
            wrong = [n for n in unlike if n not in pending]
            if not wrong:
                return pending
            if time.monotonic() > deadline:
                n = wrong[0]
                raise BackendWriteError(f"{n}: pg_settings shows {rows[n].setting}{rows[n].unit or ''} "
                                        f"{self.settle_timeout_s:g} s after the reload, not {values[n]}")
            time.sleep(0.02)
            # A new statement lets this session take the SIGHUP's new config.

    def _restart(self, pending: list[str], good_auto: str | None) -> None:
        if not self.allow_restart:
            raise BackendWriteError(f"{', '.join(pending)}: needs a server restart, and this attached server may "
                                    "not be restarted (set postgres.attach.allow_restart and restart_command)")
        self._event("postgres_restart", names=list(pending))
        self._reconnect()
        self.restarts += 1
        if self.cluster is not None:
            try:
                self.cluster.restart()
            except TargetError as exc:
                # The server did not come back with these values: the last
                # good postgresql.auto.conf, then start it again.
                if good_auto is not None:
                    Path(self._auto_conf_path()).write_text(good_auto)
                if not self.cluster.running():
                    self.cluster.start_again()
                raise BackendWriteError(f"{', '.join(pending)}: the server did not restart with the new value(s) "
                                        f"({exc}); it runs on the last good configuration") from None
            return
        if self.restart_command is None:
            raise BackendWriteError(f"{', '.join(pending)}: needs a restart and postgres.attach.restart_command is "
                                    "not set")
        r = subprocess.run(list(self.restart_command), capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise BackendWriteError(f"the restart command exited {r.returncode}: {_first_line(r.stderr)}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.conn.execute("SELECT 1")
                return
            except Exception:  # noqa: BLE001 - still starting
                self._reconnect()
                time.sleep(0.2)
        raise BackendWriteError("the server did not accept connections within 60 s of the restart")

    def _auto_conf_path(self) -> str:
        return str(self.cluster.datadir / "postgresql.auto.conf")

    def _auto_conf_copy(self) -> str | None:
        if self.cluster is None:
            return None
        try:
            return Path(self._auto_conf_path()).read_text()
        except OSError:
            return None

    def exists(self, name: str) -> bool:
        return name in self._rows([name])

    def describe(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "mode": self.mode,
            "host": self.conninfo.get("host", ""),
            "port": int(self.conninfo.get("port", 5432)),
            "user": self.conninfo.get("user", ""),
            "dbname": self.conninfo.get("dbname", ""),
            "auto_absent": sorted(self._auto_absent) if self._auto_absent is not None else None,
            "allow_risk": self.allow_risk,
        }
        if self.cluster is not None:
            config["workdir"] = str(self.cluster.workdir)
        elif self.conninfo.get("passfile"):
            config["passfile"] = self.conninfo["passfile"]  # a path (libpq reads it), never the password
        return {"kind": self.kind, "config": config}

    def rollback_notes(self) -> list[str]:
        if self.mode == "managed":
            return ["the managed PostgreSQL cluster of the interrupted run is stopped and its directory removed"]
        return []

    def finish_rollback(self, restored: bool) -> None:
        """A managed cluster outlived its cli-ai (kill -9): once its settings
        are back (verified in pg_settings), stop it and remove it. A failed
        restore leaves it, and the journal, for another try."""
        if restored:
            self.close_cluster()

    def close(self) -> None:
        self._reconnect()

    # ------------------------------------------------------------------ rollback
    @classmethod
    def from_description(cls, config: Mapping[str, Any]) -> "PostgresBackend":
        """The backend of a journal (untrusted): a managed cluster only in a
        directory cli-ai's clusters use, on 127.0.0.1; an attached server by
        host, port, user and database (libpq finds the password as it did)."""
        from cli_ai.targets.postgres.server import adopt, workdir_problem

        allowed = {"mode", "host", "port", "user", "dbname", "auto_absent", "allow_risk", "workdir", "passfile"}
        extra = sorted(set(config) - allowed)
        if extra:
            raise ValueError(f"a postgres backend has no setting {extra[0][:40]!r}")
        mode = config.get("mode")
        port = config.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise ValueError("port must be an integer 1..65535")
        texts = {k: config.get(k) for k in ("host", "user", "dbname")}
        for k, v in texts.items():
            if not isinstance(v, str) or not v or len(v) > 255 or any(c in v for c in "\x00\n\r"):
                raise ValueError(f"{k} must be a short one-line text")
        absent = config.get("auto_absent")
        if absent is not None and not (isinstance(absent, list) and all(isinstance(a, str) and lookup(a, allow_risk=True)
                                                                        for a in absent)):
            raise ValueError("auto_absent must list catalogued settings")
        allow_risk = config.get("allow_risk") is True
        conninfo = {"host": texts["host"], "port": str(port), "user": texts["user"], "dbname": texts["dbname"],
                    "connect_timeout": "10"}
        if mode == "managed":
            workdir = config.get("workdir")
            if not isinstance(workdir, str):
                raise ValueError("a managed backend names its workdir")
            problem = workdir_problem(workdir)
            if problem:
                raise ValueError(problem)
            if texts["host"] != "127.0.0.1":
                raise ValueError("a managed cluster listens on 127.0.0.1 only")
            cluster = adopt(Path(workdir), port)
            conninfo["passfile"] = str(cluster.passfile)
            backend = cls(conninfo, mode="managed", cluster=cluster, auto_absent=absent, allow_risk=allow_risk)
        elif mode == "attached":
            passfile = config.get("passfile")
            if passfile is not None:
                if not isinstance(passfile, str) or not passfile.startswith("/") or len(passfile) > 4000 \
                        or any(c in passfile for c in "\x00\n\r"):
                    raise ValueError("passfile must be an absolute path")
                conninfo["passfile"] = passfile
            backend = cls(conninfo, mode="attached", auto_absent=absent, allow_risk=allow_risk)
        else:
            raise ValueError(f"mode must be managed or attached, not {str(mode)[:40]!r}")
        backend._recover = True
        return backend

    def close_cluster(self) -> None:
        """Rollback of a managed run: stop the orphaned cluster, remove its directory."""
        self._reconnect()
        if self.cluster is not None:
            self.cluster.close()


def shows(shown: Value, wanted: Value) -> bool:
    """Whether pg_settings' value is `wanted`: floats as PostgreSQL prints
    them (6 significant digits: 0.555978 for 0.5559781868)."""
    if isinstance(wanted, float) and not isinstance(shown, (str, bool)):
        return abs(float(shown) - wanted) <= 1e-5 * max(1.0, abs(wanted))
    return same_value(shown, wanted)


def _first_line(exc: Any) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


__all__ = ["PostgresBackend", "auto_conf_names", "connect", "server_settings"]
