"""Issue 16 items 4-5 on the LLM path, over real HTTP (tests/llm_server.py):
the LLM's plan goes through the benchmark-relevance check, a plan whose knobs
cannot move its benchmark falls back to the offline planner (or exits 3 when
the person asked for the LLM only), and the LLM may name a ready-spec target."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from cli_ai.errors import BenchmarkCannotMeasure
from cli_ai.strategist import make_plan
from cli_ai.strategist.openai_strategist import forget_format_choices
from cli_ai.strategist.profile import gather_profile

from .llm_server import Reply, ScriptedLLM

KEY = "sk-test-key-0123456789abcdef"
GOAL = "my postgres stalls on writes"

# vm.dirty_* cannot move a memory benchmark: any gain would be noise
DIRTY_AGAINST_MEMORY = {
    "workload_name": "db",
    "description": "dirty pages",
    "target": "sysctl",
    "reward_metric": "operations_per_second",
    "benchmark": {"runner": "sysbench", "args": ["memory", "--threads=2", "--time=10", "run"]},
    "action_space": [
        {"param": "vm.dirty_ratio", "type": "int", "min": 5, "max": 40},
        {"param": "vm.dirty_background_ratio", "type": "int", "min": 1, "max": 20},
    ],
}


def js(data) -> str:
    import json

    return json.dumps(data)


@pytest.fixture(scope="module")
def profile():
    p = gather_profile()
    return dataclasses.replace(p, services_running=[], services_installed=[])


@pytest.fixture(autouse=True)
def _fresh_format_memory():
    forget_format_choices()
    yield
    forget_format_choices()


@pytest.fixture
def llm():
    with ScriptedLLM(api_key=KEY) as server:
        yield server


def plan(llm, profile, provider="auto"):
    return make_plan(GOAL, provider=provider, base_url=llm.url, api_key=KEY, model="test-model",
                     retry_backoff=0.001, timeout=10, profile=profile)


def test_an_llm_plan_none_of_whose_knobs_can_move_its_benchmark_falls_back_offline(llm, profile):
    llm.push(Reply(js(DIRTY_AGAINST_MEMORY)))
    result = plan(llm, profile)
    assert result.provider == "offline"
    assert "none of the planned knobs" in (result.fallback_reason or "")
    assert "sysbench_memory" in result.fallback_reason
    assert result.spec.benchmark.runner != "sysbench" or "memory" not in (result.spec.benchmark.args or [])


def test_with_the_llm_only_the_same_plan_is_refused_with_exit_3(llm, profile):
    llm.push(Reply(js(DIRTY_AGAINST_MEMORY)))
    with pytest.raises(BenchmarkCannotMeasure) as info:
        plan(llm, profile, provider="openai")
    assert info.value.exit_code == 3
    # the refusal suggests a benchmark the knobs can move, written as a spec fragment
    assert '"runner": "fio"' in str(info.value) or '"runner": "pgbench"' in str(info.value)


def test_a_knob_that_cannot_move_the_benchmark_is_dropped_with_a_note(llm, profile):
    mixed = copy.deepcopy(DIRTY_AGAINST_MEMORY)
    mixed["action_space"].append({"param": "vm.swappiness", "type": "int", "min": 0, "max": 60})
    llm.push(Reply(js(mixed)))
    result = plan(llm, profile, provider="openai")
    assert result.provider == "openai"
    assert result.spec.params == ["vm.swappiness"]
    notes = "\n".join(result.warnings)
    assert "dropped vm.dirty_ratio: it cannot move sysbench_memory" in notes
    assert "dropped vm.dirty_background_ratio" in notes


def test_the_llm_may_name_a_ready_spec_target(llm, profile):
    llm.push(Reply(js({"target": "autoscaling", "description": "how many workers to run is the autoscaler's job"})))
    result = make_plan("decide how many OpenFaaS workers to run", provider="openai", base_url=llm.url, api_key=KEY,
                       model="test-model", retry_backoff=0.001, timeout=10, profile=profile)
    assert result.provider == "openai" and result.spec.target == "autoscaling"
    assert {k.param for k in result.spec.action_space} == {"scale_step", "workers"}


def test_the_prompt_carries_the_retrieved_entries_not_the_whole_catalogue(llm, profile):
    llm.push(Reply(js(DIRTY_AGAINST_MEMORY)))
    with pytest.raises(BenchmarkCannotMeasure):
        make_plan("inotify watches run out", provider="openai", base_url=llm.url, api_key=KEY, model="test-model",
                  retry_backoff=0.001, timeout=10, profile=profile)
    (req,) = llm.chat_requests
    prompt = req.messages[1]["content"]
    catalogue = prompt.split("SAFETY CATALOGUE")[1].split("BENCHMARK RUNNERS")[0]
    assert "fs.inotify.max_user_watches" in catalogue and "probe_inotify" in catalogue
    assert "net.ipv4.tcp_rmem" not in catalogue and "vm.dirty_ratio" not in catalogue
    assert "probe" in prompt.split("BENCHMARK RUNNERS")[1]
