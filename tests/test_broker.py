"""The mosquitto target against real brokers started and stopped here.

Every broker a managed backend starts is recorded by PID
(`cli_ai.broker.backend.STARTED_PIDS`); the last test checks that none of them,
nor the brokers the attach tests start themselves, is still running.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cli_ai.errors import BackendWriteError, SafetyError
from cli_ai.events import EventLog
from cli_ai.spec import load_spec, spec_from_dict

from tests.conftest import EXAMPLES

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
needs_mosquitto = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (.ci/run installs it)")

OWN_BROKERS: list[int] = []  # brokers the attach tests start themselves


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _status(pid)


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return ""


def _receives(host: str, port: int, size: int, timeout: float = 2.0) -> bool:
    """Publish one `size`-byte message and report whether a subscriber gets it."""
    import paho.mqtt.client as mqtt

    got = threading.Event()
    subscribed = threading.Event()
    topic = f"test/size/{os.getpid()}/{time.monotonic_ns()}"
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_message = lambda c, u, m: got.set()
    sub.connect(host, port)
    sub.subscribe(topic, 0)
    sub.loop_start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    try:
        assert subscribed.wait(timeout)
        pub.connect(host, port)
        pub.loop_start()
        pub.publish(topic, b"x" * size, qos=1).wait_for_publish(timeout)
        return got.wait(timeout)
    finally:
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()


def _connections_accepted(host: str, port: int, n: int) -> int:
    """Open n MQTT connections at once; how many got an accepting CONNACK."""
    socks, accepted = [], 0
    try:
        for i in range(n):
            s = socket.create_connection((host, port), timeout=2)
            cid = f"t{i}-{os.getpid()}".encode()
            body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
            s.sendall(b"\x10" + bytes([len(body)]) + body)
            s.settimeout(1.0)
            try:
                reply = s.recv(4)
                accepted += int(len(reply) == 4 and reply[0] == 0x20 and reply[3] == 0)
            except OSError:
                pass
            socks.append(s)
    finally:
        for s in socks:
            s.close()
    return accepted


def _spec(**mosquitto) -> dict:
    block = {
        "window_s": 1.0,
        "warmup_s": 0.2,
        "workload": {"publishers": 1, "rate_msg_s": 40, "payload_bytes": 128, "qos": 1, "topics": 2,
                     "subscribers": [{"topic": "cli-ai/load/#", "qos": 1}, {"topic": "cli-ai/load/0"}]},
        "probe": {"interval_s": 0.05},
    }
    block.update(mosquitto)
    return {
        "workload_name": "broker test",
        "target": "mosquitto",
        "reward_metric": "throughput_msg_s",
        "action_space": [
            {"param": "max_inflight_messages", "type": "int", "min": 1, "max": 1000, "scale": "log"},
            {"param": "max_queued_messages", "type": "int", "min": 100, "max": 100000, "scale": "log"},
            {"param": "set_tcp_nodelay", "type": "bool"},
            {"param": "max_connections", "type": "int", "min": 64, "max": 4096, "scale": "log"},
        ],
        "state_space": [{"metric": "cpu_utilization"}],
        "reward": {"mode": "cdbtuner"},
        "training_config": {"algorithm": "per-ddpg", "preset": "cdbtuner", "budget": 4, "seed": 3},
        "mosquitto": block,
    }


# --------------------------------------------------------------------------- pure


def test_managed_config_rendering_puts_listener_options_after_the_listener(tmp_path):
    from cli_ai.broker.config import render_managed_config

    text = render_managed_config(
        {"max_inflight_messages": 50, "set_tcp_nodelay": True, "max_connections": 128, "persistence": False,
         "max_packet_size": 0, "max_keepalive": 600},
        host="127.0.0.1", port=18990, workdir=tmp_path, fixed={"sys_interval": 1, "max_inflight_messages": 5},
    )
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    listener = lines.index("listener 18990 127.0.0.1")
    assert "max_inflight_messages 50" in lines[:listener]  # the knob wins over the fixed setting
    assert "max_inflight_messages 5" not in lines
    assert {"set_tcp_nodelay true", "max_keepalive 600", "sys_interval 1"} <= set(lines[:listener])
    # mosquitto's defaults stay unset: it refuses "max_packet_size 0", its own default
    assert not [l for l in lines if l.startswith(("persistence ", "max_packet_size"))]
    assert lines[listener + 1:] == ["allow_anonymous true", "max_connections 128"]
    assert f"persistence_location {tmp_path}/" in lines


def test_attached_config_changes_only_tuned_lines_and_comes_back_byte_for_byte():
    from cli_ai.broker.config import parse_config, render_attached_config

    original = textwrap.dedent("""\
        # production broker
        per_listener_settings false
        max_inflight_messages 20
        listener 1883 0.0.0.0
        listener 8883
        allow_anonymous false
        include_dir /etc/mosquitto/conf.d""")  # no final newline on purpose
    names = ["max_inflight_messages", "max_queued_messages", "max_connections", "set_tcp_nodelay"]
    orig = parse_config(original, names)
    assert orig == {"max_inflight_messages": 20, "max_queued_messages": 1000, "max_connections": -1,
                    "set_tcp_nodelay": False}
    assert render_attached_config(original, orig, orig) == original
    changed = render_attached_config(original, {**orig, "max_inflight_messages": 7, "max_queued_messages": 500,
                                                "max_connections": 300, "set_tcp_nodelay": 1}, orig)
    lines = changed.splitlines()
    assert "max_inflight_messages 7" in lines and "max_inflight_messages 20" not in lines
    assert lines[lines.index("listener 1883 0.0.0.0") + 1] == "max_connections 300"
    assert lines[lines.index("listener 8883") + 1] == "max_connections 300"
    assert lines[-2:] in (["max_queued_messages 500", "set_tcp_nodelay true"],
                          ["set_tcp_nodelay true", "max_queued_messages 500"])
    assert lines.index("include_dir /etc/mosquitto/conf.d") < lines.index("max_queued_messages 500")
    assert parse_config(changed, names) == {"max_inflight_messages": 7, "max_queued_messages": 500,
                                            "max_connections": 300, "set_tcp_nodelay": True}
    assert render_attached_config(original, orig, orig) == original
    # a value that goes back to mosquitto's default unsets the line
    unset = render_attached_config("max_packet_size 1000\n", {"max_packet_size": 0})
    assert unset == "# cli-ai: max_packet_size unset (mosquitto's default)\n"


def test_example_spec_loads_and_passes_the_catalogue_check():
    from cli_ai.broker.target import BrokerOptions, broker_initial_values
    from cli_ai.pipeline import check_loaded_spec
    from cli_ai.safety.catalog import load_mosquitto_catalog

    spec = load_spec(EXAMPLES / "mosquitto.json")
    assert spec.target == "mosquitto" and spec.reward.mode == "cdbtuner"
    checked = check_loaded_spec(spec, dry_run=True)
    assert [k.param for k in checked.report.knobs] == spec.params
    assert set(checked.report.entries) == set(spec.params)
    cat = load_mosquitto_catalog()
    for name in ("max_inflight_messages", "max_queued_messages", "max_queued_bytes", "set_tcp_nodelay", "persistence",
                 "autosave_interval", "max_keepalive", "sys_interval", "max_connections", "message_size_limit"):
        assert name in cat and cat[name].entry.source.startswith("mosquitto.conf(5)")
    assert cat["max_connections"].reload == "restart" and cat["max_connections"].scope == "listener"
    assert cat["max_inflight_messages"].reload == "reload"
    initial = broker_initial_values(spec)
    assert initial["max_inflight_messages"] == 20 and initial["set_tcp_nodelay"] is False
    opts = BrokerOptions.from_spec(spec, replay_beta=0.5, total_timesteps=10)
    assert opts.replay_kwargs() == {"alpha": 0.6, "beta": 0.5, "beta_increment": 0.001}
    assert opts.agent_overrides() == {"buffer_size": 100000} and opts.budget(None) == 11


def test_catalogue_check_refuses_unknown_options_unsafe_ranges_and_a_workload_that_cannot_fit():
    from cli_ai.pipeline import check_loaded_spec

    data = _spec()
    data["action_space"] = [
        {"param": "max_inflight_message", "type": "int", "min": 1, "max": 10},
        {"param": "max_queued_messages", "type": "int", "min": 0, "max": 100},
        {"param": "message_size_limit", "type": "int", "min": 16384, "max": 65536},
        {"param": "max_keepalive", "type": "int", "min": 1, "max": 100},
    ]
    data["mosquitto"]["workload"]["payload_bytes"] = 20000
    with pytest.raises(SafetyError) as err:
        check_loaded_spec(spec_from_dict(data), dry_run=True)
    text = "\n".join(err.value.problems)
    assert "action_space[0].param: 'max_inflight_message' is not a mosquitto option" in text
    assert "did you mean 'max_inflight_messages'" in text
    assert "action_space[1].min: 0 is below the safe minimum 100 for max_queued_messages" in text
    assert "action_space[2].min: message_size_limit 16384 is below the workload's payload of 20000 bytes" in text
    assert "action_space[3].min: 1 is below the safe minimum 10 for max_keepalive" in text
    # --clamp narrows ranges that reach outside the safe one
    data["action_space"] = [
        {"param": "max_queued_messages", "type": "int", "min": 50, "max": 5000},
        {"param": "max_keepalive", "type": "int", "min": 1, "max": 100},
    ]
    checked = check_loaded_spec(spec_from_dict(data), clamp=True, dry_run=True)
    assert [(k.min, k.max) for k in checked.report.knobs] == [(100, 5000), (10, 100)]
    assert any("--clamp narrowed max_keepalive from 1..100 to 10..100" in n for n in checked.report.notes)
    data["mosquitto"]["attach"] = {"config_file": "/nonexistent/mosquitto.conf", "reload_command": "kill -HUP $(pidof mosquitto)"}
    data["action_space"] = [{"param": "max_connections", "type": "int", "min": 64, "max": 128}]
    with pytest.raises(SafetyError) as err:
        check_loaded_spec(spec_from_dict(data))
    text = "\n".join(err.value.problems)
    assert "mosquitto.attach.reload_command" in text and "shell syntax" in text
    assert "mosquitto.attach.restart_command: missing; max_connections" in text
    assert "mosquitto.attach.config_file: /nonexistent/mosquitto.conf does not exist" in text


def test_counter_rate_handles_a_restarted_broker():
    from cli_ai.broker.workload import counter_rate

    series = [(0.0, 100), (2.0, 300), (4.0, 20), (6.0, 220), (8.0, 420)]
    assert counter_rate(series, 0.0, 8.0, min_span=1.0) == pytest.approx(100.0)  # after the reset at 4.0
    assert counter_rate(series, 0.0, 3.0, min_span=1.0) == pytest.approx(100.0)
    assert counter_rate(series, 3.0, 5.0, min_span=1.0) is None  # one update: no span


# --------------------------------------------------------------------------- real brokers


@needs_mosquitto
def test_reload_keeps_the_process_restart_replaces_it_and_both_take_effect():
    from cli_ai.broker.backend import MosquittoBackend

    events = []
    with MosquittoBackend({"message_size_limit": 0, "max_connections": -1},
                          on_event=lambda k, d: events.append(k)) as b:
        pid = b.pid
        assert _receives(b.host, b.port, 2000)
        b.write({"message_size_limit": 1000})  # reloaded on SIGHUP
        assert b.pid == pid and "message_size_limit 1000" in b.conf_path.read_text()
        assert not _receives(b.host, b.port, 2000)  # the running broker took the new limit
        assert _receives(b.host, b.port, 500)
        assert _connections_accepted(b.host, b.port, 8) == 8
        b.write({"max_connections": 3})  # a listener option: only a restart applies it
        assert b.pid != pid and b.pid is not None and not _alive(pid)
        # mosquitto 2.0.11 miscounts clients that leave before CONNECT (fixed in
        # 2.0.12), so the cut is not exactly at 3; it is there.
        assert _connections_accepted(b.host, b.port, 8) < 8
        assert b.read(["message_size_limit", "max_connections"]) == {"message_size_limit": 1000, "max_connections": 3}
        assert events == ["broker_started", "broker_reloaded", "broker_restarted"]
        workdir, pids = b.workdir, list(b.pids)
    assert not workdir.exists() and b.pid is None
    assert not any(_alive(p) for p in pids)


@needs_mosquitto
def test_a_value_mosquitto_refuses_raises_and_the_broker_serves_on_the_last_good_config():
    from cli_ai.broker.backend import MosquittoBackend

    with MosquittoBackend({"max_packet_size": 0, "max_keepalive": 600, "max_inflight_messages": 20}) as b:
        b.write({"max_inflight_messages": 30})
        pid = b.pid
        # Reload path: mosquitto forbids packets limits under 20 bytes.
        with pytest.raises(BackendWriteError, match=r"max_packet_size=10.*the broker is back on the last good"):
            b.write({"max_packet_size": 10})
        assert b.pid == pid  # back by a second SIGHUP, no restart needed
        assert "max_packet_size" not in b.conf_path.read_text()  # mosquitto's default is to leave it unset
        assert b.read(["max_packet_size", "max_inflight_messages"]) == {"max_packet_size": 0, "max_inflight_messages": 30}
        assert _receives(b.host, b.port, 100)
        # Restart path: mosquitto will not start with a keepalive above 65535.
        with pytest.raises(BackendWriteError, match=r"Invalid max_keepalive value \(70000\)"):
            b.write({"max_keepalive": 70000, "max_inflight_messages": 40})
        assert b.pid is not None and b.pid != pid
        assert b.read(["max_keepalive", "max_inflight_messages"]) == {"max_keepalive": 600, "max_inflight_messages": 30}
        assert "max_keepalive 600" in b.conf_path.read_text()
        assert _receives(b.host, b.port, 100)
        b.write({"max_inflight_messages": 40})  # the run goes on
        assert b.read(["max_inflight_messages"]) == {"max_inflight_messages": 40}


@needs_mosquitto
def test_workload_measures_real_throughput_and_latency():
    from cli_ai.broker.backend import MosquittoBackend
    from cli_ai.broker.settings import SubscriberConfig, WorkloadConfig
    from cli_ai.broker.workload import WorkloadManager

    wl = WorkloadConfig(publishers=2, rate_msg_s=40, payload_bytes=200, qos=1, topics=4,
                        subscribers=(SubscriberConfig("cli-ai/load/#", 1), SubscriberConfig("cli-ai/load/+", 0),
                                     SubscriberConfig("cli-ai/load/1", 1)))
    warnings = []
    with MosquittoBackend({}, fixed={"sys_interval": 1}) as b, \
            WorkloadManager(b.host, b.port, wl, on_warning=warnings.append) as wm:
        assert wm.wait_ready(10)
        m = wm.measure(2.0)
    # 80 msg/s offered; the two filters get all of it, the exact topic a quarter.
    assert m.publish_rate > 0 and m.subscriber_rate > 0
    assert m.throughput_source == "sys" and m.throughput_msg_s > 0 and m.sys_received_rate > 0 and m.sys_sent_rate > 0
    assert m.sys_sent_rate > m.throughput_msg_s  # the probe's echoes and $SYS messages are taken out
    assert m.subscriber_rate > m.publish_rate  # fan-out: three subscriptions match
    assert m.latency_p50_ms is not None and 0 < m.latency_p50_ms <= m.latency_p95_ms
    assert m.probe_samples >= 3 and not m.latency_fallback
    metrics = m.metrics()
    assert {"throughput_msg_s", "latency_p50_ms", "latency_p95_ms", "sys_received_rate", "sys_sent_rate",
            "subscriber_rate"} <= set(metrics)
    assert list(m.warnings) == warnings


@needs_mosquitto
def test_cutting_the_latency_probe_never_stops_measuring():
    from cli_ai.broker.backend import MosquittoBackend
    from cli_ai.broker.settings import ProbeConfig, WorkloadConfig
    from cli_ai.broker.workload import WorkloadManager

    warned = []
    with MosquittoBackend({}, fixed={"sys_interval": 1}) as b, \
            WorkloadManager(b.host, b.port, WorkloadConfig(publishers=1, rate_msg_s=30), ProbeConfig(interval_s=0.05),
                            on_warning=warned.append) as wm:
        assert wm.wait_ready(10)
        first = wm.measure(1.0)
        assert not first.latency_fallback and first.latency_p95_ms is not None

        # Kill the probe's socket in the middle of a window.
        sock = wm.probe.client.socket()
        threading.Timer(0.3, lambda: sock.shutdown(socket.SHUT_RDWR)).start()
        cut = wm.measure(1.0)
        assert any("latency probe lost its connection" in w for w in cut.warnings)
        assert cut.latency_p95_ms is not None and np.isfinite(cut.latency_p95_ms)
        assert wm.probe.disconnects >= 1

        # The broker goes away under the probe: last known latency, a warning, no exception.
        known = wm.last_latency
        b.stop()
        down = wm.measure(1.0)
        assert down.latency_fallback and (down.latency_p50_ms, down.latency_p95_ms) == known
        assert any(w.startswith("latency probe: 0 round trip(s)") and "last known" in w for w in down.warnings)
        # At most a message already in flight when the broker stopped (the load is 30 msg/s).
        assert down.subscriber_rate < 2.0 and down.throughput_source == "subscribers"

        # It comes back (same port): measuring goes on with fresh values.
        b.start()
        assert wm.wait_ready(10)
        back = wm.measure(1.0)
        assert not back.latency_fallback and back.probe_samples >= 3 and back.subscriber_rate > 0
    assert [w for w in warned if "latency probe" in w]


def _start_own_broker(conf: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    OWN_BROKERS.append(proc.pid)
    from cli_ai.broker.process import tcp_accepting

    deadline = time.monotonic() + 10
    while not tcp_accepting("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def _stop_own_broker(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _own_config(tmp_path: Path) -> tuple[Path, int, str]:
    from cli_ai.broker.process import free_port

    port = free_port()
    # Started as root, mosquitto would drop to the mosquitto user and could not
    # re-read a file under pytest's private tmp directory on SIGHUP.
    user = "user root\n" if os.geteuid() == 0 else ""
    text = f"# a broker of its own\n{user}listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 20\n"
    conf = tmp_path / "broker" / "mosquitto.conf"
    conf.parent.mkdir()
    conf.write_text(text)
    return conf, port, text


@needs_mosquitto
def test_attach_mode_journals_the_config_file_and_restores_it(tmp_path):
    from cli_ai.broker.backend import MosquittoBackend
    from cli_ai.broker.settings import AttachConfig
    from cli_ai.safety.guard import Guard
    from cli_ai.safety.journal import Journal

    conf, port, text = _own_config(tmp_path)
    proc = _start_own_broker(conf, port)
    try:
        attach = AttachConfig(str(conf), ("kill", "-HUP", str(proc.pid)), port=port)
        backend = MosquittoBackend(attach=attach)
        assert backend.changes_machine and backend.describe()["config"]["backup"].endswith(".cli-ai-orig")
        backend.start()
        names = ["max_inflight_messages", "message_size_limit"]
        with Guard(backend, names) as guard:
            for path, backup in backend.journal_files():
                guard.record_file(path, backup)
            record = Journal().read()
            assert record.backend["kind"] == "mosquitto" and record.originals == {"max_inflight_messages": 20,
                                                                                  "message_size_limit": 0}
            assert record.files == [{"path": str(conf), "backup": str(conf) + ".cli-ai-orig"}]
            guard.apply({"message_size_limit": 1000, "max_inflight_messages": 5})
            edited = conf.read_text()
            assert "max_inflight_messages 5" in edited and "message_size_limit 1000" in edited
            assert not _receives("127.0.0.1", port, 2000)  # the attached broker reloaded
            # A value mosquitto refuses never reaches the file.
            with pytest.raises(BackendWriteError, match=r"Invalid max_keepalive value \(70000\)"):
                backend.write({"max_keepalive": 70000})  # checked on a throwaway broker first
            assert conf.read_text() == edited
        backend.close()
        assert conf.read_text() == text  # byte for byte
        assert not Path(str(conf) + ".cli-ai-orig").exists() and Journal().read() is None
        assert _receives("127.0.0.1", port, 2000)  # and the broker runs on it again
        assert proc.poll() is None
    finally:
        _stop_own_broker(proc)


CHILD = """
import sys, time
from cli_ai.broker.backend import MosquittoBackend
from cli_ai.broker.settings import AttachConfig
from cli_ai.safety.guard import Guard
conf, port, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
b = MosquittoBackend(attach=AttachConfig(conf, ("kill", "-HUP", pid), port=port)).start()
g = Guard(b, ["message_size_limit"], install_signal_handlers=False).__enter__()
for path, backup in b.journal_files():
    g.record_file(path, backup)
g.apply({"message_size_limit": 1000})
print("applied", flush=True)
time.sleep(60)
"""


@needs_mosquitto
def test_attach_mode_rollback_after_kill_9_restores_the_file_and_says_to_reload(tmp_path):
    """Rollback puts the original config file back; it runs no command from the
    journal (issue 13), so the person reloads the broker, as its note says."""
    from cli_ai.pipeline import rollback

    conf, port, text = _own_config(tmp_path)
    proc = _start_own_broker(conf, port)
    try:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(conf), str(port), str(proc.pid)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "applied"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert "message_size_limit 1000" in conf.read_text()
        assert not _receives("127.0.0.1", port, 2000)
        outcome = rollback()  # rebuilds the backend from the journal's description
        assert not outcome.failures and outcome.restored == {"message_size_limit": (1000, 0)}
        assert conf.read_text() == text
        assert not Path(str(conf) + ".cli-ai-orig").exists()
        assert any("reload" in n for n in outcome.notes)
        assert not _receives("127.0.0.1", port, 2000)  # no reload command ran
        proc.send_signal(signal.SIGHUP)  # the person reloads it
        assert _receives("127.0.0.1", port, 5000)  # and it runs on the original again
    finally:
        _stop_own_broker(proc)


@needs_mosquitto
def test_broker_env_under_the_guard_end_to_end(tmp_path):
    from cli_ai.broker.target import BROKER_CSV_COLUMNS, BrokerOptions, MosquittoTarget, broker_step_csv_row, \
        make_broker_env
    from cli_ai.pipeline import check_loaded_spec
    from cli_ai.safety.guard import FailureCounter, Guard
    from cli_ai.tactician.knobs import KnobSpace
    from cli_ai.tactician.loop import RecordingWrapper, Tracker, run_agent

    spec = spec_from_dict(_spec())
    checked = check_loaded_spec(spec)
    space = KnobSpace.from_specs(checked.report.knobs)
    log = EventLog()
    budget = 4
    tracker = Tracker(direction=spec.metric_direction, budget=budget)
    rows = []
    with MosquittoTarget(spec, seed=3, sink=log) as target:
        initial = target.initial_values()
        assert initial == {"max_inflight_messages": 20, "max_queued_messages": 1000, "set_tcp_nodelay": False,
                           "max_connections": -1}
        with Guard(target.backend, space.names, sink=log) as guard:
            assert not target.journal_files()  # a private broker: nothing on the machine to journal
            env = make_broker_env(spec, target, guard.apply, space=space, failures=FailureCounter(3), budget=budget)
            wrapped = RecordingWrapper(env, tracker)
            _, info = wrapped.reset(seed=3)  # the baseline: evaluation 1 of the budget
            rows.append(broker_step_csv_row(info))
            recording_step = wrapped.step

            def step(action):  # what the lead's trajectory writer does with each step
                out = recording_step(action)
                rows.append(broker_step_csv_row(out[4]))
                return out

            wrapped.step = step
            try:
                from cli_ai.tactician.agents.per import build_per_ddpg
            except ImportError:  # PER not there yet: random steps through the same env
                for a in np.random.default_rng(3).uniform(-1, 1, (budget - 1, space.dims)):
                    wrapped.step(a.astype(np.float32))
            else:
                opts = BrokerOptions.from_spec(spec, replay_buffer_size=1000)
                agent = build_per_ddpg(
                    wrapped, preset="cdbtuner", seed=3, replay_kwargs=opts.replay_kwargs(),
                    overrides={"learning_starts": 1, "batch_size": 2, **opts.agent_overrides()},
                )
                assert agent.replay_buffer.alpha == 0.6 and agent.replay_buffer.buffer_size == 1000
                run_agent(agent, tracker, budget - 1)
        # restored by the guard: the broker runs on its initial values again
        assert target.backend.read(space.names) == initial
        assert "max_connections" not in target.backend.conf_path.read_text()  # back to mosquitto's default
        pids = list(target.backend.pids)
    assert tracker.evaluations == budget and tracker.failed_steps == 0
    assert all(r.metric > 0 for r in tracker.records)
    assert len(rows) == budget
    for row in rows:
        assert list(row) == list(BROKER_CSV_COLUMNS)
        assert row["throughput"] > 0 and row["latency_p95"] >= row["latency_p50"] > 0
    assert rows[0]["default_tps"] == rows[0]["throughput"] and rows[0]["reward_final"] == 0.0
    assert all(r["default_tps"] == rows[0]["throughput"] for r in rows)
    assert all(isinstance(r["reward_final"], float) for r in rows[1:])
    assert len(rows[1]["action"].split()) == space.dims
    assert rows[-1]["best_tps"] == max(r["throughput"] for r in rows)
    # the same rows from the Tracker's records (what the run directory keeps)
    from_records = [broker_step_csv_row(r, space) for r in tracker.records]
    assert [{k: v for k, v in r.items() if k != "action"} for r in from_records] == \
        [{k: v for k, v in r.items() if k != "action"} for r in rows]
    assert all(len(r["action"].split()) == space.dims for r in from_records)
    assert "restored" in log.kinds() and "broker_started" in log.kinds()
    assert not any(_alive(p) for p in pids)


def test_no_broker_is_left_running():
    """Runs last in this file: every broker started above is gone (by PID)."""
    from cli_ai.broker.process import STARTED_PIDS

    left = [p for p in STARTED_PIDS + OWN_BROKERS if _alive(p)]
    assert not left, f"brokers still running: {left}"
    import tempfile

    ours = [d for d in Path(tempfile.gettempdir()).glob("cli-ai-mosquitto-*")
            if (d / "owner.pid").exists() and (d / "owner.pid").read_text().strip() == str(os.getpid())]
    assert not ours, f"broker directories left: {ours}"
