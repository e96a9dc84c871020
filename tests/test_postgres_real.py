"""The postgres target for real: a managed cluster tuned under a write-heavy
pgbench (journal before the first ALTER SYSTEM, verdict and gain reported,
pg_settings back as it was, nothing left running), and kill -9 mid-run then
`cli-ai rollback`, on a managed cluster and on an attached server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import cli_ai_cmd, run_cli

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'psycopg[binary]')")


def _pg_available() -> str | None:
    from cli_ai.errors import CliAiError
    from cli_ai.targets.postgres.server import find_bindir, find_pgbench

    try:
        find_bindir()
        find_pgbench()
    except CliAiError as exc:
        return str(exc)
    return None


pytestmark = pytest.mark.skipif(_pg_available() is not None,
                                reason=f"PostgreSQL is not installed: {_pg_available()} (scripts/install-tools.sh)")

KNOBS = [
    {"param": "shared_buffers", "type": "int", "min": 32, "max": 512, "scale": "log"},
    {"param": "max_wal_size", "type": "int", "min": 256, "max": 4096, "scale": "log"},
    {"param": "checkpoint_timeout", "type": "int", "min": 30, "max": 900, "scale": "log"},
    {"param": "commit_delay", "type": "int", "min": 0, "max": 2000},
    {"param": "wal_compression", "type": "enum", "values": ["off", "pglz"]},
]


def _spec(knobs=KNOBS, **postgres):
    block = {"scale": 1, "pgbench": {"mode": "tpcb", "clients": 4, "threads": 2, "duration_s": 2, "warmup_s": 1}}
    block.update(postgres)
    return {"workload_name": "pgbench write-heavy (test)", "target": "postgres", "reward_metric": "tps",
            "metric_direction": "maximize", "postgres": block, "action_space": knobs,
            "training_config": {"algorithm": "auto", "seed": 0}}


def _settings(conninfo) -> dict[str, str]:
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        return dict(conn.execute("SELECT name, setting FROM pg_settings").fetchall())


def _auto_conf(datadir: Path) -> str:
    return (datadir / "postgresql.auto.conf").read_text()


def _postgres_pids(datadir: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "postgres" in cmd and datadir in cmd:
                out.append(int(d.name))
    return out


def _no_cluster_left(workdir: str) -> None:
    deadline = time.monotonic() + 10
    while _postgres_pids(workdir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _postgres_pids(workdir) == [], f"a postgres process of {workdir} is still running"
    assert not os.path.exists(workdir), f"{workdir} was not removed"


def test_managed_cluster_is_tuned_for_real_and_left_as_it_was(tmp_path, write_spec):
    from cli_ai.targets.postgres.server import STARTED_PIDS
    from cli_ai.safety.journal import state_dir
    from cli_ai.tuning import TuneOptions, tune

    journal = state_dir() / "journal.json"
    seen: dict = {"order": [], "alters": 0}

    def sink(event):
        kind, data = event.kind, event.data
        if kind == "postgres_started":
            seen["conninfo"] = {"host": data["host"], "port": data["port"], "user": "cli_ai", "dbname": "postgres",
                                "passfile": data["passfile"]}
            seen["workdir"] = data["workdir"]
        elif kind == "journal_written":
            seen["order"].append("journal")
            seen["before"] = _settings(seen["conninfo"])
            seen["auto_before"] = _auto_conf(Path(seen["workdir"]) / "data")
        elif kind == "postgres_alter_system":
            if seen["alters"] == 0:
                seen["order"].append("alter")
                seen["journal_at_first_alter"] = journal.exists() and json.loads(journal.read_text())
            seen["alters"] += 1
        elif kind == "restored":
            seen["after"] = _settings(seen["conninfo"])
            seen["auto_after"] = _auto_conf(Path(seen["workdir"]) / "data")

    result = tune(write_spec(_spec()), TuneOptions(yes=True, budget=8, verify=2, output_dir=str(tmp_path / "runs")),
                  sink=sink)
    assert seen["order"][:2] == ["journal", "alter"]
    first = seen["journal_at_first_alter"]
    assert first and first["backend"]["kind"] == "postgres" and set(first["originals"]) == {k["param"] for k in KNOBS}
    assert seen["alters"] >= 5
    assert result.failed_steps < result.evaluations
    saved = json.loads((Path(result.run_dir) / "result.json").read_text())
    if result.extra["verdict"] == "no improvement":
        # a real server under a noisy machine: 8 evaluations may find nothing above
        # the baseline, and then there is nothing to verify (and nothing is offered)
        assert "verification" not in result.extra and saved["verdict"] == "no improvement"
    else:
        ver = result.extra["verification"]
        assert ver["verdict"] in ("better", "not significant", "worse")
        assert isinstance(ver["p_value"], float) and isinstance(result.improvement, float)
        assert saved["verdict"] and saved["verification"]["verdict"] == ver["verdict"]
    # Every setting of the server, not only the tuned ones, and postgresql.auto.conf byte for byte.
    changed = {k: (v, seen["after"].get(k)) for k, v in seen["before"].items() if seen["after"].get(k) != v}
    assert changed == {}
    assert seen["auto_after"] == seen["auto_before"]
    assert not journal.exists()
    _no_cluster_left(seen["workdir"])
    assert STARTED_PIDS and not any(os.path.exists(f"/proc/{p}") for p in STARTED_PIDS)


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _journal(state: Path):
    p = state / "journal.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _kill_9(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _reap(proc) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _start_tune(spec_path, state: Path, out: Path):
    env = {**os.environ, "CLI_AI_STATE_DIR": str(state)}
    return subprocess.Popen([*cli_ai_cmd(), "tune", str(spec_path), "--yes", "--budget", "30", "--verify", "0",
                             "--output-dir", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True)


def test_kill_9_of_a_managed_run_then_rollback_restores_and_stops_the_cluster(tmp_path, write_spec):
    state = tmp_path / "state"
    proc = _start_tune(write_spec(_spec()), state, tmp_path / "runs")
    try:
        record = _wait_for(lambda: _journal(state), 60, "the journal")
        cfg = record["backend"]["config"]
        datadir = Path(cfg["workdir"]) / "data"
        # Wait until the search has changed the server (its first ALTER SYSTEM after the baseline).
        _wait_for(lambda: "shared_buffers" in _auto_conf(datadir) or "max_wal_size" in _auto_conf(datadir), 60,
                  "an ALTER SYSTEM")
        _kill_9(proc)
    finally:
        _reap(proc)
    assert _postgres_pids(cfg["workdir"]), "the cluster should outlive its killed cli-ai"
    r = run_cli("rollback", env={"CLI_AI_STATE_DIR": str(state)})
    assert r.returncode == 0, r.stdout + r.stderr
    for name in record["originals"]:
        assert name in r.stdout
    assert "journal removed" in r.stdout
    assert "stopped and its directory removed" in r.stdout + r.stderr
    _no_cluster_left(cfg["workdir"])
    assert not (state / "journal.json").exists()


def _dsn(c, **overrides) -> str:
    c = {**c, **overrides}
    return f"host={c['host']} port={c['port']} user={c['user']} dbname={c['dbname']} passfile={c['passfile']}"


@pytest.fixture
def own_server(tmp_path):
    """A server this test runs itself (started with cli-ai's cluster code)
    that cli-ai attaches to, with pgbench tables."""
    from cli_ai.targets.postgres.server import ManagedCluster, find_pgbench
    from cli_ai.targets.postgres.workload import initialize

    cluster = ManagedCluster().start()
    try:
        initialize(find_pgbench(), cluster.conninfo(), 1)
        with psycopg.connect(**cluster.conninfo(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET checkpoint_timeout = '600s'")  # an admin's own ALTER SYSTEM line
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        yield cluster
    finally:
        cluster.close()
    assert _postgres_pids(str(cluster.workdir)) == []


def test_kill_9_of_an_attached_run_then_rollback_puts_pg_settings_and_auto_conf_back(tmp_path, write_spec,
                                                                                         own_server):
    c = own_server.conninfo()
    dsn = _dsn(c)
    knobs = [k for k in KNOBS if k["param"] != "shared_buffers"]  # reload-only: no restart consent needed
    before, auto_before = _settings(c), _auto_conf(own_server.datadir)
    state = tmp_path / "state"
    proc = _start_tune(write_spec(_spec(knobs, attach={"dsn": dsn})), state, tmp_path / "runs")
    try:
        _wait_for(lambda: _journal(state), 60, "the journal")
        _wait_for(lambda: _auto_conf(own_server.datadir) != auto_before, 60, "an ALTER SYSTEM")
        _kill_9(proc)
    finally:
        _reap(proc)
    time.sleep(0.5)
    assert _settings(c) != before or _auto_conf(own_server.datadir) != auto_before
    r = run_cli("rollback", env={"CLI_AI_STATE_DIR": str(state)})
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.monotonic() + 5
    while _settings(c) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {k: v for k, v in _settings(c).items() if before.get(k) != v} == {}
    assert _auto_conf(own_server.datadir) == auto_before  # the admin's line kept, cli-ai's lines gone
    assert own_server.running()  # an attached server is the person's: it stays up


def test_attached_restart_knob_without_consent_is_refused(write_spec, own_server):
    c = own_server.conninfo()
    dsn = _dsn(c)
    r = run_cli("tune", write_spec(_spec(KNOBS, attach={"dsn": dsn})), "--yes", "--budget", "4")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "allow_restart" in r.stdout + r.stderr and "shared_buffers" in r.stdout + r.stderr


def test_a_role_that_may_not_alter_system_is_refused(tmp_path, write_spec, own_server):
    c = own_server.conninfo()
    with psycopg.connect(**c, autocommit=True) as conn:
        conn.execute("CREATE ROLE plain LOGIN PASSWORD 'plain-pw'")
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{c['host']}:{c['port']}:*:plain:plain-pw\n")
    passfile.chmod(0o600)
    knobs = [k for k in KNOBS if k["param"] != "shared_buffers"]
    before = _auto_conf(own_server.datadir)
    r = run_cli("tune", write_spec(_spec(knobs, attach={"dsn": _dsn(c, user="plain", passfile=passfile)})), "--yes",
                "--budget", "4")
    out = r.stdout + r.stderr
    assert r.returncode == 3, out
    assert "may not ALTER SYSTEM" in out and "GRANT ALTER SYSTEM ON PARAMETER" in out
    assert _auto_conf(own_server.datadir) == before


def test_sigterm_mid_run_restores_and_leaves_no_cluster(tmp_path, write_spec):
    state = tmp_path / "state"
    proc = _start_tune(write_spec(_spec()), state, tmp_path / "runs")
    try:
        record = _wait_for(lambda: _journal(state), 60, "the journal")
        datadir = Path(record["backend"]["config"]["workdir"]) / "data"
        _wait_for(lambda: "max_wal_size" in _auto_conf(datadir), 60, "an ALTER SYSTEM")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert "restored" in out, out
    assert not (state / "journal.json").exists(), out
    _no_cluster_left(record["backend"]["config"]["workdir"])


def test_a_failing_benchmark_stops_the_run_and_removes_the_cluster(tmp_path, write_spec):
    from cli_ai.targets.postgres.server import WORKDIR_PREFIX

    script = tmp_path / "broken.sql"
    script.write_text("SELECT * FROM no_such_table;\n")
    before = set(Path("/tmp").glob(WORKDIR_PREFIX + "*"))
    r = run_cli("tune", write_spec(_spec(KNOBS[1:3], pgbench={"mode": "script", "script": str(script), "clients": 2,
                                                            "threads": 1, "duration_s": 1, "warmup_s": 0})),
                "--yes", "--budget", "4", "--output-dir", tmp_path / "runs")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "pgbench" in out
    left = set(Path("/tmp").glob(WORKDIR_PREFIX + "*")) - before
    assert left == set(), left
    assert not any(_postgres_pids(str(d)) for d in left)


def _verified_result(run_dir: Path, best: dict, block: dict) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text(json.dumps(_spec(KNOBS, **block)))
    data = {"version": 1, "success": True, "workload": "pg", "target": "postgres", "metric": "tps",
            "direction": "maximize", "algorithm": "auto", "budget": 8, "seed": 0, "simulated": False,
            "baseline": 1000.0, "best": 1200.0, "improvement": 20.0, "baseline_config": {}, "best_config": best,
            "evaluations": 8, "failed_steps": 0, "stopped_reason": "budget spent", "duration_s": 1.0,
            "verdict": "better", "verification": {"verdict": "better", "p_value": 0.01}}
    (run_dir / "result.json").write_text(json.dumps(data))
    return run_dir / "result.json"


def test_apply_writes_a_verified_result_to_the_attached_server_and_rollback_undoes_it(tmp_path, own_server):
    c = own_server.conninfo()
    before, auto_before = _settings(c), _auto_conf(own_server.datadir)
    result = _verified_result(tmp_path / "run", {"max_wal_size": 2048, "commit_delay": 500, "shared_buffers": 256},
                              {"attach": {"dsn": _dsn(c)}})
    r = run_cli("apply", result, "--yes")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "max_wal_size = 2GB" in out and "shared_buffers" in out and "restart the server" in out
    now = _settings(c)
    assert now["max_wal_size"] == "2048" and now["commit_delay"] == "500"
    assert now["shared_buffers"] == before["shared_buffers"]  # pending: nothing restarted the server
    r = run_cli("rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert {k: v for k, v in _settings(c).items() if before.get(k) != v} == {}
    assert _auto_conf(own_server.datadir) == auto_before


def test_apply_of_a_managed_run_s_result_says_to_export_it(tmp_path):
    result = _verified_result(tmp_path / "run", {"max_wal_size": 2048}, {})
    r = run_cli("apply", result, "--yes")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--format sql" in r.stdout + r.stderr
