"""The offline strategist: differently worded goals reach the right template
(BM25 retrieval over the templates and the catalogue, issue 16), determinism,
the explanation, the profile's influence, and that every spec it plans
validates and passes cli-ai's safety checks on this kernel."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cli_ai.errors import BadInputError, GoalDeclined, StrategistError
from cli_ai.safety.catalog import load_catalog, lookup
from cli_ai.strategist import make_plan
from cli_ai.strategist import offline as offline_mod
from cli_ai.strategist.base import assess_spec
from cli_ai.strategist.offline import MIN_TEMPLATE, OfflineStrategist, compile_phrase, load_templates, normalize
from cli_ai.strategist.profile import SystemProfile, gather_profile

ALL_TOOLS = ["pgbench", "wrk", "sysbench", "redis-benchmark", "fio"]


@pytest.fixture(scope="module")
def here() -> SystemProfile:
    """This machine, with no services running or installed, so only the goal decides."""
    p = gather_profile()
    return dataclasses.replace(p, services_running=[], services_installed=[])


def profile_with(base: SystemProfile, **changes) -> SystemProfile:
    return dataclasses.replace(base, **changes)


GOALS = [
    ("my postgres stalls on writes", "database_oltp"),
    ("speed up our OLTP database", "database_oltp"),
    ("MySQL commits are slow under heavy transaction load", "database_oltp"),
    ("WAL fsync and checkpoints stall our database", "database_oltp"),
    ("data warehouse queries scanning huge tables", "analytics"),
    ("make ClickHouse analytics faster", "analytics"),
    ("too many open connections to nginx", "web_server"),
    ("make this box handle more web connections", "web_server"),
    ("the reverse proxy drops connections under load", "web_server"),
    ("our website gets thousands of concurrent visitors", "web_server"),
    ("lots of TIME_WAIT sockets", "short_connections"),
    ("clients fail with cannot assign requested address", "short_connections"),
    ("we run out of ephemeral ports when calling the payment API", "short_connections"),
    ("short-lived connections churn through the load balancer", "short_connections"),
    ("copying large files to disk is slow", "file_io"),
    # planned from the catalogue: vm.dirty_background_ratio against fio, a right answer for bulk writes
    ("nightly backups take too long", "catalogue"),
    ("streaming logs to disk with sequential writes", "file_io"),
    ("CPU-bound number crunching job", "cpu_compute"),
    ("speed up video transcoding with ffmpeg", "cpu_compute"),
    ("the HPC cluster runs MPI simulations", "cpu_compute"),
    ("p99 latency of our API is too high", "latency"),
    ("trading gateway needs low jitter", "latency"),
    ("game server tick jitter and response time spikes", "latency"),
    ("redis keeps swapping", "memory_cache"),
    ("memory-hungry in-memory cache", "memory_cache"),
    ("Elasticsearch heap keeps hitting OOM", "memory_cache"),
    ("push 10GbE bandwidth for bulk transfers", "network_throughput"),
    ("tune my mosquitto MQTT broker", "mosquitto"),
    ("IoT devices publish to our message broker", "mosquitto"),
    ("serverless functions suffer cold starts", "autoscaling"),
    ("how many replicas should my service autoscale to", "autoscaling"),
    ("route requests across replicas to cut queueing", "scheduler"),
    ("balance load between replicas of the inference server", "scheduler"),
    ("pick which replica should serve each request", "scheduler"),
]


def _goal(item):
    return item.values if hasattr(item, "values") else item


@pytest.mark.parametrize("goal,expected", GOALS, ids=[_goal(g)[0] for g in GOALS])
def test_goal_maps_to_workload(goal, expected, here):
    plan = OfflineStrategist().plan(goal, here)
    assert plan.template == expected, plan.reasoning
    if expected != "catalogue":
        # the template leads the ranking too, and by more than the "no match" floor
        _, templates, _ = OfflineStrategist().rank(goal, here)
        assert templates[0][0].doc.name == expected, [(t[0].doc.name, t[1]) for t in templates[:3]]
        assert templates[0][1] >= MIN_TEMPLATE


def test_normalize_and_phrases():
    assert normalize("Lots of TIME_WAIT sockets!") == "lots of time wait sockets"
    assert normalize("short-lived I/O") == "short lived i o"
    rx = compile_phrase("stall* ... writ*")
    assert rx.search("my postgres stalls on writes")
    assert rx.search("stalled while writing")
    assert not rx.search("writes stall")  # order matters
    assert not rx.search("stall a b c d writes")  # at most three words in between
    assert compile_phrase("web server*|webserver*").search("our webservers")
    assert not compile_phrase("pg").search("upgrade")  # whole words only


def test_single_keyword_alone_is_weak(here):
    """A lone generic word does not decide: 'memory' alone is declined; the same
    template, named by a phrase, scores several times as much and plans."""
    s = OfflineStrategist()
    weak = s.rank("memory", here)[1][0]
    strong = s.rank("memory-hungry in-memory cache", here)[1][0]
    assert weak[0].doc.name == strong[0].doc.name == "memory_cache"
    assert strong[1] >= 2.5 * weak[1]
    with pytest.raises(GoalDeclined):
        s.plan("memory", here)
    assert s.plan("memory-hungry in-memory cache", here).template == "memory_cache"


def test_plans_are_deterministic(here):
    for goal, _ in map(_goal, GOALS[:27]):
        a = OfflineStrategist().plan(goal, here)
        b = OfflineStrategist().plan(goal, here)
        assert a.spec_dict == b.spec_dict
        assert a.reasoning == b.reasoning
        assert json.dumps(a.spec_dict, sort_keys=True) == json.dumps(b.spec_dict, sort_keys=True)


def test_explanation_names_matched_words_entries_benchmark_and_runner_up(here):
    plan = OfflineStrategist().plan("my postgres stalls on writes", here)
    text = "\n".join(plan.reasoning)
    assert plan.template == "database_oltp"
    assert "[database_oltp], score" in text and "matched 'postgres', 'stalls', 'writes'" in text
    assert "catalogue entries that match best: vm.dirty_ratio (" in text  # which words led to which entries
    assert "vm.dirty_ratio 5..40 (safe 1..40)" in text  # each param, its range and the safe one
    assert "template: database_oltp" in text
    assert "benchmark: fio [fio_randwrite_sync]" in text  # and why this benchmark
    assert "skipped vm.swappiness: it cannot move fio_randwrite_sync" in text

    mixed = OfflineStrategist().plan("short-lived connections churn through the load balancer", here)
    text = "\n".join(mixed.reasoning)
    assert mixed.template == "short_connections"
    assert "runner-up: Request scheduling across replicas [scheduler], score" in text
    assert "'load', 'balancer'" in text


def test_running_service_tips_the_balance(here):
    """What runs informs a plan the words point to; it never picks one alone."""
    goal = "our backend is slow under load"
    with pytest.raises(GoalDeclined):
        OfflineStrategist().plan(goal, here)
    with pytest.raises(GoalDeclined):  # no word of the goal points to a database
        OfflineStrategist().plan(goal, profile_with(here, services_running=["postgres"]))
    # a running service raises the reading the words already support, by a
    # share of its own score: it tips a near tie, it does not override a clear lead
    mysql = profile_with(here, services_running=["mysql"])
    tie = "writes to disk stall"  # database_oltp and file_io both fit
    base = {t[0].doc.name: t[1] for t in OfflineStrategist().rank(tie, here)[1]}
    tipped = {t[0].doc.name: t[1] for t in OfflineStrategist().rank(tie, mysql)[1]}
    assert tipped["database_oltp"] == pytest.approx(base["database_oltp"] * (1 + offline_mod.RUNNING_BONUS), rel=1e-3)
    assert tipped["file_io"] == base["file_io"]
    plan = OfflineStrategist().plan(tie, mysql)
    assert plan.template == "database_oltp"
    assert "  mysql is running here (+" in "\n".join(plan.reasoning)
    clear = "bulk inserts to disk"  # bulk file I/O by its words, well ahead
    assert OfflineStrategist().plan(clear, here).template == "file_io"
    assert OfflineStrategist().plan(clear, mysql).template == "file_io"


@pytest.mark.parametrize("goal", ["too many open files", "make my laptop battery last longer", "asdkjh qwe zzz"])
def test_a_running_broker_does_not_replace_the_goal(goal, here):
    """With mosquitto running, every goal, gibberish included, became a
    Mosquitto plan ("mosquitto is running here (+1.5)", no phrase matched)."""
    broker = profile_with(here, services_running=["mosquitto"])
    try:
        plan = OfflineStrategist().plan(goal, broker)
    except GoalDeclined:  # battery and gibberish: declined, broker or not
        with pytest.raises(GoalDeclined):
            OfflineStrategist().plan(goal, here)
        return
    assert plan.template != "mosquitto" and plan.spec.target != "mosquitto"
    assert not any("mosquitto is running" in line for line in plan.reasoning)
    assert plan.spec_dict == OfflineStrategist().plan(goal, here).spec_dict


def test_another_product_s_broker_is_not_mosquitto(here):
    with pytest.raises(GoalDeclined) as info:  # Kafka's own settings: not a cli-ai target
        OfflineStrategist().plan("tune for a kafka broker", here)
    assert "a program's own settings" in str(info.value)
    plan = OfflineStrategist().plan("kafka broker has too many open files", here)
    assert plan.spec.target == "sysctl" and "fs.file-max" in [k["param"] for k in plan.spec_dict["action_space"]]
    assert "'kafka' is named: cli-ai's MQTT broker (Mosquitto) target is not for it" in "\n".join(plan.reasoning)
    assert OfflineStrategist().plan("tune my mqtt broker", here).template == "mosquitto"


def test_nothing_recognised_is_declined_and_says_what_cli_ai_tunes(here):
    """Issue 16: no more "general" plan for a goal that names nothing."""
    with pytest.raises(GoalDeclined) as info:
        OfflineStrategist().plan("make it better", here)
    lines = info.value.lines()
    assert "the goal matches nothing cli-ai can tune" in str(info.value)
    assert any(line.startswith("cli-ai tunes Linux kernel settings") for line in lines)
    assert any("for example: " in line and "my postgres stalls on writes" in line for line in lines)
    assert info.value.exit_code == 2


SYSCTL_GOALS = {goal: wid for goal, wid in map(_goal, GOALS) if wid not in ("mosquitto", "autoscaling", "scheduler")}
LIMIT_GOALS = ["too many open files", "inotify watches run out", "we hit the pid limit",
               "the elasticsearch node fails its bootstrap check about max map count"]


@pytest.mark.parametrize("services", [[], ["postgres", "nginx", "redis"]], ids=["idle", "servers-running"])
@pytest.mark.parametrize("goal", sorted(SYSCTL_GOALS) + LIMIT_GOALS)
def test_every_offline_spec_validates_and_passes_safety_here(goal, services, here):
    """With this machine's kernel, /proc/sys and tools; with and without servers to benchmark."""
    plan = make_plan(goal, provider="offline", profile=profile_with(here, services_running=services))
    verdict = assess_spec(plan.spec_dict)  # make_plan re-checks; assert here as well
    assert verdict.problems == [], verdict.problems
    assert plan.spec.target == "sysctl"
    for knob in plan.spec_dict["action_space"]:
        assert lookup(knob["param"]) is not None


def test_every_template_stays_inside_the_catalogue():
    """Template data itself: only catalogue params, ranges inside the safe ones."""
    catalog = load_catalog()
    workloads, benchmarks = load_templates()
    for wl in workloads:
        for tpl in wl.params:
            entry = catalog.get(tpl["param"])
            assert entry is not None, f"{wl.id}: {tpl['param']} is not in the catalogue"
            kind = tpl.get("type", "int")
            if kind in ("int", "float"):
                assert entry.min <= tpl["min"] < tpl["max"] <= entry.max, (wl.id, tpl)
            elif kind == "vector":
                for el, safe in zip(tpl["elements"], entry.elements, strict=True):
                    assert safe.min <= el["min"] <= el["max"] <= safe.max, (wl.id, tpl)
            elif kind == "enum":
                assert set(tpl["values"]) <= set(entry.values), (wl.id, tpl)
            else:
                assert entry.type == "bool", (wl.id, tpl)
        for bid in wl.benchmarks:
            assert bid in benchmarks, f"{wl.id}: unknown benchmark {bid}"


def test_params_missing_on_the_kernel_are_skipped_and_named(here):
    old_kernel = profile_with(here, absent_sysctls=[], kernel="5.10.0")
    plan = OfflineStrategist().plan("CPU-bound number crunching", old_kernel)
    names = [k["param"] for k in plan.spec_dict["action_space"]]
    assert names[0] == "kernel.sched_min_granularity_ns"
    new_kernel = profile_with(here, absent_sysctls=sorted(n for n in load_catalog() if n.startswith("kernel.sched_") and "ns" in n), kernel="6.8.0")
    plan = OfflineStrategist().plan("CPU-bound number crunching", new_kernel)
    names = [k["param"] for k in plan.spec_dict["action_space"]]
    assert not any(n.endswith("_ns") for n in names)
    assert "skipped kernel.sched_min_granularity_ns: not on this kernel 6.8.0 (removed in Linux 5.13)" in "\n".join(plan.reasoning)


def test_a_template_with_no_param_left_fails_clearly(here):
    nothing = profile_with(here, absent_sysctls=sorted(load_catalog()))
    with pytest.raises(StrategistError) as info:
        OfflineStrategist().plan("CPU-bound number crunching", nothing)
    assert "has no param this kernel offers" in str(info.value)
    assert any("not on this kernel" in line for line in info.value.lines())


def test_benchmark_choice_follows_installed_tools_and_running_services(here):
    goal = "my postgres stalls on writes"
    running = profile_with(here, benchmark_tools=ALL_TOOLS, services_running=["postgres"])
    plan = OfflineStrategist().plan(goal, running)
    assert plan.spec_dict["benchmark"]["runner"] == "pgbench"
    assert plan.spec_dict["reward_metric"] == "transactions_per_second"

    idle = profile_with(here, benchmark_tools=ALL_TOOLS, services_running=[])
    plan = OfflineStrategist().plan(goal, idle)
    assert plan.spec_dict["benchmark"]["runner"] == "fio"
    assert "passed over pgbench: installed, but no postgres is running" in "\n".join(plan.reasoning)

    bare = profile_with(here, benchmark_tools=[], services_running=[])
    web = OfflineStrategist().plan("make this box handle more web connections", bare)
    assert web.spec_dict["benchmark"] == {"runner": "tcp-accept", "timeout_s": 120}
    assert web.spec_dict["reward_metric"] == "connections_per_second"
    db = OfflineStrategist().plan(goal, bare)
    assert db.warnings and "not installed" in db.warnings[0]

    nginx = profile_with(here, benchmark_tools=ALL_TOOLS, services_running=["nginx"])
    plan = OfflineStrategist().plan("too many open connections to nginx", nginx)
    assert plan.spec_dict["benchmark"]["runner"] == "wrk"
    assert plan.spec_dict["benchmark"]["args"][-1].startswith("http://127.0.0.1")


def test_profile_shapes_ranges(here):
    def min_free(memory_mb):
        plan = OfflineStrategist().plan("redis keeps swapping", profile_with(here, memory_mb=memory_mb))
        return next(k for k in plan.spec_dict["action_space"] if k["param"] == "vm.min_free_kbytes")

    assert min_free(4096)["max"] == 4096 * 1024 * 2 // 100  # capped at 2 % of memory, in KiB
    assert min_free(1024) == {**min_free(1024), "min": 16384, "max": 32768}  # tiny machine: keep room to search
    assert min_free(65536)["max"] == lookup("vm.min_free_kbytes").max  # never above the safe maximum

    no_bbr = profile_with(here, congestion_controls=["cubic", "reno"])
    plan = OfflineStrategist().plan("push 10GbE bandwidth for bulk transfers", no_bbr)
    assert "net.ipv4.tcp_congestion_control" not in [k["param"] for k in plan.spec_dict["action_space"]]
    assert "skipped net.ipv4.tcp_congestion_control: this kernel offers only cubic, reno (no bbr)" in "\n".join(plan.reasoning)

    # kernel.numa_balancing is skipped on one node; on two it is considered (and
    # then kept or dropped by whether it can move the chosen benchmark, fio_seqread)
    numa_skip = "skipped kernel.numa_balancing: only helps NUMA machines"
    one_node = profile_with(here, numa_nodes=1)
    plan = OfflineStrategist().plan("data warehouse queries scanning huge tables", one_node)
    assert "kernel.numa_balancing" not in [k["param"] for k in plan.spec_dict["action_space"]]
    assert numa_skip in "\n".join(plan.reasoning)
    two_nodes = profile_with(here, numa_nodes=2)
    plan = OfflineStrategist().plan("data warehouse queries scanning huge tables", two_nodes)
    assert numa_skip not in "\n".join(plan.reasoning)
    assert "kernel.numa_balancing: it cannot move fio_seqread" in "\n".join(plan.reasoning)


def test_ready_spec_targets_load_examples_or_say_they_are_missing(tmp_path, here, monkeypatch):
    monkeypatch.setattr(offline_mod, "examples_dirs", lambda extra=None: [tmp_path])
    with pytest.raises(StrategistError) as info:
        OfflineStrategist().plan("tune my mosquitto MQTT broker", here)
    assert "examples/mosquitto.json, which is missing" in str(info.value)
    assert str(tmp_path / "mosquitto.json") in str(info.value)

    ready = {
        "workload_name": "Mosquitto broker",
        "target": "mosquitto",
        "action_space": [{"param": "max_inflight_messages", "type": "int", "min": 10, "max": 1000}],
        "mosquitto": {},
    }
    (tmp_path / "mosquitto.json").write_text(json.dumps(ready))
    plan = make_plan("tune my mosquitto MQTT broker", provider="offline", profile=here)
    assert plan.template == "mosquitto" and plan.spec.target == "mosquitto"
    assert plan.spec_dict == ready
    assert any("loaded the ready spec" in line for line in plan.reasoning)


@pytest.mark.parametrize("name,goal", [
    ("mosquitto", "tune my mosquitto MQTT broker"),
    ("autoscaling", "serverless functions suffer cold starts"),
    ("scheduler", "route requests across replicas to cut queueing"),
])
def test_shipped_ready_specs_when_present(name, goal, here):
    path = offline_mod.examples_dirs()[-1] / f"{name}.json"
    assert path.exists(), path
    plan = make_plan(goal, provider="offline", profile=here)
    assert plan.spec.target == name


def test_make_plan_auto_without_llm_is_offline_with_reason(here):
    plan = make_plan("lots of TIME_WAIT sockets", profile=here)
    assert plan.provider == "offline" and plan.template == "short_connections"
    assert "no LLM endpoint configured" in plan.fallback_reason
    assert plan.usage == {}
    explicit = make_plan("lots of TIME_WAIT sockets", provider="offline", profile=here)
    assert explicit.fallback_reason is None
    assert explicit.spec_dict == plan.spec_dict


def test_make_plan_rejects_unknown_provider_and_empty_goal(here):
    with pytest.raises(BadInputError):
        make_plan("x", provider="magic", profile=here)
    with pytest.raises(StrategistError):
        make_plan("   ", provider="offline", profile=here)


def test_plan_result_serializes(here):
    from cli_ai.strategist import Strategist

    assert isinstance(OfflineStrategist(), Strategist)
    plan = make_plan("redis keeps swapping", provider="offline", profile=here)
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["provider"] == "offline" and data["template"] == "memory_cache"
    assert data["spec"] == plan.spec_dict
    assert plan.spec.workload_name == plan.spec_dict["workload_name"]


FIXTURES = {
    ("pgbench", "transactions_per_second"): "pgbench.txt",
    ("wrk", "requests_per_second"): "wrk.txt",
    ("sysbench", "operations_per_second"): "sysbench_cpu.txt",
    ("redis-benchmark", "requests_per_second"): "redis_benchmark_quiet.txt",
    ("fio", "write_iops"): "fio_write_with_note.json",
    ("fio", "write_bw_kib_s"): "fio_write_with_note.json",
    ("fio", "read_bw_kib_s"): "fio_randread.json",
}


def test_planned_metrics_are_found_by_the_benchmark_parsers():
    """Every reward metric a template plans is extracted from a real output of its tool."""
    from pathlib import Path

    from cli_ai.tactician.benchmarks import extract_metric

    fixtures = Path(__file__).parent / "fixtures" / "benchmarks"
    used = {(b["runner"], b["metric"]) for b in load_templates()[1].values() if b["runner"] not in ("tcp-accept", "probe")}
    assert used <= set(FIXTURES), used - set(FIXTURES)
    for (runner, metric), name in FIXTURES.items():
        path = fixtures / name
        assert path.exists(), f"fixture {name} missing"
        value, _ = extract_metric(path.read_text(), runner, metric)
        assert value > 0, (runner, metric)


def test_planned_probe_metrics_are_found_in_real_probe_output():
    """The capacity probes run as `cli-ai bench probe` (parser family "command",
    as targets/evaluation.py runs them); a small real run of each yields its metric."""
    from cli_ai.tactician.benchmarks.metrics import extract_metric
    from tests.conftest import run_cli

    probes = {b["args"][1]: b["metric"] for b in load_templates()[1].values() if b["runner"] == "probe"}
    assert {"files", "maps", "pids", "inotify-watches"} <= set(probes)
    for resource in ("files", "maps", "pids"):
        r = run_cli("bench", "probe", "--resource", resource, "--count", 50, timeout=60)
        assert r.returncode == 0, r.stderr
        value, _ = extract_metric(r.stdout, "command", probes[resource])
        assert value == 50, (resource, r.stdout)


def test_render_plan_prints_reasoning_spec_and_fallback(capsys, here):
    from cli_ai.console import Console
    from cli_ai.console.plan import render_plan

    plan = make_plan("lots of TIME_WAIT sockets", profile=here)
    render_plan(Console(), plan)
    out, err = capsys.readouterr()
    assert "why this plan" in out and "matched 'time', 'wait', 'sockets'" in out
    assert '"workload_name": "Short-lived connections and port exhaustion"' in out
    assert "offline planner, template short_connections" in out
    assert "no LLM endpoint configured" in err

    render_plan(Console(json_mode=True), plan)
    out, _ = capsys.readouterr()
    data = json.loads(out)
    assert data["spec"] == plan.spec_dict and data["template"] == "short_connections"
