"""The attach mode of `MosquittoBackend` (see `cli_ai.broker.backend`): edit
an existing broker's config file, check that mosquitto takes the new values
on a throwaway broker first, run the spec's reload (or restart) command, and
go back to the previous file when the broker refuses or stops accepting
connections. On `cli-ai rollback` (`recover`) only the file is rewritten: no
command ever comes from a journal."""

from __future__ import annotations

import subprocess
import time
from typing import Iterable, Mapping, Sequence

from cli_ai.broker.config import atomic_write, parse_config, render_attached_config
from cli_ai.broker.options import catalog, format_value, option
from cli_ai.broker.process import find_mosquitto, tcp_accepting
from cli_ai.core.backend import Value, same_value
from cli_ai.errors import BackendWriteError, TargetError


class AttachedMode:
    """The attach-mode half of `MosquittoBackend` (a mixin: it uses the
    backend's config path, original text and values, host, port and attach
    settings)."""

    def _parse_current(self, names: Iterable[str]) -> dict[str, Value]:
        try:
            text = self.config_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BackendWriteError(f"cannot read {self.config_path} ({exc.strerror})") from None
        return parse_config(text, names)

    def _ensure_backup(self) -> None:
        if self.backup_path.exists():
            return
        atomic_write(self.backup_path, self.original_text, like=self.config_path)

    def _wait_accepting(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if tcp_accepting(self.host, self.port, 0.3):
                return True
            time.sleep(0.05)
        return False

    def _run(self, argv: Sequence[str]) -> tuple[bool, str]:
        try:
            from cli_ai.tactician.benchmarks.process import benchmark_env

            # an attached broker's reload command: no secrets of ours, nothing
            # loaded from the directory cli-ai was started in
            r = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, env=benchmark_env(), cwd="/",
                               stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            return False, f"{argv[0]}: not found"
        except subprocess.TimeoutExpired:
            return False, f"{' '.join(argv)}: timed out after 60 s"
        if r.returncode != 0:
            return False, f"{' '.join(argv)} exited with status {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}"
        return True, ""

    def validate_values(self, values: Mapping[str, Value]) -> tuple[bool, str]:
        """Whether mosquitto starts with these option values: a throwaway broker
        on a free loopback port, stopped at once."""
        try:
            binary = find_mosquitto(self._binary_arg)
        except TargetError:
            return True, ""  # no local mosquitto to ask (a remote broker): trust the reload check
        probe = type(self)(values, binary=binary, start_timeout_s=min(self.start_timeout_s, 5.0))
        try:
            probe.start()
            return True, ""
        except TargetError as exc:
            return False, str(exc).removeprefix("mosquitto did not start: ")
        finally:
            probe.close()

    def _write_attached(self, values: Mapping[str, Value]) -> None:
        names = list(catalog())
        current = self._parse_current(names)
        new = {**current, **values}
        changed = [n for n in values if not same_value(values[n], current[n])]
        if not changed:
            return
        what = ", ".join(f"{n}={format_value(n, values[n])}" for n in changed)
        to_check = {n: values[n] for n in changed if not same_value(values[n], self.original_values[n])}
        if self.validate and to_check:
            ok, why = self.validate_values(to_check)
            if not ok:
                self._emit("broker_refused", values=dict(to_check), reason=why, recovered=True)
                raise BackendWriteError(f"mosquitto refuses {what}: {why}; the broker's config file was not changed")
        if self.recover:
            # `cli-ai rollback`: the file only; no command comes from a journal.
            text = render_attached_config(self.original_text, {n: new[n] for n in names}, self.original_values)
            atomic_write(self.config_path, text, like=self.config_path)
            return
        restart = any(option(n).reload == "restart" for n in changed)
        command = self.attach.restart_command if restart else self.attach.reload_command  # type: ignore[union-attr]
        if restart and not command:
            raise BackendWriteError(
                f"{what}: only a restart applies it and mosquitto.attach.restart_command is not given"
            )
        self._ensure_backup()
        previous = self.config_path.read_text(encoding="utf-8")
        text = render_attached_config(self.original_text, {n: new[n] for n in names}, self.original_values)
        atomic_write(self.config_path, text, like=self.config_path)
        ok, why = self._run(command)  # type: ignore[arg-type]
        if ok and not self._wait_accepting(self.start_timeout_s):
            ok, why = False, f"the broker at {self.host}:{self.port} stopped accepting connections"
        if ok:
            self._emit("broker_restarted" if restart else "broker_reloaded", values={n: values[n] for n in changed})
            return
        atomic_write(self.config_path, previous, like=self.config_path)
        back, why_back = self._run(command)  # type: ignore[arg-type]
        back = back and self._wait_accepting(self.start_timeout_s)
        self._emit("broker_refused", values={n: values[n] for n in changed}, reason=why, recovered=back)
        if not back:
            raise BackendWriteError(f"applying {what} failed ({why}), and so did going back ({why_back})")
        raise BackendWriteError(f"applying {what} failed: {why}; the previous config file is back")
