"""Property tests: whatever garbage a person (or an LLM) hands in, the answer is
a clean one-line error and exit code 2 or 3, never a traceback or exit 1."""

from __future__ import annotations

import json
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli_ai.cli import app

runner = CliRunner()

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
KEYS = ["workload_name", "target", "reward_metric", "metric_direction", "benchmark_command", "benchmark",
        "action_space", "state_space", "training_config", "reward", "safety"]
KNOB_KEYS = ["param", "type", "min", "max", "values", "scale", "default", "elements"]
PARAMS = st.sampled_from(["vm.swappiness", "vm.dirty_ratio", "net.ipv4.tcp_rmem", "net.core.somaxconn",
                          "net.ipv4.tcp_congestion_control", "kernel.core_pattern", "../../etc/passwd",
                          "kernel.sched_min_granularity_ns", "x", ""])
knobs = st.fixed_dictionaries(
    {"param": PARAMS},
    optional={
        "type": st.sampled_from(["int", "float", "bool", "enum", "vector", "str"]),
        "min": st.one_of(st.integers(-100, 10**9), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=3)),
        "max": st.one_of(st.integers(-100, 10**9), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=3)),
        "values": st.lists(st.one_of(st.text(max_size=5), st.integers(0, 3)), max_size=3),
        "scale": st.sampled_from(["linear", "log", "exp"]),
        "default": json_scalars,
        "elements": st.lists(st.fixed_dictionaries({"min": st.integers(-5, 10**8), "max": st.integers(-5, 10**8)}), max_size=4),
    },
)
specs = st.fixed_dictionaries(
    {"workload_name": st.text(max_size=10), "action_space": st.lists(knobs, max_size=4)},
    optional={
        "reward_metric": st.text(max_size=10),
        "target": st.sampled_from(["sysctl", "command", "mosquitto", "nope"]),
        "benchmark_command": st.sampled_from(["pgbench -T 5 db", "pgbench; rm -rf /", "a {x}", "'", "", "wrk $(id)"]),
        "benchmark": st.dictionaries(st.sampled_from(["runner", "args", "timeout_s", "repeats"]), json_values, max_size=3),
        "training_config": st.dictionaries(st.sampled_from(["algorithm", "budget", "n_steps", "gamma", "seed"]), json_values, max_size=3),
        "safety": st.dictionaries(st.sampled_from(["max_consecutive_failures"]), json_values, max_size=1),
        "reward": st.dictionaries(st.sampled_from(["mode", "performance_weight"]), json_values, max_size=2),
    },
)


def _validate(tmp_path, text: str):
    p = tmp_path / "spec.json"
    p.write_text(text)
    return runner.invoke(app, ["validate", str(p)])


def _assert_clean(result):
    assert result.exit_code in (0, 2, 3), (result.exit_code, result.output)
    assert "Traceback" not in result.output
    if result.exit_code:
        assert "error:" in result.output


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(specs)
def test_random_specs_give_clean_errors(tmp_path, spec):
    _assert_clean(_validate(tmp_path, json.dumps(spec)))


@SETTINGS
@given(json_values)
def test_any_json_value_gives_clean_errors(tmp_path, value):
    _assert_clean(_validate(tmp_path, json.dumps(value)))


@SETTINGS
@given(st.text(max_size=60))
def test_any_text_gives_clean_errors(tmp_path, text):
    result = _validate(tmp_path, text)
    _assert_clean(result)


@SETTINGS
@given(st.sampled_from(KEYS), json_values)
def test_one_field_replaced_with_garbage(tmp_path, key, value):
    spec = {
        "workload_name": "PostgreSQL OLTP",
        "reward_metric": "transactions_per_second",
        "benchmark_command": "pgbench -c 50 -j 4 -T 30 testdb 2>&1",
        "action_space": [{"param": "vm.dirty_ratio", "min": 5, "max": 40, "type": "int"}],
    }
    spec[key] = value
    _assert_clean(_validate(tmp_path, json.dumps(spec)))


def test_help_is_torch_free_and_fast_path():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cli_ai.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'stable_baselines3', 'gymnasium', 'openai', 'jsonschema') if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
