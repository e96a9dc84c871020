"""Issue 16's Must show: the offline planner grounded in the catalogue.

Goals phrased as people say them plan the catalogue's right params; goals that
name nothing cli-ai tunes are declined (exit 2, no spec); a running broker
never replaces the person's words; a plan never pairs knobs with a benchmark
they cannot move (the relevance check); offline `plan` imports no torch."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from cli_ai.errors import BenchmarkCannotMeasure, GoalDeclined
from cli_ai.strategist import make_plan
from cli_ai.strategist.profile import gather_profile
from cli_ai.strategist.relevance import check_relevance

from tests.conftest import ROOT, run_cli

# The evaluation's fixed profile (bench/strategist.py): a 6.8 kernel, every
# benchmark tool installed, no service running, so only the goal decides.
_spec = importlib.util.spec_from_file_location("bench_strategist_profile", ROOT / "bench" / "strategist.py")
_bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_strategist_profile"] = _bench  # dataclasses look their module up while the class is built
_spec.loader.exec_module(_bench)
FIXED = _bench.FIXED_PROFILE

DIRTY = {"vm.dirty_ratio", "vm.dirty_background_ratio", "vm.dirty_expire_centisecs", "vm.dirty_writeback_centisecs"}

# goal -> params of which the plan must tune at least one (issue 16's six goals)
ISSUE_GOALS = {
    "the elasticsearch node fails its bootstrap check about max map count": {"vm.max_map_count"},
    "our proxy logs 'too many open files'": {"fs.file-max", "fs.nr_open"},
    "keep idle TCP connections from being dropped by the firewall": {"net.ipv4.tcp_keepalive_time"},
    "the file server is slow listing directories with millions of files": {"vm.vfs_cache_pressure"},
    "inotify watches run out": {"fs.inotify.max_user_watches"},
    "we hit the pid limit": {"kernel.pid_max"},
}


def params_of(plan) -> list[str]:
    return [k["param"] for k in plan.spec_dict["action_space"]]


@pytest.mark.parametrize("goal", sorted(ISSUE_GOALS))
def test_issue_goals_plan_the_right_params(goal):
    plan = make_plan(goal, provider="offline", dry_run=True, profile=FIXED)
    assert plan.spec.target == "sysctl"
    assert ISSUE_GOALS[goal] & set(params_of(plan)), (params_of(plan), plan.reasoning)
    assert "matched" in "\n".join(plan.reasoning)


def test_the_file_server_goal_does_not_tune_writeback():
    """Listing directories is the dentry/inode cache; writeback knobs cannot speed it up."""
    plan = make_plan("the file server is slow listing directories with millions of files",
                     provider="offline", dry_run=True, profile=FIXED)
    assert not DIRTY & set(params_of(plan)), params_of(plan)


def test_openfaas_workers_is_the_autoscaling_target():
    plan = make_plan("decide how many OpenFaaS workers to run", provider="offline", dry_run=True, profile=FIXED)
    assert plan.spec.target == "autoscaling" and plan.template == "autoscaling"
    assert "workers" in params_of(plan)


def test_cli_plan_explains_which_words_matched(tmp_path):
    out = tmp_path / "spec.json"
    r = run_cli("plan", "inotify watches run out", "--provider", "offline", "-o", out, "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    matched = [line for line in data["reasoning"] if "matched" in line]
    assert any("fs.inotify.max_user_watches" in line and "'inotify'" in line and "'watches'" in line
               for line in matched), data["reasoning"]
    spec = json.loads(out.read_text())
    assert "fs.inotify.max_user_watches" in [k["param"] for k in spec["action_space"]]
    assert spec["benchmark"]["runner"] == "probe"


@pytest.mark.parametrize("goal", ["asdkjh qwe zzz", "write me a poem about the sea"])
def test_non_tuning_goals_are_declined_with_help_and_no_spec(goal, tmp_path):
    out = tmp_path / "spec.json"
    r = run_cli("plan", goal, "--provider", "offline", "-o", out, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    text = r.stdout + r.stderr
    assert "cli-ai tunes Linux kernel settings" in text
    assert "for example" in text and "my postgres stalls on writes" in text
    assert not out.exists()
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize("goal", ["asdkjh qwe zzz", "write me a poem about the sea"])
def test_non_tuning_goals_are_declined_in_process(goal):
    with pytest.raises(GoalDeclined) as info:
        make_plan(goal, provider="offline", dry_run=True, profile=FIXED)
    assert info.value.exit_code == 2


def test_a_running_mosquitto_profile_still_plans_file_max():
    broker = dataclasses.replace(FIXED, services_running=["mosquitto"], services_installed=["mosquitto"])
    plan = make_plan("too many open files", provider="offline", dry_run=True, profile=broker)
    assert plan.spec.target == "sysctl"
    assert "fs.file-max" in params_of(plan), params_of(plan)
    assert not any("mosquitto" in line for line in plan.reasoning)


@pytest.mark.skipif(not shutil.which("mosquitto", path=os.environ.get("PATH", "") + ":/usr/sbin"),
                    reason="needs the mosquitto binary")
def test_a_real_mosquitto_process_does_not_replace_the_goal(tmp_path):
    from cli_ai.broker.process import free_port, tcp_accepting

    binary = shutil.which("mosquitto", path=os.environ.get("PATH", "") + ":/usr/sbin")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not tcp_accepting("127.0.0.1", port, 0.2) and time.monotonic() < deadline:
            assert proc.poll() is None, "mosquitto exited at start"
            time.sleep(0.1)
        profile = gather_profile()
        assert "mosquitto" in profile.services_running  # the profile does see it
        plan = make_plan("too many open files", provider="offline", dry_run=True, profile=profile)
        assert plan.spec.target == "sysctl"
        assert "fs.file-max" in params_of(plan), params_of(plan)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_database_goal_without_pgbench_and_fio_never_pairs_dirty_with_memory_bench():
    bare = dataclasses.replace(FIXED, benchmark_tools=["sysbench", "wrk", "redis-benchmark"])
    plan = make_plan("my postgres stalls on writes", provider="offline", dry_run=True, profile=bare)
    bench = plan.spec_dict["benchmark"]
    dirty = DIRTY & set(params_of(plan))
    assert not (bench["runner"] == "sysbench" and dirty), (bench, params_of(plan))
    if dirty:  # then the benchmark is one they move, and a warning says what to install
        assert bench["runner"] in ("pgbench", "fio"), bench
        assert any("not installed" in w and "install" in w and bench["runner"] in w for w in plan.warnings), plan.warnings


def _spec(params, benchmark):
    knobs = {"vm.dirty_ratio": {"param": "vm.dirty_ratio", "type": "int", "min": 5, "max": 40},
             "net.core.somaxconn": {"param": "net.core.somaxconn", "type": "int", "min": 1024, "max": 65535},
             "vm.swappiness": {"param": "vm.swappiness", "type": "int", "min": 0, "max": 60}}
    return {"workload_name": "hand-built", "target": "sysctl", "reward_metric": "operations_per_second",
            "benchmark": benchmark, "action_space": [knobs[p] for p in params]}


SYSBENCH_MEMORY = {"runner": "sysbench", "args": ["memory", "--threads=2", "--time=20", "run"]}


def test_relevance_drops_knobs_the_benchmark_cannot_show():
    spec = _spec(["vm.dirty_ratio", "net.core.somaxconn", "vm.swappiness"], SYSBENCH_MEMORY)
    r = check_relevance(spec)
    assert r.benchmark == "sysbench_memory"
    assert r.kept == ["vm.swappiness"]
    assert set(r.dropped) == {"vm.dirty_ratio", "net.core.somaxconn"}
    assert any(n.startswith("dropped vm.dirty_ratio: it cannot move sysbench_memory") for n in r.notes), r.notes
    assert [k["param"] for k in r.spec_dict["action_space"]] == ["vm.swappiness"]
    assert len(spec["action_space"]) == 3  # the input is not changed


def test_relevance_refuses_a_plan_none_of_whose_knobs_can_move_it():
    spec = _spec(["vm.dirty_ratio", "net.core.somaxconn"], SYSBENCH_MEMORY)
    with pytest.raises(BenchmarkCannotMeasure) as info:
        check_relevance(spec)
    msg = str(info.value)
    assert "vm.dirty_ratio" in msg and "net.core.somaxconn" in msg and "sysbench_memory" in msg
    assert "measure them with" in msg  # with a benchmark that would
    assert info.value.exit_code == 3


def test_relevance_does_not_judge_a_command_benchmark():
    spec = _spec(["vm.dirty_ratio", "net.core.somaxconn"], {"runner": "command", "args": ["./my-bench.sh"]})
    r = check_relevance(spec)
    assert r.benchmark is None
    assert r.kept == ["vm.dirty_ratio", "net.core.somaxconn"] and r.dropped == []
    assert any("not checked" in n for n in r.notes), r.notes


def test_offline_plan_imports_no_torch():
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "cli_ai", "plan", "lots of TIME_WAIT sockets",
                        "--provider", "offline"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    modules = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "cli_ai.strategist.offline" in modules  # the planner was imported, so the list is the real one
    heavy = sorted(m for m in modules if m.split(".")[0] in ("torch", "stable_baselines3", "optuna"))
    assert heavy == [], heavy



# --------------------------------------------------------------------------- the postgres target (issue 17 item 6)

POSTGRES_GOALS = ["my postgres is slow", "checkpoints cause latency spikes", "queries spill to disk",
                  "autovacuum can't keep up", "set postgres shared_buffers and work_mem for me"]


@pytest.mark.parametrize("goal", POSTGRES_GOALS)
def test_postgres_goals_plan_the_database_s_own_settings(goal):
    plan = make_plan(goal, provider="offline", dry_run=True, profile=FIXED)
    assert plan.spec.target == "postgres" and plan.template == "postgres"
    assert "shared_buffers" in plan.spec.params and "max_wal_size" in plan.spec.params
    text = "\n".join(plan.reasoning)
    assert "matched" in text or "best match" in text  # which words led here
    if goal != "my postgres is slow":  # a symptom names settings; "slow" alone names none
        assert "postgres settings the goal's words point to" in text
    assert not plan.warnings  # nothing runs in the fixed profile: a managed cluster, no attach hint


def test_a_running_postgres_gets_the_attach_hint_and_a_still_managed_plan():
    running = dataclasses.replace(FIXED, services_running=["postgres"])
    plan = make_plan("my postgres is slow", provider="offline", dry_run=True, profile=running)
    assert plan.spec.target == "postgres" and "attach" not in (plan.spec_dict.get("postgres") or {})
    assert any('"attach"' in w and "ALTER SYSTEM" in w for w in plan.warnings)


def test_a_postgres_setting_the_spec_does_not_tune_is_named():
    plan = make_plan("autovacuum can't keep up", provider="offline", dry_run=True, profile=FIXED)
    assert any("autovacuum" in line and "does not tune it" in line for line in plan.reasoning)
