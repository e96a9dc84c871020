"""What a strategist may ask cli-ai to run, beyond the general safety checks.

The safety checks refuse shell syntax in a benchmark command. A spec written by
a model needs a stricter fence: a plain argv can still be destructive
(`fio --filename=/dev/sda`, `fio --exec_prerun=...`, `pgbench -f script` with
`\\shell`, `wrk -s script.lua`, `redis-benchmark FLUSHALL`). So a planned spec
may only name one of the known benchmark runners, with options from an
allow-list per runner. Each problem is one line with a JSON path, in the same
style as the schema and safety errors, so it goes back to the model for repair.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from cli_ai.spec import TuningSpec, strip_trailing_redirect
from cli_ai.spec.builtin import TCP_ACCEPT_OPTIONS

RUNNERS = ("pgbench", "wrk", "sysbench", "redis-benchmark", "fio", "tcp-accept", "probe")
# The numbers each runner's parser reports (cli_ai/tactician/benchmarks/),
# preferred name first; all throughputs, so higher is better.
RUNNER_METRICS: dict[str, tuple[str, ...]] = {
    "pgbench": ("transactions_per_second", "tps"),
    "wrk": ("requests_per_second",),
    "sysbench": ("operations_per_second", "events_per_second", "transactions_per_second", "queries_per_second"),
    "redis-benchmark": ("requests_per_second", "rps"),
    "fio": ("write_iops", "read_iops", "iops", "write_bw_kib_s", "read_bw_kib_s", "bw_kib_s"),
    "tcp-accept": ("connections_per_second",),
    "probe": ("obtained", "fraction"),
}


@dataclass(frozen=True)
class _Rules:
    value_opts: frozenset[str]
    flag_opts: frozenset[str] = frozenset()
    forbidden: dict[str, str] = field(default_factory=dict)


PGBENCH = _Rules(
    value_opts=frozenset(
        "-c --client -j --jobs -T --time -t --transactions -h --host -p --port -U --username "
        "-M --protocol -P --progress -R --rate -L --latency-limit -b --builtin -s --scale".split()
    ),
    flag_opts=frozenset("-S --select-only -N --skip-some-updates -n --no-vacuum -r --report-per-command -C --connect".split()),
    forbidden={
        "-i": "initializes (drops and recreates) the pgbench tables",
        "--initialize": "initializes (drops and recreates) the pgbench tables",
        "-I": "runs initialization steps",
        "--init-steps": "runs initialization steps",
        "-f": "runs a custom script, which can execute shell commands (\\shell)",
        "--file": "runs a custom script, which can execute shell commands (\\shell)",
        "-D": "defines variables for custom scripts",
        "--define": "defines variables for custom scripts",
        "-l": "writes log files",
        "--log": "writes log files",
        "--log-prefix": "writes log files to a chosen path",
    },
)
WRK = _Rules(
    value_opts=frozenset("-t --threads -c --connections -d --duration -H --header --timeout".split()),
    flag_opts=frozenset("--latency".split()),
    forbidden={"-s": "loads a Lua script, which can run any program", "--script": "loads a Lua script, which can run any program"},
)
REDIS_BENCHMARK = _Rules(
    value_opts=frozenset("-h -p -c -n -d -P -t -r -k --threads --precision --dbnum".split()),
    flag_opts=frozenset("-q --csv".split()),
    forbidden={
        "-l": "loops forever, so the benchmark never ends",
        "-I": "idles forever, so the benchmark never ends",
        "-a": "puts a password into the spec",
        "--user": "puts credentials into the spec",
        "--pass": "puts a password into the spec",
        "-s": "connects through a socket file chosen by the plan; use -h 127.0.0.1 -p PORT",
    },
)
SYSBENCH_TESTS = (
    "cpu memory threads mutex fileio oltp_read_write oltp_read_only oltp_write_only oltp_point_select "
    "oltp_insert oltp_update_index oltp_update_non_index oltp_delete select_random_points select_random_ranges"
).split()
SYSBENCH_OPTION_FAMILIES = (
    "threads", "time", "events", "rate", "report-interval", "percentile", "histogram", "warmup-time",
    "forced-shutdown", "rand-type", "rand-seed", "validate", "cpu-", "memory-", "thread-", "mutex-", "file-",
    "db-driver", "mysql-host", "mysql-port", "mysql-db", "mysql-user", "pgsql-host", "pgsql-port", "pgsql-db",
    "pgsql-user", "tables", "table-size", "table_size", "range-size", "range_size", "skip-trx", "skip_trx",
    "point-selects", "point_selects", "simple-ranges", "simple_ranges", "sum-ranges", "sum_ranges",
    "order-ranges", "order_ranges", "distinct-ranges", "distinct_ranges", "index-updates", "index_updates",
    "non-index-updates", "non_index_updates", "delete-inserts", "delete_inserts",
)
FIO_OPTIONS = frozenset(
    """name rw readwrite bs blocksize size filesize nrfiles runtime time_based ramp_time ioengine iodepth
    numjobs direct buffered fsync fdatasync end_fsync fsync_on_close sync group_reporting output-format
    unlink rwmixread rwmixwrite randrepeat norandommap invalidate thread startdelay loops
    overwrite create_on_open percentile_list lat_percentiles clat_percentiles randseed file_service_type
    iodepth_batch iodepth_batch_submit iodepth_batch_complete iodepth_low refill_buffers zero_buffers
    fallocate random_distribution""".split()
)
FIO_IOENGINES = ("sync", "psync", "vsync", "pvsync", "pvsync2", "libaio", "io_uring", "posixaio", "mmap", "null")
FIO_FORBIDDEN = {
    "filename": "points fio at a chosen file or device, which it overwrites",
    "filename_format": "points fio at chosen files",
    "opendir": "points fio at a chosen directory tree",
    "directory": "points fio's files at a chosen directory (fio writes in the benchmark's private directory; "
                 "leave --directory out)",
    "output": "writes fio's report over a chosen file",
    "exec_prerun": "runs a shell command",
    "exec_postrun": "runs a shell command",
    "trim_percentage": "discards blocks of the device",
}


def _split(command: str) -> list[str] | None:
    try:
        return shlex.split(strip_trailing_redirect(command))
    except ValueError:
        return None


def benchmark_argv(spec: TuningSpec) -> tuple[str, list[str]] | None:
    """(program, arguments) of the spec's benchmark, or None when there is none."""
    b = spec.benchmark
    if b is None:
        return None
    if b.command is not None:
        argv = _split(b.command)
        if not argv:
            return None
        return argv[0], argv[1:]
    if b.runner == "command":
        args = list(b.args or ())
        return (args[0], args[1:]) if args else None
    return b.runner, list(b.args or ())


def _generic_options(where: str, tool: str, args: list[str], rules: _Rules) -> tuple[list[str], list[str]]:
    """Check -x / --long[=value] options; returns (problems, positional arguments)."""
    problems: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and len(arg) > 2:
            name, eq, _ = arg.partition("=")
            if name in rules.forbidden:
                problems.append(f"{where}: {tool} {name} is not allowed: it {rules.forbidden[name]}")
            elif name in rules.value_opts:
                if not eq:
                    i += 1
            elif name not in rules.flag_opts:
                problems.append(f"{where}: {tool} option {name} is not one the strategist may use")
        elif arg.startswith("-") and len(arg) > 1 and not _is_number(arg):
            name = arg[:2]
            if name in rules.forbidden:
                problems.append(f"{where}: {tool} {name} is not allowed: it {rules.forbidden[name]}")
            elif name in rules.value_opts:
                if len(arg) == 2:
                    i += 1
            elif arg not in rules.flag_opts:
                problems.append(f"{where}: {tool} option {arg} is not one the strategist may use")
        else:
            positional.append(arg)
        i += 1
    return problems, positional


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+(\.\d+)?", text))


# Hosts a planned benchmark may connect to without the person naming them:
# this machine. A remote host must appear in the person's own goal.
LOCAL_HOSTS = ("localhost", "ip6-localhost", "::1")


def is_local_host(host: str) -> bool:
    import ipaddress

    host = host.strip().strip("[]").lower()
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_problem(where: str, tool: str, option: str, host: str, goal: str) -> str | None:
    """Why `host` may not be used by a planned benchmark, or None (a local
    host, or one the person wrote in the goal)."""
    if is_local_host(host):
        return None
    if host and re.search(r"(?<![\w.-])" + re.escape(host) + r"(?![\w-])", goal or "", re.IGNORECASE):
        return None
    return (f"{where}: {tool} {option} {host!r} is not this machine; a planned benchmark connects to 127.0.0.1 "
            "or localhost unless the goal names the host")


def _values_of(args: list[str], shorts: tuple[str, ...], longs: tuple[str, ...]) -> list[str]:
    """The values given to the options `shorts` (-h VALUE, -hVALUE) and
    `longs` (--host VALUE, --host=VALUE) in `args`."""
    out: list[str] = []
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in longs:
            out.append(value if eq else (args[i + 1] if i + 1 < len(args) else ""))
        elif not arg.startswith("--") and arg[:2] in shorts:
            out.append(arg[2:] if len(arg) > 2 else (args[i + 1] if i + 1 < len(args) else ""))
    return out


def _pgbench(where: str, args: list[str], goal: str = "") -> list[str]:
    problems, positional = _generic_options(where, "pgbench", args, PGBENCH)
    for host in _values_of(args, ("-h",), ("--host",)):
        if host in ("/run/postgresql", "/var/run/postgresql"):  # the local server's socket directory
            continue
        why = _host_problem(where, "pgbench", "--host", host, goal)
        if why:
            problems.append(why)
    if len(positional) > 1:
        problems.append(f"{where}: pgbench takes one database name, got {' '.join(positional)}")
    for p in positional:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", p):
            problems.append(f"{where}: {p!r} is not a plain database name")
    return problems


def _wrk(where: str, args: list[str], goal: str = "") -> list[str]:
    from urllib.parse import urlsplit

    problems, positional = _generic_options(where, "wrk", args, WRK)
    urls = [p for p in positional if re.match(r"^https?://", p)]
    if len(positional) != 1 or len(urls) != 1:
        problems.append(f"{where}: wrk takes exactly one http:// or https:// URL, got {positional or 'none'}")
    for url in urls:
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            host = ""
        why = _host_problem(where, "wrk", "URL host", host, goal)
        if why:
            problems.append(why)
    return problems


def _redis(where: str, args: list[str], goal: str = "") -> list[str]:
    problems, positional = _generic_options(where, "redis-benchmark", args, REDIS_BENCHMARK)
    for host in _values_of(args, ("-h",), ()):
        why = _host_problem(where, "redis-benchmark", "-h", host, goal)
        if why:
            problems.append(why)
    if positional:
        problems.append(
            f"{where}: redis-benchmark runs its own tests (-t set,get); custom commands such as "
            f"{' '.join(positional)!r} are not allowed"
        )
    return problems


def _sysbench(where: str, args: list[str], goal: str = "") -> list[str]:
    problems: list[str] = []
    for option in ("--mysql-host", "--pgsql-host"):
        for hosts in _values_of(args, (), (option,)):
            for host in hosts.split(","):  # sysbench takes a list
                why = _host_problem(where, "sysbench", option, host, goal)
                if why:
                    problems.append(why)
    positional = [a for a in args if not a.startswith("-")]
    for a in args:
        if not a.startswith("-"):
            continue
        m = re.fullmatch(r"--([A-Za-z][A-Za-z0-9_-]*)(=.*)?", a)
        if not m:
            problems.append(f"{where}: sysbench option {a!r} must have the form --name=value")
        elif not any(m.group(1) == f or (f.endswith("-") and m.group(1).startswith(f)) for f in SYSBENCH_OPTION_FAMILIES):
            problems.append(f"{where}: sysbench option --{m.group(1)} is not one the strategist may use")
    if not positional or positional[0] not in SYSBENCH_TESTS:
        problems.append(
            f"{where}: sysbench needs a built-in test first ({', '.join(SYSBENCH_TESTS[:5])}, oltp_*), "
            f"got {positional[0] if positional else 'none'}"
        )
    elif positional[1:] != ["run"]:
        problems.append(f"{where}: sysbench must end with the command 'run' (no prepare/cleanup), got {positional[1:]}")
    return problems


def _fio(where: str, args: list[str], goal: str = "") -> list[str]:
    """fio's files go in the benchmark's private working directory (a fresh
    one under /var/tmp, removed after the step), named by a plain --name:
    no --directory (fio reads `a:b` as a list of directories) and no path in
    the name (`--name=../etc/cron.d/x` is a file name too)."""
    problems: list[str] = []
    for a in args:
        m = re.fullmatch(r"--([A-Za-z_][A-Za-z0-9_-]*)(?:=(.*))?", a)
        if not m:
            problems.append(f"{where}: fio argument {a!r} is not an option; job files are not allowed, give --name=value options")
            continue
        name, value = m.group(1), m.group(2)
        if name in FIO_FORBIDDEN or name.startswith(("write_", "exec_", "trigger", "remote", "client", "server")):
            why = FIO_FORBIDDEN.get(name, "writes files or runs programs outside the benchmark")
            problems.append(f"{where}: fio --{name} is not allowed: it {why}")
        elif name not in FIO_OPTIONS:
            problems.append(f"{where}: fio option --{name} is not one the strategist may use")
        elif name == "ioengine" and value not in FIO_IOENGINES:
            problems.append(f"{where}: fio --ioengine={value} is not allowed; use one of {', '.join(FIO_IOENGINES)}")
        elif name == "name" and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", value or ""):
            problems.append(f"{where}: fio --name={value} must be a plain name (letters, digits, '-', '_'); "
                            "it names fio's files, so it may not hold a path")
    return problems


def _tcp_accept(where: str, args: list[str], goal: str = "") -> list[str]:
    from cli_ai.spec.builtin import tcp_accept_problems

    return tcp_accept_problems(args, where)


def _probe(where: str, args: list[str], goal: str = "") -> list[str]:
    from cli_ai.spec.builtin import parse_probe_args

    return parse_probe_args(args, where)[2]


CHECKERS = {
    "pgbench": _pgbench,
    "wrk": _wrk,
    "redis-benchmark": _redis,
    "sysbench": _sysbench,
    "fio": _fio,
    "tcp-accept": _tcp_accept,
    "probe": _probe,
}


def plan_policy_problems(spec: TuningSpec, *, skip_args: bool = False, goal: str = "") -> list[str]:
    """Why a planned spec may not be used as is (empty list: it may). `goal`
    is the person's own words: a host named there may be benchmarked."""
    problems: list[str] = []
    from cli_ai.targets import get_target

    planning = get_target(spec.target).planning
    if planning != "templates":
        if planning == "person":
            problems.append(
                "target: a planned spec tunes kernel sysctls (target \"sysctl\"); a program's own flags "
                "(target \"command\") come only from a spec the person writes"
            )
        else:
            problems.append(
                f"target: {spec.target!r} specs come from the ready examples (cli-ai plan --provider offline); "
                "plan kernel sysctls here (target \"sysctl\")"
            )
        return problems
    found = benchmark_argv(spec)
    if found is None:
        if spec.benchmark is not None and spec.benchmark.runner in ("tcp-accept", "probe"):
            found = (spec.benchmark.runner, list(spec.benchmark.args or ()))
        else:
            return problems  # a missing benchmark is a schema problem, reported there
    program, args = found
    where = "benchmark_command" if spec.benchmark and spec.benchmark.command is not None else "benchmark"
    if "/" in program:
        problems.append(f"{where}: give the benchmark program by name ({program.rsplit('/', 1)[-1]}), not by path")
        program = program.rsplit("/", 1)[-1]
    if program not in CHECKERS:
        problems.append(
            f"{where}: {program!r} is not a benchmark the strategist may run; use one of "
            f"{', '.join(RUNNERS)} (tcp-accept is cli-ai's built-in loopback benchmark: "
            '"benchmark": {"runner": "tcp-accept"})'
        )
        return problems
    metrics = RUNNER_METRICS[program]
    if spec.reward_metric not in metrics:
        problems.append(
            f"reward_metric: {spec.reward_metric!r} is not a number {program} reports; use "
            + " or ".join(repr(m) for m in metrics)
        )
    elif spec.metric_direction != "maximize":
        problems.append(f"metric_direction: {spec.reward_metric} is a throughput; use \"maximize\"")
    if not skip_args:
        problems.extend(CHECKERS[program](where, args, goal))
    return problems


__all__ = ["plan_policy_problems", "benchmark_argv", "RUNNERS", "RUNNER_METRICS", "TCP_ACCEPT_OPTIONS"]
