"""Issue 13, item 3 (and 7): cli-ai trusts its state directory only when
nobody else can write it. Before the fix, a world-writable state directory
that another user pre-created was used silently (so anyone could plant a
journal that root's `cli-ai rollback` replayed), a lock file planted as a
symlink (or hard link) had its target truncated to 0 bytes, and a state
directory that is a file ended in exit 1 "internal error"."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cli_ai.errors import StateError
from cli_ai.safety.guard import Guard, MachineLock
from cli_ai.tactician.backends.simulated import SimulatedBackend
from tests.conftest import needs_netns, run_cli
from tests.security.sandbox import journal, plant, sandbox

SOMAXCONN = "cat /proc/sys/net/core/somaxconn"


class MachineLike(SimulatedBackend):
    changes_machine = True


def _rollback_in_netns(tmp_path: Path, state: Path) -> dict[str, str]:
    return sandbox(
        f"echo 4321 > /proc/sys/net/core/somaxconn\n"
        f'CLI_AI_STATE_DIR="{state}" $CLI rollback 2> "$TMP/err"; echo @rc=$?\n'
        f"echo @after=$({SOMAXCONN})\n",
        tmp_path,
    )


@needs_netns
@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702], ids=oct)
def test_a_state_dir_others_can_write_is_refused(tmp_path, mode):
    state = tmp_path / "shared"
    plant(state, journal(originals={"net.core.somaxconn": 1000}))
    os.chmod(state, mode)  # pre-created by someone else, writable by them
    v = _rollback_in_netns(tmp_path, state)
    err = (tmp_path / "err").read_text()
    assert v["rc"] == "2", err
    assert v["after"] == "4321"  # the planted journal was not replayed
    assert f"chmod 700 {state}" in err and "writable by group or others" in err
    assert len(err.strip().splitlines()) == 1
    assert (state / "journal.json").exists()


@needs_netns
def test_a_state_dir_of_another_user_is_refused(tmp_path):
    state = tmp_path / "theirs"
    plant(state, journal())
    os.chown(state, 65534, 65534)
    v = _rollback_in_netns(tmp_path, state)
    err = (tmp_path / "err").read_text()
    assert v["rc"] == "2" and v["after"] == "4321", err
    assert "owned by uid 65534" in err and f"chown {os.geteuid()} {state}" in err


@needs_netns
def test_a_journal_others_can_write_or_own_is_refused(tmp_path):
    state = tmp_path / "state"
    path = plant(state, journal())
    path.chmod(0o666)
    v = _rollback_in_netns(tmp_path, state)
    err = (tmp_path / "err").read_text()
    assert v["rc"] == "2" and v["after"] == "4321", err
    assert f"chmod 600 {path}" in err
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    v = _rollback_in_netns(tmp_path, state)
    assert v["rc"] == "2" and v["after"] == "4321"


@needs_netns
def test_a_symlinked_state_dir_or_journal_is_never_followed(tmp_path):
    real = tmp_path / "real"
    plant(real, journal())
    link = tmp_path / "link"
    link.symlink_to(real)
    v = _rollback_in_netns(tmp_path, link)
    assert v["rc"] == "2" and v["after"] == "4321"
    assert "is a symlink" in (tmp_path / "err").read_text()

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "journal.json").symlink_to(real / "journal.json")
    v = _rollback_in_netns(tmp_path, state)
    assert v["rc"] == "2" and v["after"] == "4321"
    assert "symlink" in (tmp_path / "err").read_text()


@needs_netns
def test_a_parent_others_can_write_lets_them_swap_the_dir_so_it_is_refused(tmp_path):
    parent = tmp_path / "open"
    parent.mkdir()
    os.chmod(parent, 0o777)  # no sticky bit: anyone could rename the state dir away
    state = parent / "state"
    plant(state, journal())
    v = _rollback_in_netns(tmp_path, state)
    err = (tmp_path / "err").read_text()
    assert v["rc"] == "2" and v["after"] == "4321", err
    assert f"chmod go-w {parent}" in err


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_planted_lock_link_is_never_followed_nor_truncated(tmp_path, kind):
    victim = tmp_path / "victim"
    victim.write_text("precious data\n")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    if kind == "symlink":
        (state / "lock").symlink_to(victim)
    else:
        os.link(victim, state / "lock")
    with pytest.raises(StateError, match="lock file .*(symlink|hard links)"):
        MachineLock(state).acquire()
    backend = MachineLike({"vm.swappiness": 60})
    with pytest.raises(StateError):
        with Guard(backend, ["vm.swappiness"], directory=state) as guard:
            guard.apply({"vm.swappiness": 1})
    assert victim.read_text() == "precious data\n"
    assert backend.writes == []


def test_the_state_dir_is_created_private_and_a_fifo_lock_does_not_hang(tmp_path):
    state = tmp_path / "new" / "state"
    with MachineLock(state):
        pass
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "lock").stat().st_mode) == 0o600
    (state / "lock").unlink()
    os.mkfifo(state / "lock", 0o600)
    with pytest.raises(StateError, match="not a regular file"):
        MachineLock(state).acquire()


def test_a_state_dir_that_is_a_file_is_exit_2(tmp_path):
    state = tmp_path / "state-file"
    state.write_text("not a directory\n")
    r = run_cli("rollback", env={"CLI_AI_STATE_DIR": str(state)})
    assert r.returncode == 2, r.stderr
    assert "is not a directory" in r.stderr and "internal error" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    with pytest.raises(StateError, match="not a directory"):
        with Guard(MachineLike({"vm.swappiness": 60}), ["vm.swappiness"], directory=state):
            pass
    r = run_cli("rollback", env={"CLI_AI_STATE_DIR": str(state / "below")})
    assert r.returncode == 2 and "internal error" not in r.stderr, r.stderr


def test_missing_parents_are_created_private_whatever_the_umask(tmp_path):
    """The checks must not refuse what cli-ai itself creates (umask 002 would
    leave new parents group-writable)."""
    state = tmp_path / "home" / ".local" / "state" / "cli-ai"
    old = os.umask(0o002)
    try:
        with MachineLock(state):
            pass
    finally:
        os.umask(old)
    for p in (state, state.parent, state.parent.parent):
        assert stat.S_IMODE(p.stat().st_mode) == 0o700, p


@needs_netns
def test_tune_refuses_a_shared_state_dir_before_changing_anything(tmp_path):
    state = tmp_path / "shared"
    state.mkdir()
    os.chmod(state, 0o777)
    spec = {"workload_name": "w", "reward_metric": "score", "benchmark_command": "true",
            "action_space": [{"param": "net.core.somaxconn", "type": "int", "min": 1000, "max": 2000}],
            "training_config": {"algorithm": "random", "budget": 3, "seed": 1}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    v = sandbox(
        "echo 4321 > /proc/sys/net/core/somaxconn\n"
        f'CLI_AI_STATE_DIR="{state}" $CLI tune "$TMP/spec.json" --yes --output-dir "$TMP/runs" > /dev/null '
        '2> "$TMP/err"; echo @rc=$?\n'
        f"echo @after=$({SOMAXCONN})\n",
        tmp_path,
    )
    err = (tmp_path / "err").read_text()
    assert v["rc"] == "2", err[-1500:]
    assert v["after"] == "4321" and f"chmod 700 {state}" in err
    assert not (state / "journal.json").exists() and not (state / "lock").exists()
