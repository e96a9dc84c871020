"""The postgres target without a server: the catalogue and its sources,
sizes relative to memory, the cross-check against pg_settings rows, pgbench's
transaction log, the durability refusal (exit 3, naming the risk), the
exports, and a journal's backend description read as untrusted input."""

from __future__ import annotations

import json

import pytest

from tests.conftest import EXAMPLES, run_cli
from cli_ai.targets.postgres.catalog import (
    ServerSetting, catalog, convert, cross_check, display_text, durability_settings, from_pg, sql_text,
)
from cli_ai.targets.postgres.workload import latency_metrics, parse_transaction_log, percentile


def _spec(knobs, **postgres):
    return {"workload_name": "pg", "target": "postgres", "reward_metric": "tps", "metric_direction": "maximize",
            "postgres": postgres, "action_space": knobs}


def test_every_setting_has_its_source_in_the_postgresql_docs_and_a_type():
    for name, s in {**catalog(), **durability_settings()}.items():
        assert "https://www.postgresql.org/docs/15/" in s.entry.source, name
        assert s.entry.type in ("int", "float", "bool", "enum"), name
        if s.entry.type in ("int", "float"):
            assert s.entry.min is not None and s.entry.max is not None and s.entry.min < s.entry.max, name
            assert s.entry.default is None or s.entry.min <= s.entry.default <= s.entry.max, name


def test_memory_sizes_follow_the_machine():
    small, big = catalog(memory_mb=2048, cpus=2), catalog(memory_mb=65536, cpus=16)
    assert small["shared_buffers"].entry.max == int(2048 * 0.4)
    assert big["shared_buffers"].entry.max == int(65536 * 0.4)
    assert big["max_parallel_workers_per_gather"].entry.max == 16
    assert "memory" in small["shared_buffers"].entry.range_note


def test_units_convert_between_pg_settings_and_knobs():
    sb = catalog()["shared_buffers"]
    assert from_pg(sb, "16384", "8kB") == 128  # 16384 pages of 8kB
    assert convert(300, "s", "ms") == 300_000
    assert sql_text(sb, 512) == "512MB" and display_text(sb, 2048) == "2GB"
    assert sql_text(catalog()["jit"], False) == "off"
    assert from_pg(catalog()["checkpoint_timeout"], "300", "s") == 300


def _row(name, vartype, unit=None, lo=None, hi=None, enumvals=None):
    return ServerSetting(name, vartype, unit, "sighup", lo, hi, enumvals, "0")


def test_cross_check_reports_what_the_server_lacks_or_rejects():
    server = {
        "shared_buffers": _row("shared_buffers", "integer", "8kB", "16", "1073741823"),
        "wal_compression": _row("wal_compression", "enum", enumvals=("off", "pglz")),
        "random_page_cost": _row("random_page_cost", "integer"),
    }
    knobs = [("shared_buffers", "int", 32, 512, None), ("wal_compression", "enum", None, None, ("off", "lz4")),
             ("random_page_cost", "float", 1.0, 4.0, None), ("jit", "bool", None, None, None)]
    problems = cross_check(knobs, server, catalog())
    assert not any(p.startswith("shared_buffers") for p in problems)
    assert any("wal_compression" in p and "lz4" in p for p in problems)
    assert any("random_page_cost" in p and "integer" in p for p in problems)
    assert any(p.startswith("jit: this server has no such setting") for p in problems)


def test_transaction_log_gives_percentiles():
    lines = [f"0 {i} {1000 * (i + 1)} 0 1700000000 0" for i in range(100)] + ["0 101 skipped 0 1 0", "junk"]
    lat = parse_transaction_log(lines)
    assert len(lat) == 100 and lat[0] == 1.0
    m = latency_metrics(lat)
    assert m["latency_p50_ms"] == pytest.approx(50.5) and m["latency_p95_ms"] == pytest.approx(95.05)
    assert percentile([], 0.5) != percentile([], 0.5)  # NaN


@pytest.mark.parametrize("param,knob", [
    ("fsync", {"param": "fsync", "type": "bool"}),
    ("synchronous_commit", {"param": "synchronous_commit", "type": "enum", "values": ["on", "off"]}),
    ("full_page_writes", {"param": "full_page_writes", "type": "bool"}),
    ("wal_level", {"param": "wal_level", "type": "enum", "values": ["replica", "minimal"]}),
])
def test_a_durability_setting_is_refused_with_exit_3_naming_the_risk(write_spec, param, knob):
    path = write_spec(_spec([knob, {"param": "work_mem", "type": "int", "min": 1, "max": 64}]))
    for args in (("validate", path), ("tune", path, "--dry-run", "--budget", "4")):
        r = run_cli(*args)
        out = r.stdout + r.stderr
        assert r.returncode == 3, out
        assert param in out and "durability" in out and "allow_data_loss_on_crash" in out
        assert "crash" in out  # the risk itself, not only the name


def test_the_named_risk_lets_a_durability_setting_through(write_spec):
    path = write_spec(_spec([{"param": "synchronous_commit", "type": "enum", "values": ["on", "off"]}],
                            allow_data_loss_on_crash=True))
    r = run_cli("validate", path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "synchronous_commit" in r.stdout + r.stderr


def test_unknown_setting_and_range_outside_the_catalogue_are_refused(write_spec):
    r = run_cli("validate", write_spec(_spec([{"param": "shared_bufers", "type": "int", "min": 32, "max": 64}])))
    assert r.returncode == 3 and "shared_buffers" in r.stdout + r.stderr  # the close match is suggested
    r = run_cli("validate", write_spec(_spec([{"param": "checkpoint_timeout", "type": "int", "min": 1, "max": 60}])))
    assert r.returncode == 3 and "checkpoint_timeout" in r.stdout + r.stderr


def test_a_pgbench_script_that_runs_programs_is_refused(write_spec, tmp_path):
    script = tmp_path / "bad.sql"
    script.write_text("\\set aid random(1, 100)\n\\shell rm -rf /tmp/x\nSELECT 1;\n")
    r = run_cli("validate", write_spec(_spec([{"param": "work_mem", "type": "int", "min": 1, "max": 64}],
                                             pgbench={"mode": "script", "script": str(script)})))
    assert r.returncode == 3 and "\\shell" in r.stdout + r.stderr


def test_the_example_validates_and_its_dry_run_shows_units(tmp_path):
    r = run_cli("validate", EXAMPLES / "postgres_oltp.json")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli("tune", EXAMPLES / "postgres_oltp.json", "--dry-run", "--budget", "10", "--output-dir", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "take effect only after a restart" in r.stdout + r.stderr


def _result(tmp_path, best, **extra):
    data = {"version": 1, "success": True, "workload": "pg'; DROP TABLE x; --", "target": "postgres",
            "metric": "tps", "direction": "maximize", "algorithm": "auto", "budget": 8, "seed": 0,
            "simulated": False, "baseline": 1000.0, "best": 1200.0, "improvement": 20.0,
            "baseline_config": {k: v for k, v in best.items()}, "best_config": best, "evaluations": 8,
            "failed_steps": 0, "stopped_reason": "budget spent", "duration_s": 1.0, "verdict": "better",
            "verification": {"verdict": "better", "p_value": 0.01}, **extra}
    p = tmp_path / "result.json"
    p.write_text(json.dumps(data))
    return p


def test_export_sql_and_conf(tmp_path):
    p = _result(tmp_path, {"shared_buffers": 512, "checkpoint_timeout": 900, "wal_compression": "pglz",
                           "checkpoint_completion_target": 0.85, "jit": False})
    r = run_cli("export", p, "--format", "sql")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "ALTER SYSTEM SET shared_buffers = '512MB';" in lines
    assert "ALTER SYSTEM SET checkpoint_timeout = '900s';" in lines
    assert "ALTER SYSTEM SET jit = 'off';" in lines
    assert "SELECT pg_reload_conf();" in lines
    assert not any("DROP TABLE" in l and not l.startswith("--") for l in lines)  # untrusted text stays a comment
    r = run_cli("export", p, "--format", "conf")
    assert r.returncode == 0, r.stderr
    assert "shared_buffers = 512MB  # needs a restart" in r.stdout.splitlines()
    assert "checkpoint_completion_target = 0.85" in r.stdout.splitlines()


def test_export_refuses_values_outside_the_safe_range_and_durability_settings(tmp_path):
    r = run_cli("export", _result(tmp_path, {"shared_buffers": 10 ** 9}), "--format", "sql")
    assert r.returncode == 3 and "shared_buffers" in r.stdout + r.stderr
    r = run_cli("export", _result(tmp_path, {"fsync": False}), "--format", "conf")
    assert r.returncode == 3 and "durability" in r.stdout + r.stderr


@pytest.mark.parametrize("config,why", [
    ({"mode": "managed", "host": "127.0.0.1", "port": 5432, "user": "u", "dbname": "d", "workdir": "/etc"},
     "not a directory"),
    ({"mode": "managed", "host": "10.0.0.1", "port": 5432, "user": "u", "dbname": "d"}, "workdir"),
    ({"mode": "attached", "host": "h", "port": 99999, "user": "u", "dbname": "d"}, "port"),
    ({"mode": "attached", "host": "h", "port": 5432, "user": "u", "dbname": "d", "command": "rm"}, "no setting"),
    ({"mode": "attached", "host": "h", "port": 5432, "user": "u", "dbname": "d", "auto_absent": ["archive_command"]},
     "catalogued"),
    ({"mode": "other", "host": "h", "port": 5432, "user": "u", "dbname": "d"}, "mode"),
])
def test_a_journal_backend_description_is_untrusted(config, why):
    from cli_ai.tactician.backends import backend_from_description

    with pytest.raises(ValueError, match=why):
        backend_from_description({"kind": "postgres", "config": config})


def test_the_backend_refuses_a_name_outside_the_catalogue():
    from cli_ai.errors import SafetyError
    from cli_ai.targets.postgres.backend import PostgresBackend

    backend = PostgresBackend({"host": "127.0.0.1", "port": "1", "user": "u", "dbname": "d"}, mode="attached")
    with pytest.raises(SafetyError, match="archive_command"):
        backend.write({"archive_command": "rm -rf /"})


def test_a_forced_sql_export_stays_valid_sql(tmp_path):
    p = _result(tmp_path, {"max_wal_size": 2048}, verdict="not significant",
                verification={"verdict": "not significant", "p_value": 0.5})
    r = run_cli("export", p, "--format", "sql")
    assert r.returncode == 3
    r = run_cli("export", p, "--format", "sql", "--force")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("-- EXPORTED WITH --force")
    assert all(l.startswith("--") or l.endswith(";") for l in lines)
