"""MosquittoBackend: a Mosquitto broker's configuration as knob values.

Its parts: `options` (an option's value in mosquitto.conf, both ways),
`config` (reading, rendering and editing the file), `process` (the broker
process's lifecycle); this module holds the backend that joins them.

Two modes.

**Managed** (the default): the backend runs a broker of its own, bound to
127.0.0.1 on a free port, in a temporary directory that holds its config, log
and persistence file. Every `write` renders `mosquitto.conf` from the knob
values and applies it: SIGHUP for the options mosquitto reloads, a restart for
those it does not. `close()` (and leaving the `with` block, also on an
exception, and an atexit hook) stops the broker and removes the directory;
a directory left by a process that died (kill -9) is swept, with its broker,
by the next managed backend. Such a backend changes nothing outside its own
directory, so it is not journaled (`changes_machine = False`).

**Attach**: the backend edits the config file of an existing broker and runs
the reload command the spec names (the restart command for listener options).
Only the lines of tuned options change; when every value is back at its
original, the file is byte for byte the original again. Before the first write
the original is copied to `<config>.cli-ai-orig`; `describe()` names the file,
the commands and the backup, so `backend_from_description` rebuilds the backend
for `cli-ai rollback` after a crash. This backend is journaled
(`changes_machine = True`).

How each option takes effect (mosquitto 2.0, mosquitto.conf(5); the
catalogue's `reload` field is the source of truth, this is a summary):

| option                                                             | on SIGHUP                   | managed backend | attach backend  |
| ------------------------------------------------------------------ | --------------------------- | --------------- | --------------- |
| max_inflight_messages, max_inflight_bytes, max_queued_messages,    | reloaded                    | SIGHUP          | reload_command  |
| max_queued_bytes, message_size_limit, max_packet_size,             |                             |                 |                 |
| persistence, autosave_interval, autosave_on_changes, sys_interval, |                             |                 |                 |
| upgrade_outgoing_qos, queue_qos0_messages, memory_limit            |                             |                 |                 |
| set_tcp_nodelay, max_keepalive                                     | reloaded, used at connect   | restart (so the | reload_command  |
|                                                                    | time only                   | workload's      | (new clients)   |
|                                                                    |                             | clients see it) |                 |
| max_connections, max_topic_alias (listener options)                | not reloaded                | restart         | restart_command |

If a value makes mosquitto refuse its configuration (it exits at start, or
logs `Error:` while reloading), `write` raises `BackendWriteError`, after
bringing the broker back on the last good configuration, so the run goes on.
In attach mode the backend cannot read the broker's log; it first starts a
throwaway broker on a free port with the new values to see whether mosquitto
takes them, and checks the broker still accepts connections after reloading.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from cli_ai.broker.attach import AttachedMode
from cli_ai.broker.settings import AttachConfig
from cli_ai.broker.config import (
    BACKUP_SUFFIX, atomic_write, parse_config, render_attached_config, render_managed_config,
)
from cli_ai.broker.options import catalog, coerce, default_value, format_value, option
from cli_ai.broker.process import (
    LIVE_BACKENDS, STARTED_PIDS, WORKDIR_PREFIX, drop_user, error_lines, find_mosquitto, free_port, mqtt_ping,
    sweep_stale_workdirs, tcp_accepting,
)
from cli_ai.errors import BackendWriteError, TargetError
from cli_ai.core.backend import Backend, Value, same_value

EventCallback = Callable[[str, dict], None]


class MosquittoBackend(AttachedMode, Backend):
    """A broker's configuration as knob values (see the module docstring)."""

    kind = "mosquitto"
    changes_machine = False  # set per instance: True in attach mode

    def __init__(
        self,
        initial: Mapping[str, Value] | None = None,
        *,
        binary: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        fixed: Mapping[str, Value] | None = None,
        start_timeout_s: float = 10.0,
        reload_timeout_s: float = 5.0,
        on_event: EventCallback | None = None,
        attach: AttachConfig | None = None,
        recover: bool = False,
        backup: str | os.PathLike | None = None,
        validate: bool = True,
    ):
        """
        :param initial: managed mode: the knob values the broker starts with
            (unset options keep mosquitto's defaults)
        :param binary: the mosquitto program (default: found on PATH or /usr/sbin)
        :param host: managed mode: the address the broker binds (loopback)
        :param port: managed mode: the port; 0 picks a free one
        :param fixed: managed mode: settings of the run that are not knobs
            (e.g. {"sys_interval": 1} so that $SYS counters update every second)
        :param on_event: `on_event(kind, data)` for reloads, restarts, refusals
        :param attach: attach to this existing broker instead
        :param recover: attach mode, for `cli-ai rollback`: the backup (if any)
            is the original, whatever the config file holds now
        :param backup: attach mode: where the original is copied
        :param validate: attach mode: check new values on a throwaway broker first
        """
        self.attach = attach
        self.recover = recover
        self.changes_machine = attach is not None
        self._binary_arg = binary
        self._binary: str | None = None
        self.start_timeout_s = float(start_timeout_s)
        self.reload_timeout_s = float(reload_timeout_s)
        self.on_event = on_event
        self.validate = validate
        self.fixed = {k: coerce(k, v) for k, v in dict(fixed or {}).items()}
        self.proc: subprocess.Popen | None = None
        self.pids: list[int] = []  # every broker process this backend started
        self.workdir: Path | None = None
        self._log_fh = None
        self._closed = False
        self._lock = threading.RLock()
        if attach is None:
            self.host = host
            self.port = int(port)
            self._good: dict[str, Value] = {k: coerce(k, v) for k, v in dict(initial or {}).items()}
            for name in self._good:
                option(name)
        else:
            self.host = attach.host
            self.port = int(attach.port)
            self.config_path = Path(attach.config_file)
            self.backup_path = Path(backup) if backup else self.config_path.with_name(self.config_path.name + BACKUP_SUFFIX)
            try:
                current = self.config_path.read_text(encoding="utf-8")
            except OSError as exc:
                raise TargetError(f"mosquitto.attach.config_file: cannot read {self.config_path} ({exc.strerror})") from None
            if self.backup_path.exists():
                saved = self.backup_path.read_text(encoding="utf-8")
                if not recover and saved != current:
                    raise TargetError(
                        f"{self.backup_path} holds a mosquitto config from an earlier cli-ai run that differs from "
                        f"{self.config_path}; run `cli-ai rollback` first, or remove the backup if it is stale"
                    )
                self.original_text = saved
            else:
                self.original_text = current
            self.original_values = parse_config(self.original_text, catalog())
        LIVE_BACKENDS.add(self)

    # ------------------------------------------------------------------ basics
    @property
    def managed(self) -> bool:
        return self.attach is None

    @property
    def binary(self) -> str:
        if self._binary is None:
            self._binary = find_mosquitto(self._binary_arg)
        return self._binary

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def conf_path(self) -> Path:
        if self.managed:
            assert self.workdir is not None, "the broker was not started"
            return self.workdir / "mosquitto.conf"
        return self.config_path

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "mosquitto.log" if self.workdir is not None else None

    def alive(self) -> bool:
        if self.managed:
            return self.proc is not None and self.proc.poll() is None
        return tcp_accepting(self.host, self.port)

    def _emit(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            try:
                self.on_event(kind, data)
            except Exception:  # noqa: BLE001 - a listener never breaks the backend
                pass

    def exists(self, name: str) -> bool:
        return name in catalog()

    def values(self) -> dict[str, Value]:
        """Every tuned option's current value."""
        if self.managed:
            return dict(self._good)
        return self._parse_current(catalog())

    def describe(self) -> dict[str, Any]:
        """What a journal records. No command and no program: `cli-ai rollback`
        never runs anything a journal names (`from_description`)."""
        if self.managed:
            return {"kind": self.kind, "config": {"mode": "managed", "host": self.host, "port": self.port}}
        a = self.attach
        assert a is not None
        return {
            "kind": self.kind,
            "config": {
                "mode": "attach",
                "config_file": str(self.config_path),
                "host": a.host,
                "port": a.port,
                "backup": str(self.backup_path),
            },
        }

    #: What journals of earlier versions recorded too (commands, binary): accepted, never used.
    DESCRIPTION_KEYS = {"mode", "config_file", "host", "port", "backup", "reload_command", "restart_command", "binary"}

    @classmethod
    def from_description(cls, config: Mapping[str, Any]) -> "MosquittoBackend":
        """Rebuild an attach-mode backend from a journal's `describe()["config"]`
        (for rollback). The journal is untrusted: the config file must be one
        cli-ai attached to (its backup `<file>.cli-ai-orig` exists, a regular
        file of the user's own, and is the only backup it may name), and no
        command or program is taken from it: the rebuilt backend only rewrites
        the file, and the person reloads the broker (`rollback_notes`)."""
        from cli_ai.safety.files import backup_problem

        if config.get("mode") != "attach":
            raise ValueError("a managed mosquitto broker is private to its run and gone with it; nothing to roll back")
        extra = sorted(set(config) - cls.DESCRIPTION_KEYS)
        if extra:
            raise ValueError(f"a mosquitto backend has no setting {str(extra[0])[:40]!r}")
        path = config.get("config_file")
        if not isinstance(path, str) or not os.path.isabs(path) or any(ord(c) < 32 for c in path):
            raise ValueError("the mosquitto config_file must be an absolute path")
        backup = path + BACKUP_SUFFIX
        if config.get("backup") not in (None, backup):
            raise ValueError(f"the backup of {path} is {backup}, never {str(config.get('backup'))[:200]!r}")
        port = config.get("port", 1883)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError("the mosquitto port must be an integer 0..65535")
        if not os.path.isfile(path) or os.path.islink(path):
            raise ValueError(f"the mosquitto config {path} is not a regular file (a symlink?)")
        problem = backup_problem(backup)
        if problem:
            raise ValueError(f"{problem}, so cli-ai did not attach to {path} (or already restored it)")
        attach = AttachConfig(config_file=path, reload_command=(), port=port)
        return cls(attach=attach, recover=True, backup=backup, validate=False)

    def managed_files(self) -> list[tuple[str, str]]:
        """Attach mode: the broker's config file and its backup (the one pair a journal may name)."""
        if self.managed:
            return []
        return [(str(self.config_path), str(self.backup_path))]

    def rollback_notes(self) -> list[str]:
        if not self.recover:
            return []
        return [f"{self.config_path} is the original again, but cli-ai runs no command from a journal: the broker "
                "keeps the tuned values until you reload it (its reload command, e.g. `systemctl reload mosquitto`)"]

    def journal_files(self) -> list[tuple[str, str]]:
        """(file, backup) pairs for `Guard.record_file`: attach mode's config file."""
        if self.managed or not self.backup_path.exists():
            return []
        return [(str(self.config_path), str(self.backup_path))]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "MosquittoBackend":
        """Managed: start the broker and wait until it accepts connections.
        Attach: copy the original config to the backup and check the broker answers."""
        with self._lock:
            if self._closed:
                raise TargetError("this mosquitto backend was closed")
            if not self.managed:
                self._ensure_backup()
                if not self._wait_accepting(self.start_timeout_s):
                    raise TargetError(f"the broker at {self.host}:{self.port} does not accept connections")
                return self
            if self.proc is not None and self.proc.poll() is None:
                return self
            if self.workdir is None:
                sweep_stale_workdirs()
                self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
                (self.workdir / "owner.pid").write_text(f"{os.getpid()}\n")
                drop = drop_user()
                if drop is not None:
                    # mosquitto started as root drops to this user, then re-reads
                    # its config on SIGHUP and writes mosquitto.db here.
                    os.chown(self.workdir, *drop)
                os.chmod(self.workdir, 0o755)
                if self.port == 0:
                    self.port = free_port(self.host)
            self._write_managed_conf(self._good)
            ok, why = self._spawn_and_wait()
            if not ok:
                raise TargetError(f"mosquitto did not start: {why}")
            self._emit("broker_started", pid=self.pid, port=self.port)
            return self

    def __enter__(self) -> "MosquittoBackend":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the managed broker and remove its directory (idempotent). In
        attach mode, drop the backup once the config file is the original again."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            LIVE_BACKENDS.discard(self)
            if self.managed:
                self._stop_proc()
                if self.workdir is not None:
                    shutil.rmtree(self.workdir, ignore_errors=True)
                    self.workdir = None
            else:
                try:
                    if self.backup_path.exists() and self.config_path.read_text(encoding="utf-8") == \
                            self.backup_path.read_text(encoding="utf-8"):
                        self.backup_path.unlink()
                except OSError:
                    pass

    def stop(self) -> None:
        """Managed: stop the broker process but keep the backend (start() again)."""
        with self._lock:
            self._stop_proc()

    # ------------------------------------------------------------------ read / write
    def read(self, names: Sequence[str]) -> dict[str, Value]:
        for n in names:
            if n not in catalog():
                raise BackendWriteError(f"{n}: not a mosquitto option cli-ai tunes")
        if self.managed:
            return {n: self._good[n] if n in self._good else self.fixed.get(n, default_value(n)) for n in names}
        return self._parse_current(names)

    def write(self, values: Mapping[str, Value]) -> None:
        with self._lock:
            new_values = {n: coerce(n, v) for n, v in values.items()}  # raises for unknown options
            if self.managed:
                self._write_managed(new_values)
            else:
                self._write_attached(new_values)

    # ------------------------------------------------------------------ managed internals
    def _write_managed_conf(self, values: Mapping[str, Value]) -> None:
        text = render_managed_config(values, host=self.host, port=self.port, workdir=self.workdir, fixed=self.fixed)
        atomic_write(self.conf_path, text, mode=0o644)

    def _spawn_and_wait(self) -> tuple[bool, str]:
        assert self.workdir is not None and self.log_path is not None
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log_fh = open(self.log_path, "ab")
        argv = [self.binary, "-c", str(self.conf_path)]
        setpriv = shutil.which("setpriv")
        if setpriv:
            # The broker dies with us even after kill -9 (until it drops root
            # privileges, which clears the parent-death signal; the sweep of
            # stale directories covers that case).
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
        from cli_ai.tactician.benchmarks.process import benchmark_env

        # the broker gets no secrets of ours (API keys) in its environment
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log_fh, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, start_new_session=True, close_fds=True, env=benchmark_env())
        self.pids.append(self.proc.pid)
        STARTED_PIDS.append(self.proc.pid)
        (self.workdir / "broker.pid").write_text(f"{self.proc.pid}\n")
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if tcp_accepting(self.host, self.port, 0.2):
                time.sleep(0.05)
                if self.proc.poll() is None:
                    return True, ""
                break
            time.sleep(0.03)
        rc = self.proc.poll()
        text = self._log_since(offset)
        errors = error_lines(text)
        self._stop_proc()
        if rc is None:
            return False, f"not accepting connections on {self.host}:{self.port} after {self.start_timeout_s:g} s"
        return False, "; ".join(errors) or f"exited with status {rc}: {text.strip()[-300:]}"

    def _stop_proc(self) -> None:
        proc = self.proc
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.terminate()
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
                except ProcessLookupError:
                    pass
            else:
                proc.wait()
            self.proc = None
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def _log_since(self, offset: int) -> str:
        if self.log_path is None:
            return ""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def _reload(self) -> tuple[bool, str]:
        """SIGHUP and read the log: did mosquitto take the new file?"""
        if self.proc is None or self.proc.poll() is not None:
            return False, "the broker is not running"
        assert self.log_path is not None
        offset = self.log_path.stat().st_size
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + self.reload_timeout_s
        while "Reloading config" not in self._log_since(offset):
            if self.proc.poll() is not None:
                return False, f"the broker exited while reloading: {self._log_since(offset).strip()[-300:]}"
            if time.monotonic() > deadline:
                return False, f"the broker did not reload within {self.reload_timeout_s:g} s"
            time.sleep(0.02)
        # The reload runs inside one turn of the broker's loop; a CONNACK means
        # that turn is over and every error of it is in the log.
        mqtt_ping(self.host, self.port, 1.0) or time.sleep(0.1)
        errors = error_lines(self._log_since(offset))
        if errors:
            return False, "; ".join(errors)
        return True, ""

    def _restart(self) -> tuple[bool, str]:
        self._stop_proc()
        return self._spawn_and_wait()

    def _write_managed(self, values: Mapping[str, Value]) -> None:
        new = {**self._good, **values}
        changed = [n for n in values if not same_value(values[n], self._good.get(n, self.fixed.get(n, default_value(n))))]
        if not changed:
            return
        if self.workdir is None or self.proc is None:
            # Not running (before start() or after stop()): the values are used at the next start.
            self._good = new
            return
        restart = any(option(n).reload in ("restart", "new-connections") for n in changed)
        what = ", ".join(f"{n}={format_value(n, values[n])}" for n in changed)
        self._write_managed_conf(new)
        ok, why = self._restart() if restart else self._reload()
        if ok:
            self._good = new
            self._emit("broker_restarted" if restart else "broker_reloaded", values={n: values[n] for n in changed},
                       pid=self.pid)
            return
        # Refused: back to the last good configuration, then tell the env.
        self._write_managed_conf(self._good)
        back, why_back = (False, "")
        if not restart and self.proc is not None and self.proc.poll() is None:
            back, why_back = self._reload()
        if not back:
            back, why_back = self._restart()
        self._emit("broker_refused", values={n: values[n] for n in changed}, reason=why, recovered=back, pid=self.pid)
        if not back:
            raise BackendWriteError(
                f"mosquitto refused {what} ({why}) and did not come back on the last good configuration ({why_back})"
            )
        raise BackendWriteError(f"mosquitto refused {what}: {why}; the broker is back on the last good configuration")


__all__ = [
    "MosquittoBackend", "find_mosquitto", "format_value", "parse_config", "render_managed_config",
    "render_attached_config", "mqtt_ping", "tcp_accepting", "sweep_stale_workdirs", "default_value",
]
