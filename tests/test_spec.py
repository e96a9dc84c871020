"""The tuning spec: seed 004's format accepted as is, extensions, and errors
that name the JSON path and say how to fix it."""

from __future__ import annotations

import json

import pytest

from cli_ai.errors import SpecError
from cli_ai.spec import load_spec, parse_json_text, spec_from_dict, validation_problems
from tests.conftest import EXAMPLES

SEED_EXAMPLES = ["postgresql_oltp.json", "nginx_high_concurrency.json", "cpu_intensive.json"]


def base(**over):
    spec = {
        "workload_name": "t",
        "reward_metric": "tps",
        "benchmark_command": "pgbench -T 5 db",
        "action_space": [{"param": "vm.swappiness", "min": 0, "max": 10, "type": "int"}],
    }
    spec.update(over)
    return spec


def problems_of(data):
    return validation_problems(data)


@pytest.mark.parametrize("name", SEED_EXAMPLES)
def test_seed_examples_load_with_defaults(name):
    spec = load_spec(EXAMPLES / name)
    assert spec.target == "sysctl"
    assert spec.metric_direction == "maximize"
    assert spec.training_config.n_steps == 2048  # seed 004's default filled in
    assert spec.training_config.benchmark_timeout == 120
    assert spec.safety.max_consecutive_failures == 3
    assert spec.reward.mode == "weighted" and spec.reward.performance_weight == 0.5
    assert [m.metric for m in spec.state_space][:3] == ["cpu_utilization", "iowait", "memory_used"]
    assert spec.benchmark is not None and spec.benchmark.command


def test_seed_config_format_with_every_documented_field():
    data = base(
        state_space=[{"metric": "cpu_utilization", "source": "/proc/stat"}],
        training_config={
            "total_timesteps": 10000,
            "max_steps_per_episode": 50,
            "learning_rate": 0.0003,
            "n_steps": 2048,
            "batch_size": 64,
            "n_epochs": 10,
            "gamma": 0.99,
            "benchmark_timeout": 120,
        },
    )
    spec = spec_from_dict(data)
    assert spec.training_config.total_timesteps == 10000
    assert spec.training_config.given("n_steps") and not spec.training_config.given("budget")


def test_runner_inferred_from_command():
    assert load_spec(EXAMPLES / "postgresql_oltp.json").benchmark.runner == "pgbench"
    assert load_spec(EXAMPLES / "nginx_high_concurrency.json").benchmark.runner == "wrk"
    assert load_spec(EXAMPLES / "cpu_intensive.json").benchmark.runner == "sysbench"


def test_extended_knob_types():
    data = base(
        action_space=[
            {"param": "net.ipv4.tcp_rmem", "type": "vector",
             "elements": [{"min": 4096, "max": 4096}, {"min": 87380, "max": 1048576}, {"min": 1048576, "max": 16777216, "scale": "log"}]},
            {"param": "net.ipv4.tcp_congestion_control", "type": "enum", "values": ["cubic", "bbr"], "default": "cubic"},
            {"param": "net.ipv4.tcp_slow_start_after_idle", "type": "bool", "default": True},
            {"param": "net.core.rmem_max", "type": "int", "min": 212992, "max": 16777216, "scale": "log"},
        ],
        metric_direction="minimize",
        benchmark={"timeout_s": 30, "repeats": 3, "warmup_runs": 1},
        training_config={"algorithm": "ddpg", "budget": 40, "seed": 7},
        safety={"max_consecutive_failures": 5},
    )
    spec = spec_from_dict(data)
    rmem, cc, flag, rmax = spec.action_space
    assert rmem.elements[0].fixed and not rmem.elements[2].fixed
    assert cc.values == ("cubic", "bbr") and cc.default == "cubic"
    assert flag.default is True
    assert rmax.scale == "log"
    assert spec.benchmark.repeats == 3 and spec.benchmark.timeout_s == 30
    assert spec.training_config.budget == 40 and spec.training_config.algorithm == "ddpg"
    assert spec.safety.max_consecutive_failures == 5


def test_structured_benchmark():
    data = base(benchmark={"runner": "wrk", "args": ["-t2", "-c50", "-d5s", "http://127.0.0.1:8080/"]})
    del data["benchmark_command"]
    spec = spec_from_dict(data)
    assert spec.benchmark.runner == "wrk" and spec.benchmark.args[0] == "-t2"


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["action_space"][0].update(min=20, max=10), "action_space[0].min: 20 is above max 10"),
        (lambda d: d["action_space"][0].update(min="5"), "action_space[0].min: \"5\" is a string; write the number without quotes"),
        (lambda d: d["action_space"][0].update(type="enum"), "action_space[0]: missing required field 'values'"),
        (lambda d: d["action_space"].append(dict(d["action_space"][0])), "action_space[1].param: 'vm.swappiness' already appears at action_space[0]"),
        (lambda d: d["action_space"][0].update(maxx=3), "unknown field 'maxx' (did you mean 'max'?)"),
        (lambda d: d.update(target="kubernetes"), "target: \"kubernetes\" is not one of"),
        (lambda d: d["action_space"][0].update(min=1.5), "is not a whole number"),
        (lambda d: d["action_space"][0].update(scale="log"), "log scale needs min > 0"),
        (lambda d: d.pop("reward_metric"), "reward_metric: missing"),
        (lambda d: d.pop("benchmark_command"), "benchmark_command: missing"),
        (lambda d: d.update(benchmark={"args": ["x"]}), "keep only one of them"),
        (lambda d: d["action_space"][0].update(default=50), "action_space[0].default: 50 is outside [0, 10]"),
        (lambda d: d.update(action_space=[]), "action_space: must have at least 1 items"),
        (lambda d: d.update(training_config={"algorithm": "a2c"}), "training_config.algorithm"),
        (lambda d: d.update(safety={"max_consecutive_failures": 0}), "safety.max_consecutive_failures: 0 must be at least 1"),
        (lambda d: d["action_space"][0].update(min=float("inf")), "action_space[0].min: inf is not a finite number"),
    ],
)
def test_errors_name_the_json_path(mutate, expected):
    data = base()
    mutate(data)
    problems = problems_of(data)
    assert any(expected in p for p in problems), problems
    with pytest.raises(SpecError) as exc:
        spec_from_dict(data)
    assert exc.value.exit_code == 2


def test_all_errors_reported_at_once():
    data = base(action_space=[
        {"param": "vm.swappiness", "min": 10, "max": 5},
        {"param": "vm.dirty_ratio", "type": "enum"},
    ])
    problems = problems_of(data)
    assert len(problems) >= 1
    data = base(action_space=[
        {"param": "vm.swappiness", "min": 10, "max": 5},
        {"param": "vm.dirty_ratio", "min": 30, "max": 20},
    ])
    problems = problems_of(data)
    assert any(p.startswith("action_space[0].min") for p in problems)
    assert any(p.startswith("action_space[1].min") for p in problems)


def test_malformed_json_names_line_and_column(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{\n  "workload_name": "x",\n  "action_space": [\n    {"param": "vm.swappiness" "min": 1}\n  ]\n}\n')
    with pytest.raises(SpecError) as exc:
        load_spec(p)
    msg = str(exc.value)
    assert "line 4, column 31" in msg and str(p) in msg


def test_nan_and_duplicate_keys_rejected():
    with pytest.raises(SpecError, match="NaN is not a valid JSON number"):
        parse_json_text('{"a": NaN}')
    with pytest.raises(SpecError, match="duplicate key 'a'"):
        parse_json_text('{"a": 1, "a": 2}')


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "nope.json")
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)


def test_non_object_spec():
    assert problems_of([1, 2]) == ["(spec): expected a JSON object, got a list"]


def test_command_target_placeholders():
    data = {
        "workload_name": "prog",
        "target": "command",
        "reward_metric": "score",
        "benchmark_command": "python3 prog.py --threads {threads} --mode {mode}",
        "action_space": [
            {"param": "threads", "type": "int", "min": 1, "max": 8},
            {"param": "mode", "type": "enum", "values": ["fast", "safe"]},
        ],
    }
    assert spec_from_dict(data).target == "command"
    data["action_space"].append({"param": "unused", "type": "bool"})
    assert any("never appears as {unused}" in p for p in problems_of(data))
    data["action_space"].pop()
    data["benchmark_command"] += " {ghost}"
    assert any("placeholder {ghost} names no knob" in p for p in problems_of(data))
    data["benchmark_command"] = "python3 prog.py {threads} {mode} {bad name}"
    data["action_space"].append({"param": "bad name", "type": "bool"})
    assert any("not a valid knob name" in p for p in problems_of(data))


def test_overrides_update_raw_for_reproducibility():
    spec = load_spec(EXAMPLES / "postgresql_oltp.json").with_overrides(budget=30, seed=1, algorithm="ddpg")
    assert spec.training_config.budget == 30 and spec.training_config.seed == 1
    assert spec.to_dict()["training_config"] == {"budget": 30, "algorithm": "ddpg", "seed": 1}
    again = spec_from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again.training_config == spec.training_config
    with pytest.raises(SpecError, match="--algo"):
        spec.with_overrides(algorithm="a2c")


def test_schema_file_is_valid_2020_12():
    from jsonschema import Draft202012Validator

    from cli_ai.spec import schema

    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"].endswith("2020-12/schema")
