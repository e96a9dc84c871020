"""Safety checks that stand between a spec and the machine.

`check_spec` refuses (SafetyError, exit 3) anything that is not a catalogue
entry, asks for a range outside the safe one (unless `clamp`), or does not exist
on this kernel; `plan_command` refuses shell syntax in a benchmark command
unless the person allowed a shell. Both are pure functions of their inputs and
the catalogue, so the strategist can run them on an LLM's answer too.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

from cli_ai.core.backend import Value
from cli_ai.errors import SafetyError
from cli_ai.safety.catalog import CatalogEntry, lookup
from cli_ai.safety.interpreters import template_interpreter
from cli_ai.spec import KnobSpec, TuningSpec, VectorElement, strip_trailing_redirect
from cli_ai.spec.model import BUILTIN_RUNNERS

# Params that run programs, crash the machine on purpose, switch off
# protections or open the machine as a router. They are refused even if
# someone adds them to the catalogue, in any spelling the kernel or
# sysctl(8) accepts (`/` separators, a /proc/sys prefix, any case):
# `denied_reason` matches the canonical name.
DENIED_PARAMS = {
    "kernel.core_pattern": "runs a program chosen by its value on every crash",
    "kernel.modprobe": "names the program the kernel runs to load modules",
    "kernel.hotplug": "names a program the kernel runs on device events",
    "kernel.poweroff_cmd": "names a program the kernel runs to power off",
    "kernel.usermodehelper.bset": "controls capabilities of kernel-spawned programs",
    "kernel.usermodehelper.inheritable": "controls capabilities of kernel-spawned programs",
    "kernel.sysrq": "enables magic SysRq keys that can reboot the machine",
    "kernel.panic": "changes what the machine does on a kernel panic",
    "kernel.panic_on_oops": "turns a recoverable oops into a panic",
    "kernel.modules_disabled": "cannot be undone until reboot",
    "kernel.kexec_load_disabled": "cannot be undone until reboot",
    "kernel.unprivileged_bpf_disabled": "lets unprivileged users load BPF programs into the kernel",
    "kernel.kptr_restrict": "reveals kernel addresses to users",
    "kernel.dmesg_restrict": "reveals the kernel log to users",
    "kernel.perf_event_paranoid": "opens kernel profiling to unprivileged users",
    "kernel.randomize_va_space": "switches address space layout randomisation off",
    "kernel.io_uring_disabled": "opens io_uring to unprivileged users",
    "vm.mmap_min_addr": "allows mapping the NULL page (a kernel exploit aid)",
    "vm.drop_caches": "is an action, not a setting",
    "vm.compact_memory": "is an action, not a setting",
    "vm.panic_on_oom": "turns out-of-memory into a panic",
    "net.ipv4.ip_forward": "turns the machine into a router",
    "fs.suid_dumpable": "lets setuid programs dump core with their secrets",
}
# Families, as globs over the canonical name ('*' spans dots): every
# interface's copy (conf.all, conf.default, conf.eth0) and both IP versions.
DENIED_PATTERNS: tuple[tuple[str, str], ...] = (
    ("net.ipv4.ip_forward*", "turns the machine into a router"),
    ("net.ipv*.conf.*.forwarding", "turns the machine into a router"),
    ("net.ipv*.conf.*.mc_forwarding", "turns the machine into a multicast router"),
    ("net.*.accept_redirects", "lets other hosts rewrite the routing table"),
    ("net.*.secure_redirects", "lets gateways rewrite the routing table"),
    ("net.*.send_redirects", "makes the machine send routing redirects, as a router does"),
    ("net.*.accept_source_route", "accepts source-routed packets (a spoofing aid)"),
    ("net.*.rp_filter", "changes reverse-path (anti-spoofing) filtering"),
    ("net.*.proxy_arp*", "answers ARP for other hosts"),
    ("net.*.proxy_ndp", "answers neighbour discovery for other hosts"),
    ("net.*.accept_local", "accepts packets with a local source address from the network"),
    ("net.*.route_localnet", "routes 127.0.0.0/8 to and from the network"),
    ("net.ipv6.conf.*.accept_ra*", "lets router advertisements change routes and addresses"),
    ("net.core.bpf_jit*", "weakens or changes the BPF JIT's hardening"),
    ("kernel.yama.*", "controls ptrace protection between processes"),
    ("kernel.kexec*", "controls loading another kernel"),
    ("kernel.sysrq*", "controls the magic SysRq keys that can reboot the machine"),
    ("kernel.unprivileged_*", "opens a privileged kernel feature to unprivileged users"),
    ("kernel.panic*", "changes what the machine does on a kernel panic"),
    ("kernel.usermodehelper.*", "controls programs the kernel runs"),
    ("fs.binfmt_misc.*", "controls programs the kernel runs"),
    ("fs.protected_*", "switches off link and FIFO protections in shared directories"),
)


def canonical_sysctl_name(name: str) -> str:
    """A sysctl name as the kernel resolves it: `/` and `.` both separate
    (sysctl(8) takes net/ipv4/ip_forward), a /proc/sys prefix is a path to
    the same file, and case is folded so lookalikes compare equal."""
    text = name.strip().replace("/", ".").lower()
    text = re.sub(r"\.+", ".", text).strip(".")
    if text.startswith("proc.sys."):
        text = text[len("proc.sys."):]
    return text


def denied_reason(name: str) -> str | None:
    """Why `name` (in any spelling) is never tuned, or None."""
    import fnmatch

    canon = canonical_sysctl_name(name)
    if canon in DENIED_PARAMS:
        return DENIED_PARAMS[canon]
    for pattern, why in DENIED_PATTERNS:
        if fnmatch.fnmatchcase(canon, pattern):
            return why
    return None


SYSCTL_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[A-Za-z0-9_-]+)+$")


@dataclass
class SafetyReport:
    """What the checks decided: the knobs to use (narrowed by --clamp) and notes."""

    knobs: tuple[KnobSpec, ...]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    entries: dict[str, CatalogEntry] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandPlan:
    """How a benchmark command will run: as argv, or through /bin/sh -c when allowed."""

    text: str
    argv: tuple[str, ...]
    shell: bool
    shell_syntax: tuple[str, ...] = ()
    # Why the program runs code it is given (allowed by --allow-shell), if it does.
    interpreter: str | None = None


def param_name_problem(name: str) -> str | None:
    """Why `name` can never be a sysctl cli-ai touches, or None."""
    if "\x00" in name or "\n" in name or "\r" in name:
        return "contains a NUL or newline character"
    denied = denied_reason(name)
    if denied is not None:
        return f"is never tuned by cli-ai: it {denied}"
    if "/" in name or ".." in name:
        return "is a path, not a sysctl name (use dots: net.core.somaxconn)"
    if not SYSCTL_NAME.match(name):
        return "is not a valid sysctl name (letters, digits, '_', '-', separated by dots)"
    return None


# The fix a range error offers where --clamp exists (validate, tune, optimize);
# `without_clamp_hint` drops it where it does not (a plan, the LLM's repair round).
CLAMP_HINT = ", or pass --clamp to narrow the range"


def without_clamp_hint(problem: str) -> str:
    return problem.replace(CLAMP_HINT, "")


def fmt_bound(x) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _check_range(
    where: str, name: str, lo, hi, safe_lo, safe_hi, clamp: bool, notes: list[str], errors: list[str]
) -> tuple:
    """Narrow [lo, hi] to the safe range under --clamp, else report; returns the range."""
    safe = f"safe range {fmt_bound(safe_lo)}..{fmt_bound(safe_hi)}"
    if hi < safe_lo or lo > safe_hi:
        errors.append(
            f"{where}: {name} range {fmt_bound(lo)}..{fmt_bound(hi)} lies entirely outside the {safe}; choose values inside it"
        )
        return lo, hi
    new_lo, new_hi = lo, hi
    if lo < safe_lo:
        if clamp:
            new_lo = safe_lo
        else:
            errors.append(
                f"{where}.min: {fmt_bound(lo)} is below the safe minimum {fmt_bound(safe_lo)} for {name} ({safe}); "
                f"raise it{CLAMP_HINT}"
            )
    if hi > safe_hi:
        if clamp:
            new_hi = safe_hi
        else:
            errors.append(
                f"{where}.max: {fmt_bound(hi)} exceeds the safe maximum {fmt_bound(safe_hi)} for {name} ({safe}); "
                f"lower it{CLAMP_HINT}"
            )
    if (new_lo, new_hi) != (lo, hi):
        notes.append(f"--clamp narrowed {name} from {fmt_bound(lo)}..{fmt_bound(hi)} to {fmt_bound(new_lo)}..{fmt_bound(new_hi)}")
    return new_lo, new_hi


def check_knob(
    i: int, knob: KnobSpec, entry: CatalogEntry, clamp: bool, notes: list[str], errors: list[str]
) -> KnobSpec:
    """Compare one knob with its catalogue entry; returns it (narrowed when clamping)."""
    where = f"action_space[{i}]"
    name = knob.param
    if entry.type == "vector":
        if knob.type != "vector":
            errors.append(
                f"{where}.type: {name} holds {len(entry.elements or ())} values ({entry.unit}); "
                f"use type \"vector\" with one range per value in elements"
            )
            return knob
        if len(knob.elements or ()) != len(entry.elements or ()):
            errors.append(
                f"{where}.elements: {name} has {len(entry.elements or ())} values, the spec gives {len(knob.elements or ())}"
            )
            return knob
        new_elements = []
        for j, (el, safe) in enumerate(zip(knob.elements or (), entry.elements or ())):
            lo, hi = _check_range(f"{where}.elements[{j}]", f"{name}[{j}]", el.min, el.max, safe.min, safe.max, clamp, notes, errors)
            new_elements.append(VectorElement(int(lo), int(hi), el.scale))
        return replace(knob, elements=tuple(new_elements))
    if knob.type == "vector":
        errors.append(f"{where}.type: {name} holds a single value; use type \"{entry.type}\"")
        return knob
    if entry.type == "enum":
        if knob.type != "enum":
            errors.append(f"{where}.type: {name} takes one of {entry.range_text()}; use type \"enum\" with values")
            return knob
        bad = [v for v in knob.values or () if v not in (entry.values or ())]
        if bad:
            errors.append(f"{where}.values: {', '.join(map(str, bad))} not allowed for {name}; safe values: {entry.range_text()}")
        return knob
    if knob.type == "enum":
        errors.append(f"{where}.type: {name} is numeric ({entry.type}); use type \"{entry.type}\" with min and max")
        return knob
    if entry.type == "bool":
        if knob.type == "bool":
            return knob
        # Seed-style specs give every knob as an int range: accept 0..1 for a flag.
        if knob.type == "int":
            lo, hi = _check_range(where, name, knob.min, knob.max, 0, 1, clamp, notes, errors)
            return replace(knob, min=int(lo), max=int(hi))
        errors.append(f"{where}.type: {name} is an on/off flag; use type \"bool\"")
        return knob
    if knob.type == "float" and entry.type == "int":
        errors.append(f"{where}.type: {name} takes whole numbers; use type \"int\"")
        return knob
    if knob.type == "bool":
        lo, hi = _check_range(where, name, 0, 1, entry.min, entry.max, False, notes, errors)
        return knob
    lo, hi = _check_range(where, name, knob.min, knob.max, entry.min, entry.max, clamp, notes, errors)
    if knob.scale == "log" and lo <= 0:
        errors.append(f"{where}.scale: log scale needs a range above 0 for {name}")
    if lo == hi:
        errors.append(f"{where}: after clamping, {name} has a single value {fmt_bound(lo)}; widen the range")
    return replace(knob, min=type(knob.min)(lo), max=type(knob.max)(hi))


def check_spec(
    spec: TuningSpec,
    *,
    clamp: bool = False,
    exists: Callable[[str], bool] | None = None,
    kernel_release: str | None = None,
    check_available: Callable[[str], list[str] | None] | None = None,
    fixed: Mapping[str, Value] | None = None,
    mem_kib: int | None = None,
) -> SafetyReport:
    """Refuse what may not touch the machine; return the knobs to use.

    `fixed` are current values of params the spec does not tune and
    `mem_kib` the machine's memory, for the rules between knobs
    (`safety.constraints`).

    `exists(name)` answers whether the param is present on this kernel (None:
    skip that check, as for a simulated system). These are the sysctl
    target's checks, against the catalogue's sysctls (`targets.sysctl`); each
    other target has its own (`Target.check`).
    """
    errors: list[str] = []
    notes: list[str] = []
    warnings: list[str] = []
    knobs: list[KnobSpec] = []
    entries: dict[str, CatalogEntry] = {}
    release = kernel_release or platform.release()
    for i, knob in enumerate(spec.action_space):
        where = f"action_space[{i}].param"
        problem = param_name_problem(knob.param)
        if problem:
            errors.append(f"{where}: {knob.param!r} {problem}")
            knobs.append(knob)
            continue
        entry = lookup(knob.param)
        if entry is None:
            errors.append(
                f"{where}: {knob.param} is not in the safety catalogue; only catalogued sysctls are tuned "
                "(see `cli-ai params`)"
            )
            knobs.append(knob)
            continue
        entries[knob.param] = entry
        knobs.append(check_knob(i, knob, entry, clamp, notes, errors))
        if exists is not None and not exists(knob.param):
            if not entry.netns and knob.param.startswith("net."):
                errors.append(
                    f"{where}: {knob.param} is not visible here: it is a global setting that a child network "
                    "namespace (a container) does not show, or this kernel lacks it; tune it on the host or "
                    "drop it from the spec"
                )
                continue
            why = f"; it was removed in Linux {entry.removed_in}" if entry.removed_in else ""
            errors.append(
                f"{where}: {knob.param} does not exist on this kernel ({release}): "
                f"/proc/sys/{knob.param.replace('.', '/')} is missing{why}; drop it from the spec"
            )
        elif entry.type == "enum" and check_available is not None:
            available = check_available(knob.param)
            if available is not None:
                missing = [v for v in knobs[-1].values or () if v not in available]
                if missing:
                    errors.append(
                        f"action_space[{i}].values: {', '.join(map(str, missing))} not available on this kernel for "
                        f"{knob.param} (available: {', '.join(available)}); cli-ai never loads kernel modules"
                    )
    if not errors:
        from cli_ai.safety.constraints import spec_problems

        ranges = {k.param: (float(k.min), float(k.max)) for k in knobs
                  if k.type in ("int", "float") and k.min is not None and k.max is not None}
        rule_errors, rule_notes = spec_problems(ranges, fixed=fixed, mem_kib=mem_kib, names=[k.param for k in knobs])
        errors += rule_errors
        notes += rule_notes
    if errors:
        raise SafetyError(f"{len(errors)} safety problem(s)", problems=errors)
    return SafetyReport(knobs=tuple(knobs), notes=notes, warnings=warnings, entries=entries)


def difflib_close(name: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def available_values(name: str, proc_root: str = "/proc/sys") -> list[str] | None:
    """Values this kernel offers for an enum sysctl (congestion control, qdisc)."""
    if name == "net.ipv4.tcp_congestion_control":
        path = os.path.join(proc_root, "net/ipv4/tcp_available_congestion_control")
        try:
            with open(path) as fh:
                return fh.read().split()
        except OSError:
            return None
    return None


# --------------------------------------------------------------------------- commands

_OPERATORS = set(";|&<>()")


def shell_syntax_in(command: str) -> list[str]:
    """The shell constructs in a command line (after seed 004's trailing 2>&1)."""
    text = strip_trailing_redirect(command)
    found: list[str] = []
    for token in ("$(", "`", "${"):
        if token in text:
            found.append(token)
    if re.search(r"\$[A-Za-z_]", text):
        found.append("$VAR")
    if "\n" in text or "\r" in text:
        found.append("newline")
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        for tok in lexer:
            if tok and set(tok) <= _OPERATORS:
                found.append(tok)
    except ValueError:
        found.append("unbalanced quotes")
    seen: list[str] = []
    for f in found:
        if f not in seen:
            seen.append(f)
    return seen


def _interpreter_refusal(field_name: str, why: str) -> SafetyError:
    return SafetyError(
        f"{field_name}: {why}; a shell or an interpreter given code runs anything, so it needs --allow-shell "
        "(you then confirm the exact command)"
    )


def plan_command(
    command: str,
    *,
    allow_shell: bool = False,
    field_name: str = "benchmark_command",
    candidates: Mapping[str, Sequence[str]] | None = None,
) -> CommandPlan:
    """Decide how a command runs. Shell syntax, and a program that is a shell
    or runs inline code (`interpreters.interpreter_in`, over every value its
    placeholders can take: `candidates`), are refused unless allowed."""
    syntax = shell_syntax_in(command)
    text = strip_trailing_redirect(command).strip()
    if syntax:
        if not allow_shell:
            raise SafetyError(
                f"{field_name}: {command!r} uses shell syntax ({' '.join(repr(s) for s in syntax)}); "
                "cli-ai runs commands without a shell. Remove it, or pass --allow-shell to run it with "
                "/bin/sh after you confirm the exact command"
            )
        return CommandPlan(text=text, argv=("/bin/sh", "-c", text), shell=True, shell_syntax=tuple(syntax))
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        raise SafetyError(f"{field_name}: cannot split {command!r} into arguments ({exc})") from None
    if not argv:
        raise SafetyError(f"{field_name}: the command is empty")
    why = template_interpreter(argv, candidates or {})
    if why is not None and not allow_shell:
        raise _interpreter_refusal(field_name, why)
    return CommandPlan(text=text, argv=argv, shell=False, interpreter=why)


def check_argv(
    args: tuple[str, ...],
    *,
    allow_shell: bool = False,
    field_name: str = "benchmark.args",
    runner: str = "command",
    candidates: Mapping[str, Sequence[str]] | None = None,
) -> str | None:
    """A structured argv runs without a shell; refuse one that is a shell or
    an interpreter given code (runner 'command': `args` is the argv; another
    runner: `args` are that program's). Returns why it needs --allow-shell
    when allowed, else None."""
    for j, arg in enumerate(args):
        if "\x00" in arg:
            raise SafetyError(f"{field_name}[{j}]: contains a NUL character")
    if runner in BUILTIN_RUNNERS:  # cli-ai's own benchmarks: their args are options
        return None
    argv = tuple(args) if runner == "command" else (runner, *args)
    why = template_interpreter(argv, candidates or {})
    if why is not None and not allow_shell:
        raise _interpreter_refusal(field_name, why)
    return why
