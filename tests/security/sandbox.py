"""Where the security tests run what they attack: a private network namespace
(net.* sysctls are written for real there, the host never sees them) inside a
private mount namespace whose /proc/sys is read-only except its net/ subtree,
so a regression that writes a global sysctl (kernel.core_pattern) fails on a
read-only file instead of changing the machine. `sandboxed` also puts a tmpfs
over /etc/sysctl.d (the real default path, no override)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import cli_ai_cmd

ROOT = Path(__file__).resolve().parents[2]

# unshare -m makes the mounts private (util-linux's default propagation), so
# they vanish with the namespace.
READ_ONLY_PROC_SYS = (
    "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && "
    "mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net || exit 97\n"
    "ip link set lo up\n"
)

SANDBOX = (
    "set -e\n"
    "mount -t tmpfs tmpfs /etc/sysctl.d\n"
    "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys\n"
    "mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net\n"
    "ip link set lo up\n"
    "set +e\n"
)


def _values(out: subprocess.CompletedProcess) -> dict[str, str]:
    values = {"_stdout": out.stdout, "_stderr": out.stderr, "_rc": str(out.returncode)}
    for line in out.stdout.splitlines():
        if line.startswith("@"):
            key, _, value = line[1:].partition("=")
            values[key] = value.strip()
    return values


def sandboxed(script: str, tmp_path: Path, timeout: int = 120) -> dict[str, str]:
    """Run `script` in bash inside the sandbox with a tmpfs over /etc/sysctl.d;
    `@key=value` lines are returned."""
    env = dict(os.environ, CLI=" ".join(cli_ai_cmd()), TMP=str(tmp_path), PY=sys.executable)
    env.pop("CLI_AI_SYSCTL_DIR", None)
    out = subprocess.run(["unshare", "-m", "-n", "--propagation", "private", "bash", "-c", SANDBOX + script],
                         capture_output=True, text=True, env=env, timeout=timeout)
    return _values(out)


def sandbox(script: str, tmp_path: Path, timeout: float = 60, **env_extra: str) -> dict[str, str]:
    """Run a bash script in the sandbox; its `@key=value` lines, plus _stdout/_stderr/_rc."""
    env = dict(os.environ, CLI=" ".join(cli_ai_cmd()), TMP=str(tmp_path), PY=sys.executable,
               PYTHONPATH=str(ROOT), **env_extra)
    out = subprocess.run(["unshare", "-m", "-n", "bash", "-c", READ_ONLY_PROC_SYS + script],
                         capture_output=True, text=True, env=env, timeout=timeout)
    return _values(out)


def journal(**fields) -> dict:
    """A journal as a run of cli-ai writes it, with `fields` replaced."""
    base = {"version": 1, "pid": 999999, "created": 0.0, "hostname": "h", "netns": None, "netns_params": [],
            "workload": None, "backend": {"kind": "sysctl", "config": {"root": "/proc/sys"}},
            "originals": {"net.core.somaxconn": 1000}, "files": []}
    base.update(fields)
    return base


def plant(state: Path, record, name: str = "journal.json") -> Path:
    """Write a journal into a state directory of the user's own (0700)."""
    state.mkdir(mode=0o700, exist_ok=True)
    path = state / name
    path.write_text(record if isinstance(record, str) else json.dumps(record))
    path.chmod(0o600)
    return path
