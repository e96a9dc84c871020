"""Item 7 (LLM part): an answer is parsed in linear time and capped in size.

Over real HTTP (tests/llm_server.py and the real openai client): 280 KB of
unclosed `<think>` tags took 103 s per round to parse (a regex rescanning the
rest of the text from every tag, outside --timeout); now every round is
refused in well under a second, and an answer over the cap is refused unread."""

from __future__ import annotations

import json
import time

import pytest

from cli_ai.strategist import NoUsableAnswerError
from cli_ai.strategist.openai_strategist import MAX_ANSWER_CHARS, OpenAIStrategist
from tests.llm_server import Reply, ScriptedLLM

KEY = "sk-test-key-0123456789"
SPEC = {"workload_name": "w", "reward_metric": "connections_per_second", "benchmark": {"runner": "tcp-accept"},
        "action_space": [{"param": "net.core.somaxconn", "type": "int", "min": 128, "max": 4096},
                         {"param": "net.ipv4.tcp_max_syn_backlog", "type": "int", "min": 128, "max": 4096}]}


def _plan(llm, rounds):
    strategist = OpenAIStrategist(base_url=llm.url, api_key=KEY, model="test-model", max_repairs=rounds - 1,
                                  retry_backoff=0.001, timeout=30)
    return strategist.plan("tune my box", None)


def test_repeated_think_tags_are_parsed_in_linear_time():
    hostile = "<think>" * 40_000  # 280 KB
    with ScriptedLLM(api_key=KEY) as llm:
        llm.push(Reply(hostile), Reply(hostile), Reply(hostile))
        start = time.monotonic()
        with pytest.raises(NoUsableAnswerError):
            _plan(llm, 3)
        assert time.monotonic() - start < 10


def test_a_spec_after_think_blocks_is_still_found():
    answer = "<think>" * 1000 + "</think>" + "<think>why</think>" * 1000 + json.dumps(SPEC)
    with ScriptedLLM(api_key=KEY) as llm:
        llm.push(Reply(answer))
        plan = _plan(llm, 1)
    assert plan.spec_dict["workload_name"] == "w"


def test_an_answer_over_the_cap_is_refused_unparsed():
    # A valid spec padded past the cap with whitespace: refused on its size.
    huge = json.dumps(SPEC) + " " * MAX_ANSWER_CHARS
    with ScriptedLLM(api_key=KEY) as llm:
        llm.push(Reply(huge))
        with pytest.raises(NoUsableAnswerError) as err:
            _plan(llm, 1)
    assert any("over the limit" in p for p in err.value.problems)
