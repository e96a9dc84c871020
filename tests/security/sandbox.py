"""Private mount and network namespaces for attacks that would change the
machine if a fix regressed: a tmpfs over /etc/sysctl.d (the real default
path, no override), /proc/sys read-only except the namespace's own
/proc/sys/net, loopback up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import cli_ai_cmd

SANDBOX = (
    "set -e\n"
    "mount -t tmpfs tmpfs /etc/sysctl.d\n"
    "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys\n"
    "mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net\n"
    "ip link set lo up\n"
    "set +e\n"
)

def sandboxed(script: str, tmp_path: Path, timeout: int = 120) -> dict[str, str]:
    """Run `script` in bash inside the sandbox; `@key=value` lines are returned."""
    env = dict(os.environ, CLI=" ".join(cli_ai_cmd()), TMP=str(tmp_path), PY=sys.executable)
    env.pop("CLI_AI_SYSCTL_DIR", None)
    out = subprocess.run(["unshare", "-m", "-n", "--propagation", "private", "bash", "-c", SANDBOX + script],
                         capture_output=True, text=True, env=env, timeout=timeout)
    values = {"_stdout": out.stdout, "_stderr": out.stderr}
    for line in out.stdout.splitlines():
        if line.startswith("@"):
            key, _, value = line[1:].partition("=")
            values[key] = value.strip()
    return values
