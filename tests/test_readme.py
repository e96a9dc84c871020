"""The README's quick start puts `cli-ai` on PATH, sudo included."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "cli-ai").exists(), reason="needs the checkout's .venv (make install)")
def test_make_path_links_cli_ai_where_sudo_finds_it(tmp_path):
    """After `make demo` a bare `cli-ai` (and `sudo cli-ai`) was not found:
    `make path` links the venv's command into a PATH directory."""
    r = subprocess.run(["make", "-s", "path", f"BINDIR={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    link = tmp_path / "cli-ai"
    assert link.is_symlink() and Path(os.readlink(link)) == ROOT / ".venv" / "bin" / "cli-ai"
    # a shell whose PATH is only that directory and the system's (sudo's secure_path)
    out = subprocess.run(["cli-ai", "--version"], env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("cli-ai "), out.stderr


def test_the_quick_start_says_how_to_get_cli_ai_on_path():
    text = (ROOT / "README.md").read_text()
    quick = text[text.index("## Quick start"):text.index("## What a run looks like")]
    assert "source .venv/bin/activate" in quick and "sudo make path" in quick


def test_the_readme_speaks_a_user_s_language():
    """It spoke of "seed 000", "seed 004" and "the SEAL autotuner", and linked
    ../shared/DESIGN.md, which is not in a clone."""
    text = (ROOT / "README.md").read_text()
    for word in ("seed 000", "seed 004", "SEAL", "../shared"):
        assert word not in text, word


def test_every_readme_command_that_needs_no_root_works_as_written(tmp_path):
    """Each line of the README's bash blocks that needs no root (`sudo` lines
    change the machine; `make` lines are the quick start CI itself runs), run
    as written, in order, in an empty directory with the venv on PATH (the
    development block's `.venv/...` lines in the checkout, where they belong)."""
    import re

    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command and not command.startswith(("sudo ", "make ", "#")):
                lines.append(command)
    assert any(c.startswith("cli-ai plan") for c in lines) and any("--dry-run" in c for c in lines)
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"}
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    for command in lines:
        cwd = ROOT if command.startswith(".venv/") else tmp_path
        r = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (command, r.stderr[-2000:])
