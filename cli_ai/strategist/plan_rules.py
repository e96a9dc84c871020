"""The prompt's rules, checked on a parsed plan: how many params it tunes, and
whether its benchmark can run on this machine.

The schema and the safety checks say whether a spec is well formed and safe;
they cannot say that `pgbench testdb` has no PostgreSQL to talk to, or that
`wrk http://127.0.0.1:8080/` points at a port nothing listens on: such a plan
passes every check and then fails (or measures nothing) at its first
benchmark run. `plan_rule_problems` answers those questions here and now,
with one line per problem that names the fix, so it can go back to an LLM in
a repair round or be shown for an offline plan.

Probes are read-only: a TCP or Unix-socket connect that is closed at once,
`/proc/net/tcp{,6}` for the ports that do listen, PATH for the tools.
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

from cli_ai.spec import TuningSpec
from cli_ai.spec.model import BUILTIN_RUNNERS  # tcp-accept, probe: cli-ai's own, always runnable
from cli_ai.strategist.policy import PGBENCH, SYSBENCH_TESTS

#: The prompt's rule 2 ("Tune 2 to 6 params"); prompts.SYSTEM_PROMPT states the same numbers.
MIN_PARAMS = 2
MAX_PARAMS = 6
PROBE_TIMEOUT_S = 1.0
PG_SOCKET_DIRS = ("/var/run/postgresql", "/run/postgresql", "/tmp")
MYSQL_SOCKETS = ("/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock")
# sysbench's tests that need a database server (the rest run on their own).
SYSBENCH_DB_PREFIXES = ("oltp_", "select_random_", "bulk_insert")
FALLBACK = 'or use {"runner": "tcp-accept"} (built in, needs no server)'


@dataclass(frozen=True)
class Probe:
    """How the checks look at the machine; tests give a PATH or a /proc root."""

    which: Callable[[str], str | None] = shutil.which
    proc_root: str = "/proc"
    timeout: float = PROBE_TIMEOUT_S


def listening_ports(text: str) -> set[int]:
    """The ports in LISTEN state (st 0A) in the text of /proc/net/tcp or tcp6."""
    ports: set[int] = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A":
            continue
        _, _, port = fields[1].rpartition(":")
        try:
            ports.add(int(port, 16))
        except ValueError:
            continue
    return ports


def _listening_here(probe: Probe) -> list[int]:
    ports: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            ports |= listening_ports(Path(probe.proc_root, "net", name).read_text())
        except OSError:
            continue
    return sorted(ports)


def tcp_listens(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connect to host:port is accepted (closed at once)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def unix_listens(path: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            return True
    except (OSError, ValueError):
        return False


def _ports_hint(probe: Probe) -> str:
    ports = _listening_here(probe)
    if not ports:
        return "nothing listens on a TCP port here"
    shown = ", ".join(str(p) for p in ports[:12]) + (" ..." if len(ports) > 12 else "")
    return f"TCP ports listening here: {shown}"


def _option(args: list[str], shorts: Iterable[str], longs: Iterable[str]) -> str | None:
    """The last value given to one of the options (-p 5432, -p5432, --port=5432, --port 5432)."""
    found = None
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in longs:
            found = value if eq else (args[i + 1] if i + 1 < len(args) else None)
        elif not arg.startswith("--") and arg[:2] in shorts:
            found = arg[2:] if len(arg) > 2 else (args[i + 1] if i + 1 < len(args) else None)
    return found


def _positional(args: list[str], value_opts: frozenset[str]) -> list[str]:
    """The arguments that are neither options nor an option's separate value."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in value_opts  # "-h HOST"; "-hHOST" and "--host=HOST" carry their value
        else:
            out.append(arg)
    return out


def _port(text: str | None, default: int) -> int | None:
    if text is None:
        return default
    try:
        port = int(text)
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def param_count_problems(spec: TuningSpec) -> list[str]:
    n = len(spec.action_space)
    if n < MIN_PARAMS:
        return [f"action_space: {n} param; tune {MIN_PARAMS} to {MAX_PARAMS}: add "
                f"{MIN_PARAMS - n} more from the catalogue that the goal can gain from"]
    if n > MAX_PARAMS:
        return [f"action_space: {n} params; tune {MIN_PARAMS} to {MAX_PARAMS}: keep the {MAX_PARAMS} "
                "that matter most for the goal and drop the rest"]
    return []


def _pgbench(where: str, args: list[str], probe: Probe) -> list[str]:
    port = _port(_option(args, ("-p",), ("--port",)) or os.environ.get("PGPORT"), 5432)
    if port is None:
        return [f"{where}: pgbench -p must be a port number 1-65535"]
    host = _option(args, ("-h",), ("--host",)) or os.environ.get("PGHOST")
    dbname = next(iter(_positional(args, PGBENCH.value_opts)), None)
    db = f"for database {dbname!r} " if dbname else ""
    if host and not host.startswith("/"):
        if tcp_listens(host, port, probe.timeout):
            return []
        return [f"{where}: pgbench needs a PostgreSQL server {db}and nothing accepts connections on "
                f"{host}:{port} ({_ports_hint(probe)}); give -h/-p of the running server, {FALLBACK}"]
    dirs = (host,) if host else PG_SOCKET_DIRS
    sockets = [os.path.join(d, f".s.PGSQL.{port}") for d in dirs]
    if any(unix_listens(s, probe.timeout) for s in sockets):
        return []
    return [f"{where}: pgbench needs a PostgreSQL server {db}and none is running here (no socket "
            f"{' or '.join(sockets)}); plan it only when the profile lists postgres as running, {FALLBACK}"]


def _wrk(where: str, args: list[str], probe: Probe) -> list[str]:
    url = next((a for a in args if a.startswith(("http://", "https://"))), None)
    if url is None:
        return []  # the policy reports a missing URL
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return []  # the policy reports a bad URL
    if tcp_listens(host, port, probe.timeout):
        return []
    return [f"{where}: wrk's URL {url} has no server listening on {host}:{port} ({_ports_hint(probe)}); "
            f"point wrk at a port where the web server listens, {FALLBACK}"]


def _redis(where: str, args: list[str], probe: Probe) -> list[str]:
    host = _option(args, ("-h",), ()) or "127.0.0.1"
    port = _port(_option(args, ("-p",), ()), 6379)
    if port is None:
        return [f"{where}: redis-benchmark -p must be a port number 1-65535"]
    if tcp_listens(host, port, probe.timeout):
        return []
    return [f"{where}: redis-benchmark needs a Redis server and nothing listens on {host}:{port} "
            f"({_ports_hint(probe)}); give -h/-p of the running server, {FALLBACK}"]


def _sysbench(where: str, args: list[str], probe: Probe) -> list[str]:
    test = next((a for a in args if a in SYSBENCH_TESTS), "")
    if not test.startswith(SYSBENCH_DB_PREFIXES):
        return []
    driver = _option(args, (), ("--db-driver",)) or "mysql"
    if driver == "pgsql":
        host = _option(args, (), ("--pgsql-host",)) or "localhost"
        port = _port(_option(args, (), ("--pgsql-port",)), 5432)
        sockets: tuple[str, ...] = ()
    else:
        host = _option(args, (), ("--mysql-host",)) or "localhost"
        port = _port(_option(args, (), ("--mysql-port",)), 3306)
        sockets = MYSQL_SOCKETS if host == "localhost" else ()
    if port is None:
        return [f"{where}: sysbench's port must be a number 1-65535"]
    if tcp_listens(host.split(",")[0], port, probe.timeout) or any(unix_listens(s, probe.timeout) for s in sockets):
        return []
    return [f"{where}: sysbench {test} needs a {'PostgreSQL' if driver == 'pgsql' else 'MySQL'} server and "
            f"none answers on {host}:{port} ({_ports_hint(probe)}); use a test that needs no server "
            f"(cpu, memory, threads, mutex, fileio), {FALLBACK}"]


SERVER_CHECKS = {"pgbench": _pgbench, "wrk": _wrk, "redis-benchmark": _redis, "sysbench": _sysbench}


def runnable_problems(spec: TuningSpec, probe: Probe = Probe()) -> list[str]:
    """Why the spec's benchmark cannot run here: its tool is not installed, or
    the server it measures is not there. Empty for a runnable or built-in one."""
    from cli_ai.strategist.policy import benchmark_argv

    b = spec.benchmark
    if b is None or b.runner in BUILTIN_RUNNERS:
        return []
    found = benchmark_argv(spec)
    if found is None:
        return []
    program, args = found
    tool = program.rsplit("/", 1)[-1]
    where = "benchmark_command" if b.command is not None else "benchmark"
    if probe.which(program) is None:
        return [f"{where}: {tool} is not installed here; use a runner the profile lists as installed, {FALLBACK}"]
    check = SERVER_CHECKS.get(tool)
    return check(where, list(args), probe) if check else []


def plan_rule_problems(spec: TuningSpec, *, runnable: bool = True, probe: Probe = Probe()) -> list[str]:
    """The prompt's rules on a parsed plan, one line per problem naming the fix
    (empty: it keeps them). Only for targets planned from the catalogue
    (sysctl); `runnable=False` skips the machine probes (a dry run measures nothing)."""
    from cli_ai.targets import get_target

    if get_target(spec.target).planning != "templates":
        return []
    problems = param_count_problems(spec)
    if runnable:
        problems += runnable_problems(spec, probe)
    return problems


__all__ = ["plan_rule_problems", "param_count_problems", "runnable_problems", "listening_ports", "Probe",
           "MIN_PARAMS", "MAX_PARAMS"]
