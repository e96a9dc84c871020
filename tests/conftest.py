"""Shared fixtures. Every test gets its own state directory so that journals
and locks of different tests (and of the person's own runs) never meet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def _planner_cache(tmp_path_factory):
    # the offline planner's derived data (strategist/cache.py): one directory for the
    # session, never the person's ~/.cache; a test never depends on it being warm
    return tmp_path_factory.mktemp("cli-ai-cache")


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch, _planner_cache):
    state = tmp_path / "state"
    monkeypatch.setenv("CLI_AI_STATE_DIR", str(state))
    monkeypatch.setenv("CLI_AI_CACHE_DIR", str(_planner_cache))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CLI_AI_MODEL", "CLI_AI_RESPONSE_FORMAT"):
        monkeypatch.delenv(var, raising=False)
    yield


@pytest.fixture
def write_spec(tmp_path):
    def _write(data, name="spec.json"):
        p = tmp_path / name
        p.write_text(data if isinstance(data, str) else json.dumps(data))
        return p

    return _write


def cli_ai_cmd() -> list[str]:
    """The installed command, run as a real process."""
    exe = shutil.which("cli-ai", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "cli_ai"]


def run_cli(*args, env=None, input=None, timeout=300, cwd=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        [*cli_ai_cmd(), *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=timeout,
        cwd=cwd,
    )


def can_unshare_net() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


needs_netns = pytest.mark.skipif(not can_unshare_net(), reason="needs root and unshare -n")
