"""`cli-ai examples`: the ready specs that ship with cli-ai, listed and
copied out (a wheel keeps them inside site-packages, where nobody looks)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from cli_ai.errors import BadInputError


@dataclass(frozen=True)
class Example:
    name: str
    path: Path
    target: str
    workload: str


def examples_dir() -> Path | None:
    """The packaged examples (inside the package in a wheel, the checkout's in a clone)."""
    from cli_ai.strategist.offline import examples_dirs

    return next((d for d in examples_dirs() if d.is_dir() and any(d.glob("*.json"))), None)


def list_examples() -> list[Example]:
    from cli_ai.core.files import read_untrusted_text

    root = examples_dir()
    out = []
    for path in sorted(root.glob("*.json")) if root else []:
        try:
            data = json.loads(read_untrusted_text(path, "example spec"))
        except (BadInputError, ValueError):
            continue
        if isinstance(data, dict):
            out.append(Example(path.stem, path, str(data.get("target", "sysctl")), str(data.get("workload_name", ""))))
    return out


def copy_example(name: str, directory: str | Path = ".", *, force: bool = False) -> Path:
    """Copy example `name` (with or without .json) into `directory`; never
    over an existing file unless `force`. Returns the new file's path."""
    known = {e.name: e for e in list_examples()}
    key = name[:-5] if name.endswith(".json") else name
    if key not in known:
        raise BadInputError(f"examples copy: {name!r} is not an example; `cli-ai examples` lists them "
                            f"({', '.join(sorted(known)) or 'none found'})")
    dest_dir = Path(directory)
    if not dest_dir.is_dir():
        raise BadInputError(f"examples copy: {dest_dir} is not a directory; give an existing one")
    dest = dest_dir / f"{key}.json"
    if dest.exists() and not force:
        raise BadInputError(f"examples copy: {dest} exists; pass --force to overwrite it")
    shutil.copyfile(known[key].path, dest)
    return dest
