"""Whether an argv runs code it carries: a shell, an interpreter given inline
code, a program that loads a script, or a wrapper around any of them.

cli-ai runs a benchmark without a shell, but `bash -c "a; b"`, `python3 -c
...`, `awk 'BEGIN{system(...)}'`, `env sh`, `timeout 5 sh` or `sysbench
./x.lua run` are plain argv lists that run whatever code they hold. Such a
command is a shell in all but name, so it needs `--allow-shell` (and the
person's confirmation of the exact command) like shell syntax does.

The rule is one pure function, `interpreter_in(argv)`, over the tables below
(data, so a new name is one line). It is deliberately broad: a false alarm
costs one flag, a miss runs code as root.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from typing import Iterable, Mapping, Sequence

# Programs whose arguments are shell code (or that always run a shell).
SHELLS = frozenset(
    """sh bash dash zsh ksh ksh93 mksh pdksh oksh loksh lksh rbash ash yash posh fish csh tcsh rc es elvish
    nu xonsh pwsh powershell busybox toybox watch script su ssh parallel""".split()
)
# Programs whose first operand (or every operand) is a program in their
# language, or that run shell commands from a file or option (make recipes,
# an editor's `-c '!cmd'`).
CODE_RUNNERS = frozenset(
    """awk gawk mawk nawk original-awk busybox-awk lua luajit texlua tclsh wish expect jimsh php php-cgi
    sqlite3 gdb jshell jrunscript osascript make gmake bmake ninja vim vi ex nvim emacs ed""".split()
)
# Interpreters that run a script file (the person's program, like any other
# binary) but run inline code after one of these options; short options may
# be clustered (`perl -ne`, `python3 -Ic`).
INLINE_CODE_OPTIONS: dict[str, tuple[str, tuple[str, ...], str]] = {
    # name: (short option letters that run code, long options that do,
    #        short options that take the next argument as their value)
    "python": ("c", (), "WXQ"),
    "pypy": ("c", (), "WXQ"),
    "ipython": ("c", (), ""),
    "perl": ("eEMm", (), "IxCdD"),
    "ruby": ("er", ("--require",), "ICEFKWTx"),
    "node": ("epr", ("--eval", "--print", "--require", "--import", "--loader", "--experimental-loader"), "C"),
    "nodejs": ("epr", ("--eval", "--print", "--require", "--import", "--loader", "--experimental-loader"), "C"),
    "bun": ("ep", ("--eval", "--print", "--preload"), ""),
    "deno": ("e", ("eval", "--eval"), ""),
    "rscript": ("e", (), ""),
    "r": ("e", (), ""),
}
# Programs that run another program given in their arguments.
WRAPPERS = frozenset(
    """env nice ionice timeout nohup setsid stdbuf sudo doas runuser sg xargs find chrt taskset numactl
    unshare nsenter chroot flock time strace ltrace perf valgrind setpriv prlimit cgexec systemd-run
    firejail capsh faketime exec command builtin catchsegv eatmydata fakeroot dbus-run-session
    xvfb-run chpst softlimit setarch linux32 linux64 cpulimit trickle torsocks proxychains proxychains4
    schedtool nocache pkexec""".split()
)
# Benchmark programs with an option (or operand) that loads a script that
# can run any program: wrk's Lua, pgbench's \shell, fio's exec_*, sysbench's
# Lua test files.
SCRIPT_OPTIONS: dict[str, tuple[str, ...]] = {
    "wrk": ("-s", "--script"),
    "pgbench": ("-f", "--file"),
    "fio": ("--exec_prerun", "--exec_postrun", "--exec-prerun", "--exec-postrun"),
}

_VERSION_SUFFIX = re.compile(r"[-_.]?\d+(\.\d+)*[a-z]?$")


def program_name(arg: str) -> str:
    """The normalised name of a program: basename, lower case, version
    suffix dropped (`/usr/bin/python3.11` -> python, `lua5.4` -> lua)."""
    base = os.path.basename(arg.strip()).lower()
    stripped = _VERSION_SUFFIX.sub("", base)
    return stripped or base


def _inline_option(name: str, args: Sequence[str]) -> str | None:
    """The inline-code option of interpreter `name` among its options, if any
    (the options end at the script file, whose own arguments follow)."""
    shorts, longs, takes_value = INLINE_CODE_OPTIONS[name]
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--":
            return None
        if arg == "-":
            return "-"  # the program comes from stdin
        if arg.startswith("--"):
            if arg.partition("=")[0] in longs:
                return arg
            continue
        if arg.startswith("-") and len(arg) > 1:
            # a cluster (`-Ic`, `-lne`) runs code if a code letter comes before
            # the first option that takes the rest as its value
            for ch in arg[1:]:
                if ch in shorts:
                    return arg
                if ch in takes_value:
                    skip = arg.endswith(ch)
                    break
                if not ch.isalpha():
                    break
            continue
        if arg in longs:  # a subcommand (`deno eval`)
            return arg
        return None
    return None


def _sysbench_script(args: Sequence[str]) -> str | None:
    """sysbench's test operand when it is a Lua file rather than a built-in name."""
    for arg in args:
        if arg.startswith("-"):
            continue
        return arg if ("/" in arg or arg.lower().endswith(".lua")) else None
    return None


def _direct(argv: Sequence[str]) -> str | None:
    """Why argv[0] itself runs code from the command line, or None."""
    if not argv:
        return None
    name = program_name(argv[0])
    if name in SHELLS:
        return f"{argv[0]} is a shell"
    if name in CODE_RUNNERS:
        return f"{argv[0]} runs the program given in its arguments"
    if name in INLINE_CODE_OPTIONS:
        opt = _inline_option(name, argv[1:])
        if opt is not None:
            return f"{argv[0]} {opt} runs inline code"
    if name in SCRIPT_OPTIONS:
        for arg in argv[1:]:
            if arg.partition("=")[0] in SCRIPT_OPTIONS[name] or (
                    len(arg) > 2 and not arg.startswith("--") and arg[:2] in SCRIPT_OPTIONS[name]):
                return f"{argv[0]} {arg} loads a script that can run any program"
    if name == "sysbench":
        script = _sysbench_script(argv[1:])
        if script is not None:
            return f"sysbench {script} loads a Lua script that can run any program"
    if name == "fio":
        jobs = [a for a in argv[1:] if a and not a.startswith("-")]
        if jobs:
            return f"fio {jobs[0]} loads a job file, which can run any program (exec_prerun=)"
    return None


def _embedded_commands(arg: str) -> list[str]:
    """Command lines a wrapper's operand may carry: the operand itself when it
    holds spaces (`env -S "sh -c x"`), an option's value (`--split-string=sh
    -c x`), a short option's attached value (`-S"sh -c x"`)."""
    out = []
    if any(c.isspace() for c in arg):
        out.append(arg)
    if arg.startswith("-"):
        if "=" in arg:
            out.append(arg.split("=", 1)[1])
        if not arg.startswith("--") and len(arg) > 2:
            out.append(arg[2:])
    return [t for t in out if t.strip()]


def interpreter_in(argv: Sequence[str]) -> str | None:
    """Why `argv` runs code it carries (a shell, inline code, a script, a
    wrapper around one of them), or None for a plain program.

    A wrapper's operands are scanned as programs from every position (`env
    -u X nice -n 5 sh`, `find . -exec sh {} ;`); operands holding spaces are
    split too (`env -S "sh -c x"`)."""
    argv = [str(a) for a in argv]
    why = _direct(argv)
    if why is not None or not argv or program_name(argv[0]) not in WRAPPERS:
        return why
    for k in range(1, len(argv)):
        why = _direct(argv[k:])
        if why is None:
            for text in _embedded_commands(argv[k]):
                why = interpreter_in(text.split() + argv[k + 1:])
                if why is not None:
                    break
        if why is not None:
            return f"{why}, started through {argv[0]}"
    return None


# --------------------------------------------------------------------------- placeholders

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}")
# How many concrete argvs a template may expand to before checking gives up
# (and asks for --allow-shell instead).
MAX_EXPANSIONS = 4096


def placeholders(argv: Iterable[str]) -> list[str]:
    """The knob names used as {name} in `argv`, in first-use order."""
    seen: list[str] = []
    for arg in argv:
        for m in PLACEHOLDER.finditer(arg):
            if m.group(1) not in seen:
                seen.append(m.group(1))
    return seen


def render(value) -> str:
    """A knob value as the program sees it: ints as ints, floats in full
    precision, bools as true/false, vectors space-separated, enums as given."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    return str(value)


def knob_renderings(knobs: Iterable) -> dict[str, list[str]]:
    """Every rendered value an enum or bool knob can take, one sample for a
    number (a number never names a program or an option)."""
    out: dict[str, list[str]] = {}
    for k in knobs:
        if k.type == "enum":
            out[k.param] = [render(v) for v in (k.values or ())]
        elif k.type == "bool":
            out[k.param] = ["true", "false"]
        else:
            out[k.param] = ["0"]
    return out


def fill(argv: Sequence[str], rendered: Mapping[str, str]) -> list[str]:
    """Put rendered values into {name} placeholders in one pass: a value is
    never scanned again, so it can never be (or build) another placeholder,
    and it stays inside the one argv element its placeholder was in."""

    def one(arg: str) -> str:
        return PLACEHOLDER.sub(lambda m: rendered.get(m.group(1), m.group(0)), arg)

    return [one(a) for a in argv]


@functools.lru_cache(maxsize=1)
def _names_in_tables() -> frozenset[str]:
    longs = {opt for _, opts, _ in INLINE_CODE_OPTIONS.values() for opt in opts}
    return frozenset(SHELLS | CODE_RUNNERS | WRAPPERS | set(INLINE_CODE_OPTIONS) | set(SCRIPT_OPTIONS)
                     | {"sysbench"} | longs)


def _plain(arg: str) -> bool:
    """Whether no rule above can tell `arg` from "0": not an option, no path,
    no whitespace, no Lua file, and not a name in any table."""
    return bool(arg) and not arg.startswith("-") and "/" not in arg and not any(c.isspace() for c in arg) \
        and not arg.lower().endswith(".lua") and program_name(arg) not in _names_in_tables() \
        and arg.lower() not in _names_in_tables()


def template_interpreter(argv: Sequence[str], candidates: Mapping[str, Sequence[str]]) -> str | None:
    """`interpreter_in` for an argv template, over every value its
    placeholders can take (`candidates`: name -> rendered values), so `{prog}`
    with the values sh and bash is caught. A placeholder that names the
    program itself is refused whatever its values.

    Each element's renderings are reduced to the ones that can matter (every
    "plain" rendering behaves like "0" under every rule), then the elements'
    renderings are combined. Elements are combined independently even when
    they share a placeholder: that checks more combinations than can occur,
    never fewer."""
    argv = [str(a) for a in argv]
    if argv and PLACEHOLDER.search(argv[0]):
        return f"the program itself comes from a placeholder ({argv[0]})"
    why = interpreter_in(argv)
    if why is not None or not placeholders(argv):
        return why
    choices: list[list[str]] = []
    total = 1
    for arg in argv:
        names = placeholders([arg])
        if not names:
            choices.append([arg])
            continue
        pools = [list(candidates.get(n, ("0",))) or ["0"] for n in names]
        count = 1
        for pool in pools:
            count *= len(pool)
        if count > MAX_EXPANSIONS:
            return f"{arg!r} takes {count} combinations of values, too many to check one by one"
        # `--name={v}`: the option's name is fixed text, so only a value with
        # a path, a space or a Lua file in it can matter
        first = PLACEHOLDER.search(arg)
        eq = arg.find("=")
        fixed_option = arg.startswith("-") and first is not None and 0 < eq < first.start()
        seen: list[str] = []
        for combo in itertools.product(*pools):
            text = fill([arg], dict(zip(names, combo)))[0]
            if fixed_option:
                rest = text[eq + 1:]
                if "/" not in rest and not any(c.isspace() for c in rest) and not rest.lower().endswith(".lua"):
                    text = text[:eq + 1] + "0"
            elif _plain(text):
                text = "0"
            if text not in seen:
                seen.append(text)
        choices.append(seen)
        total *= len(seen)
        if total > MAX_EXPANSIONS:
            return f"its placeholders take more than {MAX_EXPANSIONS} distinct combinations, too many to check"
    for concrete in itertools.product(*choices):
        why = interpreter_in(list(concrete))
        if why is not None:
            shown = " ".join(c for c, a in zip(concrete, argv) if c != a)
            return f"with the value(s) {shown} {why}"
    return None


__all__ = ["SHELLS", "CODE_RUNNERS", "INLINE_CODE_OPTIONS", "WRAPPERS", "SCRIPT_OPTIONS", "program_name",
           "interpreter_in", "PLACEHOLDER", "placeholders", "render", "knob_renderings", "fill", "template_interpreter", "MAX_EXPANSIONS"]
