"""bench/strategist.py: the goal set is valid, and the judge tells a right plan
from a wrong one on hand-built plans (whatever the current planner's quality)."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys

import pytest

from cli_ai.errors import GoalDeclined, StrategistError
from cli_ai.safety.catalog import CATALOG_FILE
from cli_ai.strategist.base import PlanResult
from cli_ai.spec import spec_from_dict

from tests.conftest import EXAMPLES, ROOT

SCRIPT = ROOT / "bench" / "strategist.py"
_spec = importlib.util.spec_from_file_location("bench_strategist", SCRIPT)
bs = importlib.util.module_from_spec(_spec)
sys.modules["bench_strategist"] = bs  # dataclasses look their module up while the class is built
_spec.loader.exec_module(bs)

CATALOG = json.loads(CATALOG_FILE.read_text())
CATALOG["postgres"] = {name: None for name in bs.postgres_settings()}  # the postgres target's own catalogue
ISSUE_GOALS = {
    "the elasticsearch node fails its bootstrap check about max map count": "vm.max_map_count",
    "our proxy logs 'too many open files'": "fs.file-max",
    "keep idle TCP connections from being dropped by the firewall": "net.ipv4.tcp_keepalive_time",
    "the file server is slow listing directories with millions of files": "vm.vfs_cache_pressure",
    "inotify watches run out": "fs.inotify.max_user_watches",
    "we hit the pid limit": "kernel.pid_max",
}


@pytest.fixture(scope="module")
def goals():
    return bs.load_goals()


def assert_params_in_their_sections(goal_list) -> None:
    """Every param exists, in the catalogue section of the goal's own target;
    none is both acceptable and forbidden; targets without knobs list none."""
    assert bs.unknown_params(goal_list, CATALOG) == []
    for g in goal_list:
        section = {"sysctl": "sysctl", "mosquitto": "mosquitto", "postgres": "postgres"}.get(g.target)
        if section:
            assert g.any_of, f"{g.goal}: a knob target must say which params are acceptable"
            assert set(g.any_of + g.forbidden) <= set(CATALOG[section]), f"{g.goal}: params from another target"
            assert not set(g.any_of) & set(g.forbidden), f"{g.goal}: a param both acceptable and forbidden"
        else:
            assert not g.any_of and not g.forbidden, f"{g.goal}: {g.target} has no catalogue params"


# --------------------------------------------------------------------------- the goal set


def test_goal_set_size_targets_and_declines(goals):
    assert len(goals) >= 100
    assert sum(g.target == "decline" for g in goals) >= 15
    assert {g.target for g in goals} == set(bs.EXPECTED)  # every target and declines are exercised
    texts = [g.goal.strip().lower() for g in goals]
    assert len(texts) == len(set(texts)), "a goal is listed twice"
    assert all(g.why for g in goals), "every goal says why its answer is the right one"


def test_every_param_is_in_the_catalogue_section_of_its_target(goals):
    assert_params_in_their_sections(goals)


HOLDOUT_FILE = ROOT / "bench" / "strategist_goals_holdout.json"


@pytest.fixture(scope="module")
def holdout():
    return bs.load_goals(HOLDOUT_FILE)


def test_holdout_set_size_targets_and_declines(holdout):
    """The held-out set (written apart from the calibration set) passes the same checks, at its own size."""
    assert len(holdout) >= 60
    assert sum(g.target == "decline" for g in holdout) >= 10
    assert {g.target for g in holdout} == set(bs.EXPECTED)
    texts = [g.goal.strip().lower() for g in holdout]
    assert len(texts) == len(set(texts)), "a goal is listed twice"
    assert all(g.why and g.kind for g in holdout), "every goal says why its answer is right and how it is phrased"


def test_every_holdout_param_is_in_the_catalogue_section_of_its_target(holdout):
    assert_params_in_their_sections(holdout)


def test_holdout_shares_no_goal_with_the_calibration_set(goals, holdout):
    # a held-out goal that is also a calibration goal measures nothing about generalisation
    assert not {g.goal.strip().lower() for g in goals} & {g.goal.strip().lower() for g in holdout}


HOLDOUT2_FILE = ROOT / "bench" / "strategist_goals_holdout2.json"


@pytest.fixture(scope="module")
def holdout2():
    return bs.load_goals(HOLDOUT2_FILE)


def test_holdout2_set_size_targets_and_declines(holdout2):
    """The second held-out set (written without reading the other two, the templates or the knowledge text)."""
    assert len(holdout2) >= 60
    assert sum(g.target == "decline" for g in holdout2) >= 10
    assert {g.target for g in holdout2} == set(bs.EXPECTED) - {"postgres"}  # written before the postgres target
    texts = [g.goal.strip().lower() for g in holdout2]
    assert len(texts) == len(set(texts)), "a goal is listed twice"
    assert all(g.why and g.kind for g in holdout2), "every goal says why its answer is right and how it is phrased"


def test_every_holdout2_param_is_in_the_catalogue_section_of_its_target(holdout2):
    assert_params_in_their_sections(holdout2)


def test_holdout2_shares_no_goal_with_the_other_sets(goals, holdout, holdout2):
    # a goal already in the calibration or first held-out set measures nothing new
    mine = {g.goal.strip().lower() for g in holdout2}
    assert not mine & {g.goal.strip().lower() for g in goals}
    assert not mine & {g.goal.strip().lower() for g in holdout}


HOLDOUT3_FILE = ROOT / "bench" / "strategist_goals_holdout3.json"


HOLDOUT4_FILE = ROOT / "bench" / "strategist_goals_holdout4.json"


@pytest.mark.parametrize("which", [3, 4])
def test_holdout3_and_4_size_targets_declines_and_no_shared_goal(which, goals, holdout, holdout2):
    """The third and fourth held-out sets (each written without reading the planner, its data or the other sets)."""
    mine = bs.load_goals(HOLDOUT3_FILE if which == 3 else HOLDOUT4_FILE)
    assert len(mine) >= 80
    assert sum(g.target == "decline" for g in mine) >= 15
    assert {g.target for g in mine} == set(bs.EXPECTED)
    texts = [g.goal.strip().lower() for g in mine]
    assert len(texts) == len(set(texts)), "a goal is listed twice"
    assert all(g.why and g.kind for g in mine)
    assert_params_in_their_sections(mine)
    others = [*goals, *holdout, *holdout2, *bs.load_goals(HOLDOUT4_FILE if which == 3 else HOLDOUT3_FILE)]
    assert not set(texts) & {g.goal.strip().lower() for g in others}


def test_the_script_scores_the_holdout_set(tmp_path):
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--goals", str(HOLDOUT_FILE), "--target", "scheduler", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"goals from {HOLDOUT_FILE}" in proc.stdout
    rows = json.loads(out.read_text())
    assert len(rows) == sum(g.target == "scheduler" for g in bs.load_goals(HOLDOUT_FILE)) and rows
    assert {r["expected"] for r in rows} == {"scheduler"}


def test_unknown_params_finds_a_made_up_one():
    fake = [bs.Goal("g", "symptom", "sysctl", ("vm.swappiness", "vm.made_up"))]
    assert bs.unknown_params(fake, CATALOG) == ["g: vm.made_up"]


def test_the_issue_goals_are_in_the_set_with_their_params(goals):
    by_text = {g.goal: g for g in goals}
    for text, param in ISSUE_GOALS.items():
        assert text in by_text and param in by_text[text].any_of and by_text[text].target == "sysctl"
    assert by_text["decide how many OpenFaaS workers to run"].target == "autoscaling"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"goal": "x", "target": "kafka", "any_of": []}, "'target' must be one of"),
        ({"goal": "", "target": "sysctl"}, "'goal' must be a non-empty string"),
        ({"goal": "x", "target": "sysctl", "any_of": "vm.swappiness"}, "'any_of' must be a list"),
        ({"goal": "x", "target": "decline", "any_of": ["vm.swappiness"]}, "a declined goal lists no params"),
    ],
)
def test_a_bad_goal_entry_is_refused_by_name(tmp_path, entry, message):
    path = tmp_path / "goals.json"
    path.write_text(json.dumps({"goals": [{"goal": "fine", "target": "decline"}, entry]}))
    with pytest.raises(ValueError, match=r"goals\[1\]") as info:
        bs.load_goals(path)
    assert message in str(info.value)


# --------------------------------------------------------------------------- the judge


def plan_of(example: str, params: list[str] | None = None) -> PlanResult:
    """A PlanResult built by hand from an example spec, its action space cut to `params`."""
    data = json.loads((EXAMPLES / example).read_text())
    if params is not None:
        data = copy.deepcopy(data)
        data["action_space"] = [k for k in data["action_space"] if k["param"] in params]
        assert [k["param"] for k in data["action_space"]] == params
    return PlanResult(spec_dict=data, spec=spec_from_dict(data), provider="offline", template="hand-built")


MAP = bs.Goal("elasticsearch bootstrap check", "issue", "sysctl", ("vm.max_map_count",))
BACKLOG = bs.Goal("connection refused in a burst", "symptom", "sysctl", ("net.core.somaxconn",), ("net.ipv4.tcp_max_syn_backlog",))
NONSENSE = bs.Goal("write me a poem", "decline", "decline")
SCALE = bs.Goal("how many workers", "autoscaling", "autoscaling")


def test_a_plan_with_an_expected_param_is_right():
    row = bs.judge(BACKLOG, plan_of("nginx_high_concurrency.json", ["net.core.somaxconn", "net.core.netdev_max_backlog"]))
    assert row.right and row.miss is None
    assert row.planned_target == "sysctl" and row.planned_params == ["net.core.somaxconn", "net.core.netdev_max_backlog"]


def test_a_plan_without_any_expected_param_is_wrong():
    row = bs.judge(MAP, plan_of("postgresql_oltp.json"))
    assert not row.right and row.miss == "no expected param"
    assert "vm.dirty_ratio" in row.detail  # the miss says what was planned instead


def test_a_forbidden_param_makes_a_plan_wrong_even_with_an_expected_one():
    row = bs.judge(BACKLOG, plan_of("loopback_backlog.json"))
    assert not row.right and row.miss == "forbidden param"
    assert "forbidden: net.ipv4.tcp_max_syn_backlog" in row.detail


def test_the_wrong_target_is_wrong_and_a_target_without_params_is_judged_by_target():
    assert bs.judge(SCALE, plan_of("autoscaling.json")).right
    wrong = bs.judge(SCALE, plan_of("postgresql_oltp.json"))
    assert not wrong.right and wrong.miss == "wrong target"
    assert bs.judge(MAP, plan_of("mosquitto.json")).miss == "wrong target"


def test_declines():
    assert bs.judge(NONSENSE, GoalDeclined("nothing cli-ai can tune")).right
    planned = bs.judge(NONSENSE, plan_of("postgresql_oltp.json"))
    assert not planned.right and planned.miss == "not declined"
    declined = bs.judge(MAP, GoalDeclined("nothing cli-ai can tune"))
    assert not declined.right and declined.miss == "declined"


def test_other_errors_are_failures_to_plan_or_crashes():
    failed = bs.judge(MAP, StrategistError("the offline plan fails cli-ai's own checks"))
    assert not failed.right and failed.miss == "failed to plan" and "StrategistError" in failed.detail
    assert bs.judge(NONSENSE, StrategistError("x")).miss == "failed to plan"  # only GoalDeclined is a decline
    assert bs.judge(MAP, KeyError("template")).miss == "crash"


def test_a_refusal_for_want_of_a_benchmark_is_right_only_for_the_goal_s_param():
    from cli_ai.errors import BenchmarkCannotMeasure

    refused = bs.judge(MAP, BenchmarkCannotMeasure("no benchmark", params=("vm.max_map_count",)))
    assert refused.right and refused.planned_params == ["vm.max_map_count"]
    assert "right, refused: no benchmark" in bs.summarize([refused], "t")
    other = bs.judge(MAP, BenchmarkCannotMeasure("no benchmark", params=("vm.swappiness",)))
    assert not other.right and other.miss == "failed to plan"
    assert bs.judge(NONSENSE, BenchmarkCannotMeasure("no", params=("vm.swappiness",))).miss == "failed to plan"


def test_evaluate_keeps_going_past_a_crash_and_summarize_counts():
    outcomes = {MAP.goal: plan_of("postgresql_oltp.json"), NONSENSE.goal: GoalDeclined("no"), SCALE.goal: RuntimeError("boom")}

    def plan(text):
        out = outcomes[text]
        if isinstance(out, BaseException):
            raise out
        return out

    rows = bs.evaluate([MAP, NONSENSE, SCALE], plan, provider="offline")
    assert [r.miss for r in rows] == ["no expected param", None, "crash"]
    text = bs.summarize(rows, "t")
    assert "overall          1 / 3" in text and "declines right: 1 of 1" in text
    assert "misses by kind: crash 1, no expected param 1" in text


# --------------------------------------------------------------------------- the script as a user runs it


def test_the_script_runs_offline_and_writes_rows(tmp_path):
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--target", "decline", "--target", "autoscaling", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "strategist (offline), profile fixed" in proc.stdout and "time per plan" in proc.stdout
    rows = json.loads(out.read_text())
    assert {r["expected"] for r in rows} == {"decline", "autoscaling"}
    assert all(r["provider"] == "offline" and isinstance(r["right"], bool) for r in rows)


def test_the_script_refuses_a_bad_goal_file_in_one_line(tmp_path):
    bad = tmp_path / "goals.json"
    bad.write_text(json.dumps({"goals": [{"goal": "x", "target": "kafka"}]}))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--goals", str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "goals[0]: 'target' must be one of" in proc.stderr


def test_the_llm_path_is_scored_against_a_real_endpoint(tmp_path, capsys):
    """A scripted OpenAI-compatible server on a real socket: both answers are a
    writeback spec, right for the stalling database, wrong for the poem."""
    from tests.llm_server import Reply, ScriptedLLM

    goals = tmp_path / "goals.json"
    goals.write_text(json.dumps({"goals": [
        {"goal": "my postgres stalls on writes", "target": "sysctl", "any_of": ["vm.dirty_ratio"], "why": "writeback"},
        {"goal": "write me a poem", "target": "decline", "why": "not tuning"},
    ]}))
    answer = json.loads((EXAMPLES / "postgresql_oltp.json").read_text())
    out = tmp_path / "rows.json"
    with ScriptedLLM(api_key=None) as llm:
        llm.push(Reply(json.dumps(answer)), Reply(json.dumps(answer)))
        code = bs.main(["--goals", str(goals), "--skip-offline", "--base-url", llm.url, "--model", "test-model",
                        "--json", str(out)])
        assert len(llm.chat_requests) == 2
    assert code == 0
    rows = json.loads(out.read_text())
    assert [(r["provider"], r["right"], r["miss"]) for r in rows] == [("openai", True, None), ("openai", False, "not declined")]
    assert "strategist (openai)" in capsys.readouterr().out


def test_skip_offline_without_an_endpoint_is_refused(capsys):
    assert bs.main(["--skip-offline", "--limit", "1"]) == 2
    assert "--skip-offline needs an LLM endpoint" in capsys.readouterr().err


def test_a_secret_in_an_error_never_reaches_the_rows():
    from cli_ai.core.secrets import Scrubber

    def plan(text):
        raise StrategistError("cannot reach https://user:hunter2secret@llm.example/v1")

    (row,) = bs.evaluate([MAP], plan, provider="openai", scrub=Scrubber("hunter2secret"))
    assert row.miss == "failed to plan" and "hunter2secret" not in row.detail and "***" in row.detail
