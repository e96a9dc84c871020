"""`cli-ai examples` lists the packaged example specs and copies one out, so
a wheel user (whose examples sit in site-packages) has them."""

from __future__ import annotations

import json

from tests.conftest import EXAMPLES, run_cli


def test_examples_lists_every_packaged_spec():
    r = run_cli("examples", "--json")
    assert r.returncode == 0, r.stderr
    listed = {e["name"]: e for e in json.loads(r.stdout)}
    assert set(listed) == {p.stem for p in EXAMPLES.glob("*.json")}
    assert listed["mosquitto"]["target"] == "mosquitto" and listed["redis"]["target"] == "sysctl"
    table = run_cli("examples", env={"COLUMNS": "80"})
    assert "nginx_high_concurrency" in table.stdout and "examples copy NAME" in table.stdout


def test_examples_copy_writes_a_spec_that_validates_and_never_overwrites(tmp_path):
    r = run_cli("examples", "copy", "redis", tmp_path)
    assert r.returncode == 0, r.stderr
    copied = tmp_path / "redis.json"
    assert copied.read_text() == (EXAMPLES / "redis.json").read_text()
    assert run_cli("validate", copied).returncode == 0
    copied.write_text("{}")  # the person's edits
    again = run_cli("examples", "copy", "redis.json", tmp_path)
    assert again.returncode == 2 and "exists; pass --force" in again.stderr and copied.read_text() == "{}"
    assert run_cli("examples", "copy", "redis", tmp_path, "--force").returncode == 0
    unknown = run_cli("examples", "copy", "kafka", tmp_path)
    assert unknown.returncode == 2 and "`cli-ai examples` lists them" in unknown.stderr
