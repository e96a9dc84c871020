"""Item 6: files and backups. `apply --persist` twice in the same second, then
`rollback`, gives the admin's own sysctl.d file back; no earlier backup is
ever overwritten, and a planted `.99-cli-ai.conf.tmp` symlink is not followed.

Runs in private mount and network namespaces: a tmpfs over /etc/sysctl.d (the
real default path, no override), /proc/sys read-only except the namespace's
own /proc/sys/net, so a regression cannot touch the machine."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import can_unshare_net
from tests.security.sandbox import sandboxed

pytestmark = pytest.mark.skipif(not can_unshare_net(), reason="needs root and unshare")

ADMIN = "# the admin's own file\nnet.core.somaxconn = 4242\n"


def _result(tmp_path: Path, name: str, somaxconn: int) -> Path:
    result = {"workload": "w", "target": "sysctl", "simulated": False, "metric": "cps", "baseline": 1.0, "best": 2.0,
              "improvement": 100.0, "best_config": {"net.core.somaxconn": somaxconn}, "verdict": "better",
              "verification": {"verdict": "better", "p_value": 0.001}}
    path = tmp_path / name
    path.write_text(json.dumps(result))
    return path


def test_two_persists_in_a_second_then_rollback_give_the_admin_file_back(tmp_path):
    _result(tmp_path, "r1.json", 1500)
    _result(tmp_path, "r2.json", 1600)
    (tmp_path / "admin.conf").write_text(ADMIN)
    (tmp_path / "victim").write_text("precious\n")
    # Earlier backups named for every second the test may run in: each must
    # survive untouched (the old code overwrote `<file>.bak-<second>`).
    now = datetime.now(timezone.utc)
    stamps = [(now + timedelta(seconds=s)).strftime("%Y%m%dT%H%M%SZ") for s in range(-1, 60)]
    plant = "".join(f'echo "earlier backup {s}" > /etc/sysctl.d/99-cli-ai.conf.bak-{s}\n' for s in stamps)
    v = sandboxed(
        'cp "$TMP/admin.conf" /etc/sysctl.d/99-cli-ai.conf\n'
        + plant
        + 'ln -s "$TMP/victim" /etc/sysctl.d/.99-cli-ai.conf.tmp\n'
        "echo 777 > /proc/sys/net/core/somaxconn\n"
        '$CLI apply "$TMP/r1.json" --persist --yes > /dev/null; echo @apply1=$?\n'
        '$CLI apply "$TMP/r2.json" --persist --yes > /dev/null; echo @apply2=$?\n'
        "echo @applied=$(cat /proc/sys/net/core/somaxconn)\n"
        'grep -h "^net.core.somaxconn" /etc/sysctl.d/99-cli-ai.conf | sed "s/^/@persisted=/"\n'
        '$CLI rollback > "$TMP/rollback.out"; echo @rollback=$?\n'
        "echo @after=$(cat /proc/sys/net/core/somaxconn)\n"
        'cp /etc/sysctl.d/99-cli-ai.conf "$TMP/restored.conf"\n'
        'ls -A /etc/sysctl.d > "$TMP/listing"\n'
        + "".join(f'[ "$(cat /etc/sysctl.d/99-cli-ai.conf.bak-{s})" = "earlier backup {s}" ] || echo @clobbered={s}\n'
                  for s in stamps),
        tmp_path,
    )
    assert v["apply1"] == "0" and v["apply2"] == "0", v["_stderr"]
    assert v["applied"] == "1600" and v["persisted"] == "net.core.somaxconn = 1600"
    assert v["rollback"] == "0", v["_stderr"]
    assert v["after"] == "777"
    assert "clobbered" not in v, v["_stdout"]
    assert (tmp_path / "restored.conf").read_text() == ADMIN
    # and it says so (it used to say nothing of the file)
    said = " ".join((tmp_path / "rollback.out").read_text().split())
    assert "/etc/sysctl.d/99-cli-ai.conf: the file from before cli-ai's first apply is back" in said
    assert (tmp_path / "victim").read_text() == "precious\n"
    # Nothing of cli-ai is left over: the admin's file, the earlier backups
    # and the planted link, nothing else.
    listing = set((tmp_path / "listing").read_text().split())
    assert listing == {"99-cli-ai.conf", ".99-cli-ai.conf.tmp", *(f"99-cli-ai.conf.bak-{s}" for s in stamps)}


def test_persist_without_an_admin_file_then_rollback_removes_it(tmp_path):
    _result(tmp_path, "r1.json", 1500)
    _result(tmp_path, "r2.json", 1600)
    v = sandboxed(
        '$CLI apply "$TMP/r1.json" --persist --yes > /dev/null; echo @apply1=$?\n'
        '$CLI apply "$TMP/r2.json" --persist --yes > /dev/null; echo @apply2=$?\n'
        "stat -c %a /etc/sysctl.d/99-cli-ai.conf | sed 's/^/@mode=/'\n"
        '$CLI rollback > "$TMP/rollback.out"; echo @rollback=$?\n'
        'echo "@left=$(ls -A /etc/sysctl.d | tr "\\n" " ")"\n',
        tmp_path,
    )
    assert v["apply1"] == "0" and v["apply2"] == "0" and v["rollback"] == "0", v["_stderr"]
    assert v["mode"] == "644"  # sysctl.d files are world-readable, as the kernel's tools expect
    assert v["left"] == "", v
    said = " ".join((tmp_path / "rollback.out").read_text().split())
    assert "/etc/sysctl.d/99-cli-ai.conf: removed (cli-ai wrote it; there was no file before)" in said
