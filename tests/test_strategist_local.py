"""The LLM path against local servers (issue 18), over real HTTP and real
`cli-ai` processes: a server that answers json_schema as llama-cpp-python's
does (HTTP 500), the format remembered across processes and pinnable, the
wait policy of a local endpoint, the prompt's rules checked after parsing,
repair lines that name the real fix, and what a failed plan leaves behind."""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket

import pytest

from cli_ai.spec import spec_from_dict
from cli_ai.strategist import NoUsableAnswerError, make_plan
from cli_ai.strategist.endpoint import LOCAL_TIMEOUT_S, REMOTE_TIMEOUT_S, is_local_url, wait_policy
from cli_ai.strategist.negotiation import MEMORY_NAME, max_tokens_for_spec, parse_memory
from cli_ai.strategist.openai_strategist import OpenAIStrategist, forget_format_choices, remembered_format
from cli_ai.strategist.plan_rules import MAX_PARAMS, MIN_PARAMS, Probe, listening_ports, plan_rule_problems
from cli_ai.strategist.profile import gather_profile
from cli_ai.strategist.prompts import SYSTEM_PROMPT
from cli_ai.strategist.repair import refine_problems

from .conftest import run_cli
from .llm_server import Reply, ScriptedLLM, Status, free_port, listening_socket

KEY = "sk-local-test-key-9876543210"
MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"
GOAL = "my postgres stalls on writes"
WIDE = {"COLUMNS": "200"}


@pytest.fixture(scope="module")
def db():
    """Something listening where the plans' pgbench connects (the runnable rule probes it)."""
    s = listening_socket()
    yield str(s.getsockname()[1])
    s.close()


def good(port: str) -> dict:
    return {
        "workload_name": "PostgreSQL OLTP",
        "description": "Writeback bursts stall commits; pgbench measures the server.",
        "target": "sysctl",
        "reward_metric": "transactions_per_second",
        "benchmark": {"runner": "pgbench", "args": ["-h", "127.0.0.1", "-p", port, "-c", "8", "-T", "20", "testdb"]},
        "action_space": [
            {"param": "vm.dirty_ratio", "type": "int", "min": 5, "max": 40},
            {"param": "vm.dirty_background_ratio", "type": "int", "min": 1, "max": 20},
        ],
    }


@pytest.fixture(scope="module")
def profile():
    return gather_profile()


@pytest.fixture(autouse=True)
def _fresh_process_memory():
    forget_format_choices()
    yield
    forget_format_choices()


def state_dir() -> str:
    return os.environ["CLI_AI_STATE_DIR"]


def plan_cli(llm: ScriptedLLM, *extra, env=None):
    return run_cli("plan", GOAL, "--provider", "openai", "--base-url", llm.url, "--model", MODEL, *extra,
                   env={"OPENAI_API_KEY": KEY, **WIDE, **(env or {})})


def formats(llm: ScriptedLLM) -> list[str | None]:
    return [r.response_format for r in llm.chat_requests]


# --------------------------------------------------------------------------- item 1: format negotiation


def test_llama_cpp_style_server_plans_first_time_and_the_next_process_starts_with_json_object(db):
    with ScriptedLLM(api_key=KEY, models=(MODEL,), llama_cpp_style=True) as llm:
        llm.default = Reply(json.dumps(good(db)))
        first = plan_cli(llm, "--json")
        assert first.returncode == 0, first.stderr
        # the 500 naming the format is "unsupported", not retried as transient
        assert formats(llm) == ["json_schema", "json_object"]
        assert json.loads(first.stdout)["response_format"] == "json_object"
        memory = parse_memory(open(os.path.join(state_dir(), MEMORY_NAME)).read())
        assert memory[(llm.url, MODEL)].response_format == "json_object"
        assert oct(os.stat(os.path.join(state_dir(), MEMORY_NAME)).st_mode & 0o777) == "0o600"

        second = plan_cli(llm)
        assert second.returncode == 0, second.stderr
        assert formats(llm) == ["json_schema", "json_object", "json_object"]  # directly json_object
        assert "rejected response_format" not in second.stdout + second.stderr


def test_the_memory_is_per_endpoint_and_model(db, profile):
    with ScriptedLLM(api_key=KEY, models=(MODEL, "other"), llama_cpp_style=True) as llm:
        llm.default = Reply(json.dumps(good(db)))
        OpenAIStrategist(base_url=llm.url, api_key=KEY, model=MODEL).plan(GOAL, profile)
        forget_format_choices()  # as a new process would
        assert remembered_format(llm.url, MODEL) == "json_object"
        assert remembered_format(llm.url, "other") is None
        OpenAIStrategist(base_url=llm.url, api_key=KEY, model="other").plan(GOAL, profile)
        assert formats(llm) == ["json_schema", "json_object", "json_schema", "json_object"]


@pytest.mark.parametrize("content", ["not json", '{"version": 1, "endpoints": [{"base_url": "x"}]}',
                                     '{"version": 1, "endpoints": [{"base_url": "u", "model": "m", '
                                     '"response_format": "yaml", "temperature": true, "tokens_param": "max_tokens", '
                                     '"updated": 1}]}'])
def test_a_malformed_memory_file_is_ignored_said_and_rewritten(content, db, profile):
    os.makedirs(state_dir(), mode=0o700, exist_ok=True)
    path = os.path.join(state_dir(), MEMORY_NAME)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content.encode())
    os.close(fd)
    with ScriptedLLM(api_key=KEY, models=(MODEL,), llama_cpp_style=True) as llm:
        llm.default = Reply(json.dumps(good(db)))
        plan = OpenAIStrategist(base_url=llm.url, api_key=KEY, model=MODEL).plan(GOAL, profile)
        url = llm.url
    assert any(f"ignored {path}" in line for line in plan.reasoning)
    assert parse_memory(open(path).read())[(url, MODEL)].response_format == "json_object"


def test_a_memory_file_others_can_write_is_not_trusted(db, profile):
    os.makedirs(state_dir(), mode=0o700, exist_ok=True)
    path = os.path.join(state_dir(), MEMORY_NAME)
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        planted = {"version": 1, "endpoints": [{"base_url": llm.url, "model": MODEL, "response_format": "text",
                                                "temperature": True, "tokens_param": "max_tokens", "updated": 1}]}
        with open(path, "w") as f:
            json.dump(planted, f)
        os.chmod(path, 0o666)
        llm.default = Reply(json.dumps(good(db)))
        plan = OpenAIStrategist(base_url=llm.url, api_key=KEY, model=MODEL).plan(GOAL, profile)
    assert formats(llm) == ["json_schema"]  # the planted "text" was not used
    assert any("writable by group or others" in line for line in plan.reasoning)


def test_pinned_format_by_flag_and_by_environment(db):
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        llm.default = Reply(json.dumps(good(db)))
        assert plan_cli(llm, "--response-format", "json_object").returncode == 0
        assert plan_cli(llm, env={"CLI_AI_RESPONSE_FORMAT": "text"}).returncode == 0
        assert formats(llm) == ["json_object", None]
    assert not os.path.exists(os.path.join(state_dir(), MEMORY_NAME))  # a pin is not remembered


def test_a_bad_pinned_format_is_a_one_line_input_error():
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        r = plan_cli(llm, "--response-format", "xml")
        e = plan_cli(llm, env={"CLI_AI_RESPONSE_FORMAT": "yaml"})
        assert llm.chat_requests == []
    assert r.returncode == 2 and "--response-format: 'xml' is not one of json_schema, json_object, text" in r.stderr
    assert e.returncode == 2 and "CLI_AI_RESPONSE_FORMAT: 'yaml' is not one of" in e.stderr


def test_a_pinned_format_the_server_refuses_says_so_and_is_not_retried():
    with ScriptedLLM(api_key=KEY, models=(MODEL,), llama_cpp_style=True) as llm:
        r = plan_cli(llm, "--response-format", "json_schema")
        assert formats(llm) == ["json_schema"]
    assert r.returncode == 4
    assert "does not accept the pinned response format json_schema (HTTP 500" in r.stderr
    assert "pin another with --response-format (json_object, text)" in r.stderr


def test_a_500_that_does_not_name_the_format_is_still_retried(db, profile):
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        llm.push(Status(500, "CUDA out of memory"), Reply(json.dumps(good(db))))
        plan = OpenAIStrategist(base_url=llm.url, api_key=KEY, model=MODEL, retry_backoff=0.001).plan(GOAL, profile)
    assert formats(llm) == ["json_schema", "json_schema"] and plan.response_format == "json_schema"


# --------------------------------------------------------------------------- item 2: timeouts, max_tokens


def test_wait_policy_by_where_the_endpoint_is():
    for url in ("http://127.0.0.1:8080/v1", "http://localhost:11434/v1", "http://192.168.1.20:8000/v1",
                "http://gpu-box:8000/v1", "http://llm.lan/v1", "http://[::1]:8080/v1"):
        assert is_local_url(url), url
        policy = wait_policy(url)
        assert policy.timeout == LOCAL_TIMEOUT_S and not policy.retry_timeouts
    for url in ("https://api.openai.com/v1", "https://openrouter.ai/api/v1", "http://8.8.8.8/v1"):
        assert not is_local_url(url), url
        policy = wait_policy(url)
        assert policy.timeout == REMOTE_TIMEOUT_S and policy.retry_timeouts
    assert wait_policy("http://127.0.0.1/v1", 30).timeout == 30


def test_doctor_says_what_the_requests_will_do():
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        r = run_cli("doctor", "--json", env={"OPENAI_BASE_URL": llm.url, "CLI_AI_MODEL": MODEL})
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "600 s per request" in text and "a timeout is not retried" in text
    assert f"answers capped at {max_tokens_for_spec()} tokens" in text


def test_max_tokens_is_sent_and_fits_the_largest_allowed_spec(db, profile):
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        llm.default = Reply(json.dumps(good(db)))
        OpenAIStrategist(base_url=llm.url, api_key=KEY, model=MODEL).plan(GOAL, profile)
    cap = llm.chat_requests[0].body["max_tokens"]
    assert cap == max_tokens_for_spec()
    # room for a spec of MAX_PARAMS params at 2 characters a token, but far below the 1,557 tokens one model rambled
    big = good(db)
    big["action_space"] = [{"param": "net.ipv4.tcp_max_syn_backlog", "type": "int", "min": 128, "max": 65535}] * MAX_PARAMS
    assert len(json.dumps(big, indent=2)) / 2 < cap < 1557


def test_a_server_that_refuses_max_tokens_gets_max_completion_tokens(db, profile):
    with ScriptedLLM(api_key=KEY, models=(MODEL,), reject_params=("max_tokens",)) as llm:
        llm.default = Reply(json.dumps(good(db)))
        OpenAIStrategist(base_url=llm.url, api_key=KEY, model=MODEL).plan(GOAL, profile)
    bodies = [r.body for r in llm.chat_requests]
    assert "max_tokens" in bodies[0] and "max_completion_tokens" in bodies[1] and "max_tokens" not in bodies[1]


# --------------------------------------------------------------------------- item 3: the prompt's rules


def _spec(data: dict):
    return spec_from_dict(data)


def test_the_param_count_rule_matches_the_prompt(db):
    assert f"Tune {MIN_PARAMS} to {MAX_PARAMS} params" in SYSTEM_PROMPT
    one = good(db)
    one["action_space"] = one["action_space"][:1]
    many = good(db)
    many["action_space"] = [{"param": f"net.ipv4.conf.x{i}", "type": "bool"} for i in range(7)]
    assert plan_rule_problems(_spec(one), runnable=False) == [
        "action_space: 1 param; tune 2 to 6: add 1 more from the catalogue that the goal can gain from"]
    assert plan_rule_problems(_spec(many), runnable=False) == [
        "action_space: 7 params; tune 2 to 6: keep the 6 that matter most for the goal and drop the rest"]
    assert plan_rule_problems(_spec(good(db))) == []


def test_wrk_against_a_port_nothing_listens_on_names_the_listening_ports():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        listening = busy.getsockname()[1]
        closed = free_port()
        spec = good("1")
        spec.update(reward_metric="requests_per_second",
                    benchmark={"runner": "wrk", "args": ["-t2", "-c50", "-d10s", f"http://127.0.0.1:{closed}/"]})
        problems = plan_rule_problems(_spec(spec))
        assert len(problems) == 1
        assert f"wrk's URL http://127.0.0.1:{closed}/ has no server listening on 127.0.0.1:{closed}" in problems[0]
        assert str(listening) in problems[0] and '"runner": "tcp-accept"' in problems[0]
        spec["benchmark"]["args"][-1] = f"http://127.0.0.1:{listening}/"
        assert plan_rule_problems(_spec(spec)) == []


def test_pgbench_without_a_server_and_tools_that_are_not_installed(tmp_path):
    spec = good("5432")
    spec["benchmark"]["args"] = ["-h", str(tmp_path), "-c", "4", "-T", "10", "testdb"]  # a socket dir with no socket
    (problem,) = plan_rule_problems(_spec(spec))
    assert "pgbench needs a PostgreSQL server for database 'testdb' and none is running here" in problem
    assert str(tmp_path / ".s.PGSQL.5432") in problem
    nowhere = Probe(which=lambda program: shutil.which(program, path=str(tmp_path)))
    (problem,) = plan_rule_problems(_spec(spec), probe=nowhere)
    assert problem.startswith("benchmark: pgbench is not installed here")
    builtin = good("1")
    builtin.update(reward_metric="connections_per_second", benchmark={"runner": "tcp-accept"})
    assert plan_rule_problems(_spec(builtin), probe=nowhere) == []
    builtin.update(reward_metric="obtained", benchmark={"runner": "probe", "args": ["--resource", "files", "--count", "100"]})
    assert plan_rule_problems(_spec(builtin), probe=nowhere) == []  # cli-ai's own probe needs no tool
    assert plan_rule_problems(_spec(spec), runnable=False) == []  # a dry run measures nothing


def test_sysbench_needs_a_server_only_for_its_database_tests(tmp_path):
    if not shutil.which("sysbench"):
        pytest.skip("sysbench is not installed")
    spec = good("1")
    spec.update(reward_metric="events_per_second", benchmark={"runner": "sysbench", "args": ["cpu", "--time=5", "run"]})
    assert plan_rule_problems(_spec(spec)) == []
    port = str(free_port())
    spec["benchmark"]["args"] = ["oltp_read_write", "--db-driver=pgsql", "--pgsql-host=127.0.0.1",
                                 f"--pgsql-port={port}", "run"]
    (problem,) = plan_rule_problems(_spec(spec))
    assert f"needs a PostgreSQL server and none answers on 127.0.0.1:{port}" in problem


def test_listening_ports_parser():
    text = ("  sl  local_address rem_address   st tx_queue\n"
            "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000\n"
            "   1: 0100007F:0050 0100007F:C350 01 00000000:00000000\n"
            "   2: 00000000:07E8 00000000:0000 0A 00000000:00000000\n")
    assert listening_ports(text) == {8080, 2024}


def test_a_rule_problem_goes_back_to_the_model_precisely_and_is_not_unsafe(db, profile):
    one = good(db)
    one["action_space"] = one["action_space"][:1]
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        llm.push(Reply(json.dumps(one)), Reply(json.dumps(good(db))))
        plan = OpenAIStrategist(base_url=llm.url, api_key=KEY, model=MODEL).plan(GOAL, profile)
        repair = llm.chat_requests[1].last_user_message
    assert plan.repairs == 1
    assert "- action_space: 1 param; tune 2 to 6: add 1 more" in repair
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        llm.default = Reply(json.dumps(one))
        with pytest.raises(NoUsableAnswerError):  # not UnsafeAnswerError: auto may fall back offline
            OpenAIStrategist(base_url=llm.url, api_key=KEY, model=MODEL, max_repairs=0).plan(GOAL, profile)


# --------------------------------------------------------------------------- item 4: repair lines


def test_elements_on_an_int_says_elements_is_for_vectors_only(db, profile):
    bad = good(db)
    bad["action_space"][0] = {"param": "vm.dirty_ratio", "type": "int", "elements": [{"min": 5, "max": 40}]}
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        llm.push(Reply(json.dumps(bad)), Reply(json.dumps(good(db))))
        OpenAIStrategist(base_url=llm.url, api_key=KEY, model=MODEL).plan(GOAL, profile)
        repair = llm.chat_requests[1].last_user_message
    assert '"elements" is only for type "vector"' in repair
    assert '{"param": "vm.dirty_ratio", "type": "int", "min": ' in repair  # the catalogue's safe range as the fix
    assert "missing required field 'min'" not in repair and "elements: must have" not in repair


def test_the_runner_list_names_only_the_runners_the_prompt_offers(db):
    bad = good(db)
    bad["benchmark"] = {"runner": "curl", "args": ["x"]}
    from cli_ai.spec import validation_problems

    (line,) = [p for p in refine_problems(bad, validation_problems(bad)) if p.startswith("benchmark.runner")]
    assert "command" not in line and "pgbench, wrk, sysbench, redis-benchmark, fio, tcp-accept" in line


def test_clamp_never_reaches_the_model():
    lines = refine_problems({}, ["action_space[0].max: 90 exceeds the safe maximum 40 for vm.dirty_ratio; lower it, "
                                 "or pass --clamp to narrow the range"])
    assert lines == ["action_space[0].max: 90 exceeds the safe maximum 40 for vm.dirty_ratio; lower it"]


def test_the_same_answer_sent_back_is_said_in_the_next_round(db, profile):
    bad = copy.deepcopy(good(db))
    bad["action_space"][0]["max"] = 90
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        # the same spec again, reformatted: still the same answer
        llm.push(Reply(json.dumps(bad)), Reply(json.dumps(bad, indent=4, sort_keys=True)), Reply(json.dumps(good(db))))
        plan = OpenAIStrategist(base_url=llm.url, api_key=KEY, model=MODEL).plan(GOAL, profile)
        first, second = (r.last_user_message for r in llm.chat_requests[1:])
    assert "same as your answer" not in first
    assert second.startswith("Your answer is the same as your answer in round 1")
    assert plan.rounds[1]["same_as_round"] == 1 and plan.rounds[2]["same_as_round"] is None


# --------------------------------------------------------------------------- item 5: a failed plan leaves a record


def test_a_failed_plan_keeps_every_round_in_the_state_directory_without_the_key(db):
    bad = good(db)
    bad["action_space"] = bad["action_space"][:1]
    with ScriptedLLM(api_key=KEY, models=(MODEL,), llama_cpp_style=True) as llm:
        llm.push(Reply("I think you should tune things."), Reply(json.dumps(bad), completion_tokens=77),
                 Reply(json.dumps(bad)))
        r = plan_cli(llm)
    assert r.returncode == 4, r.stderr
    folder = os.path.join(state_dir(), "failed-plans")
    (name,) = os.listdir(folder)
    path = os.path.join(folder, name)
    assert f"every round (answers, problems, format, tokens) is in {path}" in r.stderr
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    text = open(path).read()
    assert KEY not in text
    record = json.loads(text)
    assert record["goal"] == GOAL and record["model"] == MODEL and record["outcome"].startswith("failed")
    rounds = record["rounds"]
    assert [x["number"] for x in rounds] == [1, 2, 3]
    assert rounds[0]["answer"] == "I think you should tune things."
    assert "no JSON object found" in rounds[0]["problems"][0]
    assert any("rejected response_format json_schema (HTTP 500" in n for n in rounds[0]["notes"])
    assert [x["response_format"] for x in rounds] == ["json_object"] * 3
    assert rounds[1]["usage"]["completion_tokens"] == 77
    assert rounds[2]["same_as_round"] == 2
    assert any("tune 2 to 6" in p for p in rounds[2]["problems"])


def test_plan_json_prints_a_json_error_object_on_failure():
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        llm.default = Reply("no spec here")
        r = plan_cli(llm, "--json", "--max-repairs", "1")
    assert r.returncode == 4
    error = json.loads(r.stdout)["error"]
    assert error["kind"] == "NoUsableAnswerError" and error["exit_code"] == 4
    assert error["message"].startswith(f"the LLM ({MODEL} at ")
    assert len(error["rounds"]) == 2 and error["rounds"][1]["answer"] == "no spec here"
    assert error["failed_plan_file"] and os.path.exists(error["failed_plan_file"])
    assert error["usage"]["total_tokens"] == 300


def test_plan_json_error_for_an_unreachable_endpoint():
    r = run_cli("plan", GOAL, "--provider", "openai", "--base-url", f"http://127.0.0.1:{free_port()}/v1", "--json",
                env=WIDE)
    assert r.returncode == 4
    error = json.loads(r.stdout)["error"]
    assert error["kind"] == "EndpointError" and "cannot reach the LLM endpoint" in error["message"]
    assert error["rounds"][0]["error"].startswith("cannot reach the LLM endpoint")


def test_verbose_shows_every_round_on_stderr_and_keeps_stdout_the_spec(db):
    bad = good(db)
    bad["action_space"] = bad["action_space"][:1]
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        llm.push(Reply(json.dumps(bad)), Reply(json.dumps(good(db))))
        r = plan_cli(llm, "--verbose", "-o", os.path.join(state_dir(), "..", "spec.json"))
    assert r.returncode == 0, r.stderr
    assert "round 1: response format json_schema, max " in r.stderr
    assert "action_space: 1 param; tune 2 to 6" in r.stderr and "round 2:" in r.stderr
    assert "passed every check" in r.stderr
    assert "round 1" not in r.stdout


def test_auto_falls_back_offline_and_says_where_the_rounds_are(db, profile):
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        llm.default = Reply("nothing useful")
        plan = make_plan(GOAL, base_url=llm.url, api_key=KEY, model=MODEL, profile=profile, max_repairs=0,
                         dry_run=True)
    assert plan.provider == "offline"
    assert "every round of it is in " in plan.fallback_reason and "failed-plans" in plan.fallback_reason
    assert plan.rounds and plan.rounds[0]["answer"] == "nothing useful"


def test_optimize_verbose_shows_the_rounds_of_a_failed_plan(tmp_path):
    with ScriptedLLM(api_key=KEY, models=(MODEL,)) as llm:
        llm.default = Reply("still no spec")
        r = run_cli("optimize", GOAL, "--dry-run", "--yes", "--provider", "openai", "--base-url", llm.url,
                    "--model", MODEL, "--max-repairs", "1", "--verbose", "--output-dir", tmp_path / "runs",
                    env={"OPENAI_API_KEY": KEY, **WIDE})
    assert r.returncode == 4
    assert "round 1: response format json_schema" in r.stderr and "round 2:" in r.stderr
    assert "answer: still no spec" in r.stderr
    assert "every round (answers, problems, format, tokens) is in " in r.stderr
