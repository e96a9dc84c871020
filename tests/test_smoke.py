from tests.conftest import EXAMPLES, run_cli


def test_validate_seed_examples_exit_codes():
    for name in ("postgresql_oltp.json", "nginx_high_concurrency.json"):
        r = run_cli("validate", EXAMPLES / name)
        assert r.returncode == 0, r.stderr
        assert "valid" in r.stdout
    r = run_cli("validate", EXAMPLES / "cpu_intensive.json")
    assert r.returncode == 3
    assert "does not exist on this kernel" in r.stderr
