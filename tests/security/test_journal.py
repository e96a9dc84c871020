"""Issue 13, items 3 and 7: `cli-ai rollback` validates a journal as strictly
as a spec before it restores anything. Before the fix a hand-written journal
made rollback write kernel.core_pattern (stopped only by a read-only
/proc/sys), write net.core.somaxconn=7, redirect the sysctl backend's root to
any directory, replace and unlink any file, and run `sh -c` through a
mosquitto entry; malformed journals ended in exit 1 "internal error".

Every rollback here is a real `cli-ai rollback` in the sandbox (private net
and mount namespaces, /proc/sys read-only but for net/)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import needs_netns, run_cli
from tests.security.sandbox import journal, plant, sandbox

SOMAXCONN = "$(cat /proc/sys/net/core/somaxconn)"


def rollback(tmp_path: Path, *args: str, before: str = "4321", **env: str) -> dict[str, str]:
    """Set somaxconn to `before`, run `cli-ai rollback ARGS`, report rc, stderr, somaxconn after."""
    v = sandbox(
        f"echo {before} > /proc/sys/net/core/somaxconn\n"
        f'$CLI rollback {" ".join(args)} > "$TMP/out" 2> "$TMP/err" < /dev/null; echo @rc=$?\n'
        f"echo @after={SOMAXCONN}\n",
        tmp_path, CLI_AI_STATE_DIR=str(tmp_path / "state"), **env,
    )
    v["err"] = (tmp_path / "err").read_text()
    v["out"] = (tmp_path / "out").read_text()
    return v


def assert_refused(v: dict[str, str], rc: str, *words: str) -> None:
    assert v["rc"] == rc, v["err"] + v["_stderr"]
    assert "internal error" not in v["err"]
    for w in words:
        assert w in v["err"], v["err"]
    assert v["after"] == "4321"  # nothing restored, not even the valid part


@needs_netns
def test_a_denied_param_is_never_restored(tmp_path):
    plant(tmp_path / "state", journal(originals={"net.core.somaxconn": 1000, "kernel.core_pattern": "|/tmp/evil %p"}))
    v = rollback(tmp_path)
    assert_refused(v, "2", "originals.kernel.core_pattern", "never tuned by cli-ai", "nothing was restored")
    assert (tmp_path / "state" / "journal.json").exists()  # kept for the person to inspect


@needs_netns
@pytest.mark.parametrize("name", ["fs.suid_dumpable", "net.ipv4.ip_forward", "kernel.modprobe", "vm.nonexistent",
                                  "net.ipv4.conf.all.accept_redirects", "kernel.sysrq"])
def test_an_uncatalogued_or_denied_name_is_refused(tmp_path, name):
    plant(tmp_path / "state", journal(originals={name: 1}))
    assert_refused(rollback(tmp_path), "2", f"originals.{name}")


@needs_netns
def test_a_value_outside_the_safe_range_needs_confirmation(tmp_path):
    plant(tmp_path / "state", journal(originals={"net.core.somaxconn": 7}))
    v = rollback(tmp_path)  # no terminal, no --yes
    assert_refused(v, "3", "net.core.somaxconn: the journal's original 7 lies outside the safe range 128..65535",
                   "--yes")
    v = rollback(tmp_path, "--yes")  # the person confirms 7 was this machine's value
    assert v["rc"] == "0", v["err"]
    assert v["after"] == "7"


@needs_netns
@pytest.mark.parametrize("value", ["1000; rm -rf /", "1000\n", [1000, 1], 1000.5, True, {"a": 1}, None])
def test_a_value_of_the_wrong_type_is_refused(tmp_path, value):
    plant(tmp_path / "state", journal(originals={"net.core.somaxconn": value}))
    assert_refused(rollback(tmp_path), "2", "journal", "originals")


@needs_netns
@pytest.mark.parametrize("config", [{"root": "FAKE"}, {"root": "/proc/sys/../../FAKE"}, {"root": "/"},
                                    {"root": "/proc/sys", "extra": 1}])
def test_the_backend_root_cannot_be_moved(tmp_path, config):
    fake = tmp_path / "fake"
    (fake / "net" / "core").mkdir(parents=True)
    (fake / "net" / "core" / "somaxconn").write_text("precious\n")
    config = {k: (str(fake) if v == "FAKE" else v.replace("FAKE", str(fake)) if isinstance(v, str) else v)
              for k, v in config.items()}
    plant(tmp_path / "state", journal(backend={"kind": "sysctl", "config": config}))
    assert_refused(rollback(tmp_path), "2", "backend")
    assert (fake / "net" / "core" / "somaxconn").read_text() == "precious\n"


@needs_netns
def test_files_other_than_those_cli_ai_manages_are_never_moved_or_removed(tmp_path):
    hostname, evil, motd = tmp_path / "hostname", tmp_path / "evil", tmp_path / "motd"
    hostname.write_text("admin's\n")
    evil.write_text("attacker's\n")
    motd.write_text("motd\n")
    sysctl_d = tmp_path / "sysctl.d"
    sysctl_d.mkdir()
    for files in (
        [{"path": str(hostname), "backup": str(evil)}],
        [{"path": str(motd), "backup": None}],
        # the sysctl.d file itself, but with a "backup" from elsewhere
        [{"path": str(sysctl_d / "99-cli-ai.conf"), "backup": str(evil)}],
        # a lookalike of a backup, outside the sysctl.d directory
        [{"path": str(hostname), "backup": str(tmp_path / "99-cli-ai.conf.bak-x")}],
    ):
        plant(tmp_path / "state", journal(files=files))
        v = rollback(tmp_path, CLI_AI_SYSCTL_DIR=str(sysctl_d))
        assert_refused(v, "2", "files[0]", "is not a file cli-ai manages")
    assert hostname.read_text() == "admin's\n" and evil.read_text() == "attacker's\n" and motd.exists()


@needs_netns
def test_a_backup_that_is_a_symlink_is_not_moved_over_the_sysctl_d_file(tmp_path):
    sysctl_d = tmp_path / "sysctl.d"
    sysctl_d.mkdir()
    persisted = sysctl_d / "99-cli-ai.conf"
    persisted.write_text("net.core.somaxconn = 1000\n")
    secret = tmp_path / "secret"
    secret.write_text("root's secret\n")
    backup = sysctl_d / "99-cli-ai.conf.bak-20260101T000000Z"
    backup.symlink_to(secret)
    plant(tmp_path / "state", journal(originals={}, files=[{"path": str(persisted), "backup": str(backup)}]))
    v = rollback(tmp_path, CLI_AI_SYSCTL_DIR=str(sysctl_d))
    assert v["rc"] == "4" and "not a regular file" in v["err"], v["err"]
    assert persisted.read_text() == "net.core.somaxconn = 1000\n" and secret.read_text() == "root's secret\n"


def _broker_journal(conf: Path, pwned: Path, **config) -> dict:
    return journal(
        backend={"kind": "mosquitto", "config": {
            "mode": "attach", "config_file": str(conf), "host": "127.0.0.1", "port": 1,
            "reload_command": ["sh", "-c", f"echo ran > {pwned}"],
            "restart_command": ["sh", "-c", f"echo ran > {pwned}"], "binary": "/bin/sh", **config}},
        originals={"message_size_limit": 0},
        files=[{"path": str(conf), "backup": str(conf) + ".cli-ai-orig"}],
    )


@needs_netns
def test_a_broker_journal_never_runs_a_command(tmp_path):
    conf = tmp_path / "mosquitto.conf"
    original = "listener 1883\n"
    conf.write_text(original + "message_size_limit 1000\n")  # what the killed run left
    backup = Path(str(conf) + ".cli-ai-orig")
    backup.write_text(original)
    backup.chmod(0o600)
    pwned = tmp_path / "pwned"
    plant(tmp_path / "state", _broker_journal(conf, pwned))
    v = rollback(tmp_path)
    assert v["rc"] == "0", v["err"]
    assert not pwned.exists()  # neither the reload nor the restart command of the journal ran
    assert conf.read_text() == original and not backup.exists()
    assert "reload" in v["err"]  # the note: the person reloads the broker


@needs_netns
def test_a_broker_journal_cannot_name_a_file_cli_ai_did_not_attach_to(tmp_path):
    victim = tmp_path / "hostname"
    victim.write_text("admin's\n")
    pwned = tmp_path / "pwned"
    plant(tmp_path / "state", _broker_journal(victim, pwned))  # no <file>.cli-ai-orig: never attached
    assert_refused(rollback(tmp_path), "2", "backend", "cli-ai did not attach")
    other = tmp_path / "elsewhere"
    other.write_text("attacker's\n")
    plant(tmp_path / "state", _broker_journal(victim, pwned, backup=str(other)))  # a backup of its choosing
    assert_refused(rollback(tmp_path), "2", "backend")
    assert victim.read_text() == "admin's\n" and not pwned.exists()


DEEP = "[" * 100_000 + "]" * 100_000

MALFORMED = {
    "originals-a-list": journal(originals=[]),
    "files-a-string": journal(files="/etc/passwd"),
    "file-entry-a-string": journal(files=["/etc/passwd"]),
    "relative-file": journal(files=[{"path": "etc/passwd", "backup": None}]),
    "backend-a-string": journal(backend="sysctl"),
    "backend-kind-unknown": journal(backend={"kind": "shell", "config": {"cmd": "id"}}),
    "version-a-string": journal(version="1"),
    "pid-a-string": journal(pid="1"),
    "unknown-field": journal(command="sh -c id"),
    "nul-in-name": journal(originals={"net.core.somaxconn\u0000x": 1}),
    "huge-integer": journal(originals={"net.core.somaxconn": 10**30}),
    "vector-of-strings": journal(originals={"net.ipv4.tcp_rmem": ["4096", "1", "2"]}),
    "top-level-a-list": [],
    "deep-nesting": DEEP,
    "invalid-json": "{not json",
    "not-utf8": None,  # written as bytes below
    "huge": None,
}


@needs_netns
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_journal_is_one_line_and_exit_2(tmp_path, case):
    state = tmp_path / "state"
    path = plant(state, MALFORMED[case] if MALFORMED[case] is not None else "")
    if case == "not-utf8":
        path.write_bytes(b'{"version": 1, "x": "\xff"}')
    elif case == "huge":
        path.write_text(json.dumps(journal(workload="w" * (2 * 1024 * 1024))))
    v = rollback(tmp_path)
    assert_refused(v, "2", "journal")
    assert all(line.startswith("error:") for line in v["err"].strip().splitlines()), v["err"]


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_journal_that_is_not_a_file_is_exit_2_without_blocking(tmp_path, kind):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    if kind == "directory":
        (state / "journal.json").mkdir()
    else:
        os.mkfifo(state / "journal.json", 0o600)
    r = run_cli("rollback", timeout=30)
    assert r.returncode == 2, r.stderr
    assert "journal" in r.stderr and "internal error" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_malformed_journal_can_be_discarded(tmp_path):
    path = plant(tmp_path / "state", "{not json")
    r = run_cli("rollback", "--discard")
    assert r.returncode == 0, r.stderr
    assert "discarded" in r.stdout and not path.exists()
