"""A managed PostgreSQL cluster: `initdb` in a private temp directory, run as
an unprivileged user (initdb refuses root), listening on 127.0.0.1 on a free
port (no Unix socket), password authentication with a random password kept
in a 0600 file, removed at the end.

Layout of the work directory (`cli-ai-postgres-XXXX` under the temp dir):

    owner.pid   the cli-ai process that made it (a sweep stops orphans)
    pgpass      libpq password file (root's or the user's own, 0600)
    data/       the cluster, owned by the server's user
    server.log

`pg_ctl start` detaches the postmaster, so a cli-ai killed with -9 leaves it
running: `cli-ai rollback` rebuilds the backend from the journal, restores,
then stops it and removes the directory (`ManagedCluster.adopt`); a later
managed run sweeps directories whose owner died and no journal names."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import weakref
from pathlib import Path

from cli_ai.errors import TargetError
from cli_ai.safety.lock import pid_alive

WORKDIR_PREFIX = "cli-ai-postgres-"
USER = "cli_ai"
#: Every managed cluster of this process still running (the atexit hook stops them).
LIVE: weakref.WeakSet = weakref.WeakSet()
#: Every postmaster PID a cluster of this process started (tests check none is left).
STARTED_PIDS: list[int] = []


def find_bindir(bindir: str | None = None) -> str:
    """The directory of initdb, pg_ctl and postgres."""
    candidates = [bindir] if bindir else []
    candidates += [os.environ.get("CLI_AI_PG_BINDIR", "")]
    for v in ("17", "16", "15", "14", "13"):
        candidates.append(f"/usr/lib/postgresql/{v}/bin")
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(os.path.dirname(which))
    for d in candidates:
        if d and os.path.isfile(os.path.join(d, "initdb")) and os.path.isfile(os.path.join(d, "pg_ctl")):
            return d
    raise TargetError("PostgreSQL server binaries (initdb, pg_ctl) not found; install them "
                      "(apt-get install postgresql) or set postgres.bindir")


def find_pgbench(bindir: str | None = None) -> str:
    for candidate in ([os.path.join(bindir, "pgbench")] if bindir else []) + ["pgbench"]:
        found = shutil.which(candidate)
        if found:
            return found
    raise TargetError("pgbench not found; install it (apt-get install postgresql-contrib)")


def server_user() -> tuple[int, int] | None:
    """(uid, gid) the cluster runs as when cli-ai is root: `nobody` (it owns
    nothing else, and initdb refuses root); None when not root (runs as us)."""
    from cli_ai.broker.process import unprivileged_ids

    ids = unprivileged_ids(("cli-ai-pg", "nobody"))
    if ids is not None or os.geteuid() != 0:
        return ids
    raise TargetError("no unprivileged user to run PostgreSQL as (initdb refuses root); create one: "
                      "useradd --system cli-ai-pg")


def postmaster_pid(datadir: Path) -> int | None:
    try:
        return int((datadir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


class ManagedCluster:
    """One private cluster; `start()`, `restart()`, `close()` (idempotent)."""

    def __init__(self, *, bindir: str | None = None, start_timeout_s: float = 60.0, port: int | None = None,
                 workdir: Path | None = None):
        self.bindir = find_bindir(bindir)
        self.start_timeout_s = float(start_timeout_s)
        self.host = "127.0.0.1"
        self.port = port or 0
        self.workdir = workdir
        self.user = USER
        self.dbname = "postgres"
        self._ids = server_user()
        self._closed = False

    # ------------------------------------------------------------------ paths
    @property
    def datadir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "data"

    @property
    def passfile(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "pgpass"

    @property
    def log(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "server.log"

    def conninfo(self, dbname: str | None = None) -> dict[str, str]:
        return {"host": self.host, "port": str(self.port), "user": self.user, "dbname": dbname or self.dbname,
                "passfile": str(self.passfile), "connect_timeout": "10"}

    # ------------------------------------------------------------------ running its programs
    def _as_server(self) -> dict:
        if self._ids is None:
            return {}
        uid, gid = self._ids
        return {"user": uid, "group": gid, "extra_groups": []}

    def _run(self, program: str, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        argv = [os.path.join(self.bindir, program), *args]
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "HOME": str(self.workdir)}
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=self.workdir,
                                  start_new_session=True, **self._as_server())
        except subprocess.TimeoutExpired:
            raise TargetError(f"{program} did not finish within {timeout:g} s") from None

    def _chown(self, path: Path) -> None:
        if self._ids is not None:
            os.chown(path, *self._ids)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "ManagedCluster":
        from cli_ai.broker.process import free_port

        sweep_stale()
        self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        LIVE.add(self)
        try:
            os.chmod(self.workdir, 0o711)  # the server's user may enter, not list
            (self.workdir / "owner.pid").write_text(f"{os.getpid()}\n")
            password = secrets.token_urlsafe(24)
            self.port = self.port or free_port(self.host)
            pwinit = self.workdir / "pwinit"
            pwinit.write_text(password + "\n")
            self._chown(pwinit)
            os.chmod(pwinit, 0o600)
            fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{self.host}:{self.port}:*:{self.user}:{password}\n")
            self.datadir.mkdir(mode=0o700)
            self._chown(self.datadir)
            log_fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(log_fd)
            self._chown(self.log)
            r = self._run("initdb", "-D", str(self.datadir), "-U", self.user, f"--pwfile={pwinit}",
                          "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", timeout=180)
            pwinit.unlink()
            if r.returncode != 0:
                raise TargetError(f"initdb failed: {_last_line(r.stderr or r.stdout)}")
            with open(self.datadir / "postgresql.conf", "a") as fh:
                # Loopback TCP only: no Unix socket another local user could reach.
                fh.write(f"\n# cli-ai managed cluster\nlisten_addresses = '{self.host}'\nport = {self.port}\n"
                         "unix_socket_directories = ''\nlogging_collector = off\n")
            self._pg_ctl("start")
        except BaseException:
            self.close()
            raise
        return self

    def _pg_ctl(self, action: str) -> None:
        args = ["-D", str(self.datadir), "-w", "-t", str(int(self.start_timeout_s))]
        if action in ("start", "restart"):
            args += ["-l", str(self.log)]
        if action in ("stop", "restart"):
            args += ["-m", "fast"]
        r = self._run("pg_ctl", action, *args, timeout=self.start_timeout_s + 30)
        if r.returncode != 0:
            raise TargetError(f"pg_ctl {action} failed: {self.log_tail() or _last_line(r.stderr or r.stdout)}")
        pid = postmaster_pid(self.datadir)
        if pid and pid not in STARTED_PIDS:
            STARTED_PIDS.append(pid)

    def restart(self) -> None:
        self._pg_ctl("restart")

    def running(self) -> bool:
        pid = postmaster_pid(self.datadir) if self.workdir else None
        return bool(pid and pid_alive(pid))

    def start_again(self) -> None:
        """Start a stopped server (after a failed restart)."""
        self._pg_ctl("start")

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        wanted = [l for l in text if "FATAL" in l or "ERROR" in l or "LOG:  invalid" in l] or text
        return " | ".join(l.strip() for l in wanted[-lines:])

    def close(self) -> None:
        """Stop the server (fast, then SIGKILL after a grace) and remove the directory."""
        if self._closed:
            return
        self._closed = True
        LIVE.discard(self)
        if self.workdir is None:
            return
        stop_cluster(self.datadir, self)
        shutil.rmtree(self.workdir, ignore_errors=True)


def stop_cluster(datadir: Path, cluster: ManagedCluster | None = None, grace_s: float = 15.0) -> None:
    pid = postmaster_pid(datadir)
    if not pid or not pid_alive(pid):
        return
    if cluster is not None:
        try:
            cluster._pg_ctl("stop")
        except TargetError:
            pass
    if pid_alive(pid):
        from cli_ai.broker.process import terminate_pid

        terminate_pid(pid, grace_s, signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def adopt(workdir: Path, port: int, *, bindir: str | None = None) -> ManagedCluster:
    """The cluster of a journal (for `cli-ai rollback`): a directory this
    module made, checked by the caller."""
    # Not in LIVE: a rollback that could not restore leaves the cluster running for another try.
    return ManagedCluster(bindir=bindir, port=port, workdir=workdir)


def workdir_problem(path: str) -> str | None:
    """Why `path` (from a journal) is not a managed cluster's work directory."""
    real = os.path.realpath(path)
    base = os.path.realpath(tempfile.gettempdir())
    if os.path.dirname(real) != base or not os.path.basename(real).startswith(WORKDIR_PREFIX):
        return f"{path[:200]!r} is not a directory cli-ai's managed clusters use ({base}/{WORKDIR_PREFIX}*)"
    if os.path.islink(path) or not os.path.isdir(real):
        return f"{path[:200]} does not exist (the cluster is gone)"
    st = os.stat(real)
    if st.st_uid != os.geteuid():
        return f"{path[:200]} is not owned by this user"
    return None


def sweep_stale(root: str | None = None, keep: set[str] | None = None) -> list[str]:
    """Stop and remove the clusters of managed runs whose cli-ai died, unless
    a pending journal names them (`cli-ai rollback` handles those)."""
    journaled = _journaled_workdirs()
    if journaled is None:
        return []
    keep = set(keep or ()) | journaled
    removed = []
    for d in Path(root or tempfile.gettempdir()).glob(WORKDIR_PREFIX + "*"):
        if str(d) in keep:
            continue
        try:
            owner = int((d / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or pid_alive(owner):
            continue
        stop_cluster(d / "data")
        shutil.rmtree(d, ignore_errors=True)
        removed.append(str(d))
    return removed


def _journaled_workdirs() -> set[str] | None:
    from cli_ai.errors import CliAiError
    from cli_ai.safety.journal import Journal, state_dir

    try:
        record = Journal(state_dir()).read()
    except (CliAiError, OSError):
        return None  # cannot tell which one a journal needs: sweep nothing
    if record is None or record.backend.get("kind") != "postgres":
        return set()
    return {str((record.backend.get("config") or {}).get("workdir"))}


def _last_line(text: str) -> str:
    lines = [l.strip() for l in (text or "").splitlines() if l.strip()]
    return lines[-1] if lines else "no output"


@atexit.register
def _close_all() -> None:
    for cluster in list(LIVE):
        try:
            cluster.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


__all__ = ["ManagedCluster", "STARTED_PIDS", "WORKDIR_PREFIX", "adopt", "find_bindir", "find_pgbench",
           "postmaster_pid", "stop_cluster", "sweep_stale", "workdir_problem"]
