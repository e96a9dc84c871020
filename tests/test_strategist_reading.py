"""How the offline planner reads a goal beyond its exact words (issue 16):
typos and run-together words, the evidence that a request is not for cli-ai
(another OS named, a verb of other work, a setting cli-ai does not know), and
a product's target only when the goal names the product."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from cli_ai.errors import GoalDeclined
from cli_ai.strategist import make_plan
from cli_ai.strategist.declines import foreign_keys, known_names
from cli_ai.strategist.retrieval import default_indexes

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("bench_strategist_reading", ROOT / "bench" / "strategist.py")
_bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_strategist_reading"] = _bench
_spec.loader.exec_module(_bench)
FIXED = _bench.FIXED_PROFILE


def plan(goal):
    return make_plan(goal, provider="offline", dry_run=True, profile=FIXED)


def params(result) -> set[str]:
    return set(result.spec.params)


# ----------------------------------------------------------------- typos


@pytest.mark.parametrize("typed, meant", [("ephemral", "ephemeral"), ("inotfy", "inotify"), ("conections", "connections")])
def test_a_misspelt_word_is_read_as_the_catalogue_word(typed, meant):
    assert default_indexes()[0].read_as(typed) == meant


@pytest.mark.parametrize("word", ["billing", "folder", "model", "least", "counter"])
def test_an_english_word_is_never_taken_for_a_typo(word):
    # each is within the typo distance of a catalogue word (killing, older, mode, last, counted)
    assert default_indexes()[0].read_as(word) is None


def test_a_word_the_other_index_knows_is_not_split():
    # "maxmemory" is Redis's setting in the decline data: not "max memory" for the kernel entries
    assert default_indexes()[0].read_as("maxmemory") is None


def test_misspelt_goals_plan_the_right_params_and_say_how_they_were_read():
    result = plan("we keep running out of ephemral ports on the api gateway")
    assert "net.ipv4.ip_local_port_range" in params(result)
    assert "'ephemral' (read as 'ephemeral')" in "\n".join(result.reasoning)
    assert "fs.inotify.max_user_watches" in params(plan("inotfy watches run out on the build box"))


def test_words_run_together_are_read_apart():
    index = default_indexes()[0]
    assert index.read_as("portrange") == "port range"
    assert index.read_as("openfiles") == "open files"


# ----------------------------------------------------------------- declines


@pytest.mark.parametrize("goal, says", [
    ("Windows Server 2022: netsh int tcp set global autotuninglevel for SMB throughput", "windows server"),
    ("FreeBSD box: raise kern.ipc.somaxconn", "freebsd"),
    ("explain the difference between TCP and UDP for my interview", "opens with 'explain'"),
    ("upgrade our k8s cluster from 1.28 to 1.30", "opens with 'upgrade'"),
    ("clickhouse max_memory_usage per query is too low, raise it", "'max_memory_usage'"),
    # a how-to question about looking, although its words are fs.file-max's own symptom
    ("how do I list the open files of a process", "opens with 'how do i list'"),
    # administration with kernel words in it
    ("add an iptables rule so port 23 is blocked from outside but allowed from 10.0.0.0/8", "opens with 'add an'"),
    ("grow the xfs filesystem on /var to 500G after i extended the lvm volume", "opens with 'grow'"),
])
def test_requests_for_something_else_are_declined_with_the_reason(goal, says):
    with pytest.raises(GoalDeclined) as info:
        plan(goal)
    assert says in "\n".join(info.value.problems)


@pytest.mark.parametrize("goal, wanted", [
    # a Linux machine named with the other OS: the Linux one is tuned
    ("windows clients time out against our ubuntu file server, the receive windows are too small",
     {"net.ipv4.tcp_rmem", "net.core.rmem_max", "net.ipv4.tcp_window_scaling"}),
    # the key is a sysctl's own last part
    ("redis log: WARNING overcommit_memory is set to 0! Background save may fail", {"vm.overcommit_memory"}),
    # upper-case constants and kernel function names in pasted output are no settings of another program
    ("dmesg: TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies. raise the limits",
     {"net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies"}),
])
def test_tuning_goals_with_those_words_still_plan(goal, wanted):
    result = plan(goal)
    assert result.spec.target == "sysctl"
    assert params(result) & wanted, (params(result), result.reasoning)


def test_foreign_keys_are_lower_case_setting_names_cli_ai_does_not_know():
    known = known_names(["vm.max_map_count", "net.ipv4.tcp_tw_reuse", "max_inflight_messages"])
    text = ("raise max_map_count, tcp_tw_reuse, max_inflight_messages, vm.swappiness, io_setup() "
            "and num.partitions in server.properties; log.retention.hours too")
    assert foreign_keys(text, known) == ["num.partitions", "log.retention.hours"]


# ----------------------------------------------------------------- a product's target


def test_a_product_target_needs_its_product_named():
    result = plan("our websocket server cannot get past 65k concurrent clients")
    assert result.spec.target == "sysctl"
    assert plan("queries spill to disk").spec.target == "postgres"  # its own vocabulary names it
    assert plan("clickhouse swapping during big merges").spec.target == "sysctl"
