"""A journal read from disk is checked like a spec before anything is restored.

`journal.JournalRecord.from_json` already fixed its shape (types, sizes); here
its content meets the catalogue: every name a catalogued param of the
journal's backend kind and never a denied one, every value of that param's
type, and the files only those cli-ai manages (`files.py`). A value of the
right type outside the safe range may be a machine's real original (a small
`net.core.somaxconn` someone set on purpose), so it is not an error but
is restored only when the person confirms (`OriginalsOutOfRange`).

Which backend kinds exist is the registry's business (above this layer); the
catalogue knows the params of the two that journal: `sysctl` and `mosquitto`.
Another kind reaches here only with a backend the caller built itself.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from cli_ai.core.backend import Value, same_value
from cli_ai.errors import OriginalsOutOfRange, StateError
from cli_ai.safety.catalog import CatalogEntry, load_catalog, load_mosquitto_catalog
from cli_ai.safety.check import param_name_problem
from cli_ai.safety.constraints import exclusive_twin
from cli_ai.safety.files import is_persist_entry, persist_path
from cli_ai.safety.journal import JournalRecord

_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _entry(kind: str, name: str) -> tuple[CatalogEntry | None, str | None]:
    """The catalogue entry of `name` for a backend kind, or why there is none."""
    if kind == "sysctl":
        problem = param_name_problem(name)
        if problem:
            return None, problem
        entry = load_catalog().get(name)
        return entry, None if entry else "is not in the catalogue, so cli-ai never changed it"
    if kind == "mosquitto":
        opt = load_mosquitto_catalog().get(name)
        return (opt.entry, None) if opt else (None, "is not a mosquitto option cli-ai tunes")
    return None, None


def _in_range(entry: CatalogEntry, v: Value) -> bool:
    if entry.default is not None and same_value(v, entry.default):
        return True
    if v == 0 and exclusive_twin(entry.name) is not None:
        return True  # vm.dirty_ratio reads 0 while vm.dirty_bytes is set: the kernel's own state
    if entry.type == "enum":
        return v in (entry.values or ())
    if entry.type == "vector":
        return all(e.min <= x <= e.max for x, e in zip(v, entry.elements or ()))  # type: ignore[arg-type]
    if entry.type == "bool":
        return True
    return entry.min is not None and entry.max is not None and entry.min <= v <= entry.max  # type: ignore[operator]


def _type_problem(entry: CatalogEntry, v: Value) -> str | None:
    t = entry.type
    if t == "bool":
        ok = isinstance(v, bool) or (isinstance(v, int) and v in (0, 1))
        return None if ok else "must be 0 or 1"
    if t == "int":
        return None if isinstance(v, int) and not isinstance(v, bool) else "must be an integer"
    if t == "enum":
        return None if isinstance(v, str) and _TOKEN.fullmatch(v) else "must be one word (letters, digits, _ . -)"
    if t == "vector":
        n = len(entry.elements or ())
        ok = isinstance(v, tuple) and len(v) == n and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        return None if ok else f"must be a list of {n} integers"
    if t == "float":
        return None if isinstance(v, (int, float)) and not isinstance(v, bool) else "must be a number"
    return f"has the catalogue type {t!r}, which a journal cannot restore"


def check_originals(record: JournalRecord, where: str) -> list[str]:
    """Refuse (StateError) a name or a type that no run of cli-ai could have
    journaled; return the values outside the safe range (to be confirmed)."""
    kind = str(record.backend.get("kind"))
    problems: list[str] = []
    outside: list[str] = []
    for name, value in record.originals.items():
        entry, problem = _entry(kind, name)
        if problem:
            problems.append(f"originals.{name}: {problem}")
            continue
        if entry is None:
            continue
        problem = _type_problem(entry, value)
        if problem:
            problems.append(f"originals.{name}: {_show(value)} {problem} ({entry.type})")
        elif not _in_range(entry, value):
            outside.append(f"{name}: the journal's original {_show(value)} lies outside the safe range "
                           f"{entry.range_text()}")
    if problems:
        raise StateError(
            f"journal {where} holds values cli-ai never journals",
            problems=[f"journal {where}: {p}" for p in problems]
            + ["nothing was restored; inspect the journal, then remove it (`cli-ai rollback --discard`)"],
        )
    return outside


def check_files(record: JournalRecord, managed: Iterable[tuple[str, str]], where: str) -> None:
    """Refuse (StateError) a journal that names a file cli-ai does not manage."""
    allowed = {(str(a), str(b)) for a, b in managed}
    problems = []
    for i, f in enumerate(record.files):
        path, backup = f["path"], f.get("backup")
        if (path, backup) in allowed or is_persist_entry(path, backup):
            continue
        problems.append(
            f"journal {where}: files[{i}]: {path} (backup {backup}) is not a file cli-ai manages (its sysctl.d "
            f"file {persist_path()} and that file's backups, or the config file of the journal's broker)"
        )
    if problems:
        raise StateError(problems[0], problems=problems + [
            "nothing was restored; inspect the journal, then remove it (`cli-ai rollback --discard`)"])


def refuse_out_of_range(outside: list[str]) -> None:
    raise OriginalsOutOfRange(
        f"{len(outside)} original value(s) outside the safe range",
        problems=outside + ["nothing was restored: a journal's value outside the safe range is restored only "
                            "when you confirm it was this machine's (on a terminal, or `cli-ai rollback --yes`)"],
    )


def _show(v: Any) -> str:
    text = " ".join(map(str, v)) if isinstance(v, tuple) else repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["check_originals", "check_files", "refuse_out_of_range"]
