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
