"""A mosquitto process's lifecycle: finding the binary, a free port, readiness
(TCP and an MQTT ping), its log's error lines, dropping root, stopping it,
and sweeping what a killed run left behind."""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import weakref
from pathlib import Path

from cli_ai.errors import TargetError
from cli_ai.safety.guard import pid_alive

WORKDIR_PREFIX = "cli-ai-mosquitto-"


def mosquitto_binary_problem(binary: str) -> str | None:
    """Why `binary` (the spec's `mosquitto.binary`, run as root) is not a
    mosquitto executable, or None. Its name and the file it resolves to must
    both be mosquitto, a regular executable file that no one but root (or
    the user running cli-ai) can change: the option names a broker, it must
    never run some other program."""
    found = shutil.which(binary)
    if found is None:
        return f"{binary} is not an executable file (install mosquitto, or give the path of its binary)"
    real = os.path.realpath(found)
    if os.path.basename(binary) != "mosquitto" or os.path.basename(real) != "mosquitto":
        return f"{binary} is not mosquitto (it resolves to {real}); give the path of the mosquitto binary"
    try:
        st = os.stat(real)
    except OSError as exc:
        return f"{binary}: {exc.strerror}"
    import stat as _stat

    if not _stat.S_ISREG(st.st_mode):
        return f"{binary} is not a regular file"
    try:
        with open(real, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        return f"{binary}: {exc.strerror}"
    if magic != b"\x7fELF":
        return f"{binary} is not mosquitto (not a compiled program: a script can run anything)"
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
        return f"{real} can be changed by another user (owner uid {st.st_uid}, mode {st.st_mode & 0o7777:o}); " \
               "it would run as root"
    return None


def find_mosquitto(binary: str | None = None) -> str:
    """The mosquitto program: `binary`, else on PATH, else /usr/sbin/mosquitto."""
    if binary:
        problem = mosquitto_binary_problem(binary)
        if problem is not None:
            from cli_ai.errors import SafetyError

            raise SafetyError(f"mosquitto.binary: {problem}")
    for candidate in ([binary] if binary else ["mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]):
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    raise TargetError(
        f"{binary or 'mosquitto'}: not found; install it (apt-get install mosquitto) or set mosquitto.binary"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tcp_accepting(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def mqtt_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether an MQTT 3.1.1 CONNECT gets an accepting CONNACK (then DISCONNECT)."""
    client_id = f"cli-ai-ready-{os.getpid()}-{threading.get_ident() % 100000}".encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a"
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = variable + payload
    packet = b"\x10" + bytes([len(body)]) + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(packet)
            reply = b""
            while len(reply) < 4:
                chunk = s.recv(4 - len(reply))
                if not chunk:
                    return False
                reply += chunk
            ok = reply[0] == 0x20 and reply[3] == 0
            try:
                s.sendall(b"\xe0\x00")
            except OSError:
                pass
            return ok
    except OSError:
        return False


def _strip_log_stamp(line: str) -> str:
    return re.sub(r"^\d+:\s*", "", line.strip())


def error_lines(text: str) -> list[str]:
    return [_strip_log_stamp(l) for l in text.splitlines() if "Error" in l]


def unprivileged_ids(names) -> tuple[int, int] | None:
    """(uid, gid) of the first of `names` this system has, when cli-ai runs
    as root; None when it does not (the server runs as the user) or none exists."""
    if os.geteuid() != 0:
        return None
    for name in names:
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            continue
    return None


def drop_user() -> tuple[int, int] | None:
    """The uid/gid a root-started mosquitto switches to (its `user` default)."""
    return unprivileged_ids(("mosquitto", "nobody"))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace")
    except OSError:
        return ""


def sweep_stale_workdirs(root: str | None = None) -> list[int]:
    """Stop brokers (and remove directories) of managed backends whose owner
    process died without cleaning up (kill -9). Returns the PIDs stopped."""
    stopped = []
    base = Path(root or tempfile.gettempdir())
    for d in base.glob(WORKDIR_PREFIX + "*"):
        try:
            owner = int((d / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or pid_alive(owner):
            continue
        try:
            broker = int((d / "broker.pid").read_text().strip())
        except (OSError, ValueError):
            broker = 0
        if broker and pid_alive(broker) and str(d / "mosquitto.conf") in _cmdline(broker):
            terminate_pid(broker)
            stopped.append(broker)
        shutil.rmtree(d, ignore_errors=True)
    return stopped


def terminate_pid(pid: int, timeout: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """Send `sig`, wait up to `timeout` s for the process to end, then SIGKILL."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# Every backend with a broker running, for the atexit hook.
LIVE_BACKENDS: weakref.WeakSet = weakref.WeakSet()
#: Every broker process any managed backend of this process started (tests
#: check by PID that none is left running).
STARTED_PIDS: list[int] = []


@atexit.register
def _close_all() -> None:
    for backend in list(LIVE_BACKENDS):
        try:
            backend.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass
