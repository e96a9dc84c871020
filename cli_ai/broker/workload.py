"""WorkloadManager: MQTT load, a latency probe and throughput from $SYS.

Everything runs in the background on paho-mqtt clients (one network thread
each, plus one pacing thread for the publishers and one for the probe):

* **publishers** publish `payload_bytes` messages at `qos`, each at
  `rate_msg_s`, round-robin over `topics` topics `<topic_prefix>/<i>`;
* **subscribers** subscribe to exact topics or `+` / `#` filters and count
  what they receive;
* the **latency probe** publishes a timestamped message on its own topic every
  `interval_s`, subscribed to it itself, and keeps the round-trip times:
  rolling p50/p95 (`latency()`), and per measurement window;
* the **$SYS monitor** follows the broker's counters
  `$SYS/broker/publish/messages/{received,sent,dropped}` (and the `load/.../1min`
  averages, recorded for information).

`measure(window_s)` waits one window and returns a `BrokerMeasurement`:

* `sys_received_rate` / `sys_sent_rate`: PUBLISH messages the broker received /
  sent per second, from the counters' change between their first and last
  update inside the window. Updates come every `sys_interval + 1` seconds
  (mosquitto 2.0 waits until more than `sys_interval` whole seconds passed),
  so the window is stretched, by at most two such periods, until two updates
  fall in it; a counter that goes back means the broker restarted, and only
  the updates after it count;
* `throughput_msg_s`: `sys_sent_rate` minus what the broker sent to the
  measurement's own clients (the $SYS messages to the monitor and the probe's
  echoes), i.e. the workload's deliveries as the broker counts them; when the
  counters did not update at least twice in the window it falls back to
  `subscriber_rate` (with a warning);
* `subscriber_rate`: what the workload's subscribers counted themselves per
  second. Both are kept; when they disagree by more than `disagreement_warn`
  (a fraction) the measurement carries a warning;
* `latency_p50_ms` / `latency_p95_ms`: the probe's round trips in the window.
  A probe that lost its connection, or has fewer than `min_samples` round
  trips in the window, never stops anything: the last known values are
  reported and a warning says so.

Warnings go into the measurement and to the `on_warning` callback; nothing here prints.
"""

from __future__ import annotations

import collections
import math
import os
import struct
import threading
import time
import uuid
from typing import Any, Callable, Deque, Sequence

from cli_ai.broker.measurement import (  # noqa: F401  (part of this module's public names)
    SYS_COUNTERS,
    SYS_LOADS,
    BrokerMeasurement,
    counter_rate,
    percentiles,
)
from cli_ai.broker.settings import ProbeConfig, WorkloadConfig

_PROBE = struct.Struct("!Qd")  # sequence number, perf_counter() at publish


class _Client:
    """One paho-mqtt client with its own network thread, reconnecting by itself."""

    def __init__(self, manager: "WorkloadManager", role: str, subscriptions: Sequence[tuple[str, int]] = (),
                 on_message: Callable[[Any], None] | None = None):
        import paho.mqtt.client as mqtt

        self.manager = manager
        self.role = role
        self.client_id = f"cli-ai-{role}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.subscriptions = list(subscriptions)
        self._on_message = on_message
        self.connected = False
        self.subscribed = not self.subscriptions
        self.connects = 0
        self.disconnects = 0
        self.received = 0
        self.published = 0
        self.skipped = 0
        self._sub_mids: set[int] = set()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  protocol=mqtt.MQTTv311, clean_session=True)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=2)  # type: ignore[arg-type] - floats work
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_subscribe = self._suback
        self.client.on_message = self._message

    def start(self, host: str, port: int, keepalive: int = 30) -> None:
        self.client.connect_async(host, port, keepalive=keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        try:
            self.client.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.client.loop_stop()

    @property
    def ready(self) -> bool:
        return self.connected and self.subscribed

    # paho callbacks (network thread)
    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        if getattr(reason_code, "is_failure", False):
            self.manager._note(self.role, f"connection refused ({reason_code})")
            return
        self.connected = True
        self.connects += 1
        if self.subscriptions:
            self.subscribed = False
            rc, mid = client.subscribe([(t, q) for t, q in self.subscriptions])
            if mid is not None:
                self._sub_mids.add(mid)

    def _suback(self, client, userdata, mid, reason_code_list, properties) -> None:
        if mid in self._sub_mids:
            self._sub_mids.discard(mid)
            failed = [rc for rc in reason_code_list if getattr(rc, "is_failure", False)]
            if failed:
                self.manager._note(self.role, f"subscription refused ({failed[0]})")
            self.subscribed = True

    def _disconnected(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.connected
        self.connected = False
        self.subscribed = not self.subscriptions
        if was:
            self.disconnects += 1
            self.manager._note(self.role, f"lost its connection ({reason_code})")

    def _message(self, client, userdata, message) -> None:
        self.received += 1
        if self._on_message is not None:
            self._on_message(message)


class WorkloadManager:
    """Background load, latency probe and $SYS monitor against one broker."""

    def __init__(
        self,
        host: str,
        port: int,
        workload: WorkloadConfig | None = None,
        probe: ProbeConfig | None = None,
        *,
        enable_workload: bool = True,
        on_warning: Callable[[str], None] | None = None,
        disagreement_warn: float = 0.25,
        sys_interval_s: float = 1.0,
        rolling_s: float = 10.0,
    ):
        self.host = host
        self.port = int(port)
        self.workload = workload or WorkloadConfig()
        self.probe_config = probe or ProbeConfig()
        self.enable_workload = bool(enable_workload and self.workload.enabled)
        self.on_warning = on_warning
        self.disagreement_warn = float(disagreement_warn)
        self.sys_interval_s = float(sys_interval_s)
        self.rolling_s = float(rolling_s)
        self.publishers: list[_Client] = []
        self.subscribers: list[_Client] = []
        self.probe: _Client | None = None
        self.monitor: _Client | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._series: dict[str, Deque[tuple[float, float]]] = {k: collections.deque(maxlen=2000) for k in SYS_COUNTERS}
        self._loads: dict[str, float] = {}
        self._rtts: Deque[tuple[float, float]] = collections.deque(maxlen=50_000)  # (received at, rtt ms)
        self._pending: dict[int, float] = {}
        self._probe_seq = 0
        self._probe_sent = 0
        self._probe_lost = 0
        self._notes: list[tuple[float, str, str]] = []  # (when, role, what)
        self.last_latency: tuple[float, float] | None = None
        self.last_throughput: float | None = None
        self._payload = self._make_payload()
        self.started = False

    # ------------------------------------------------------------------ lifecycle
    def _make_payload(self) -> bytes:
        n = max(1, int(self.workload.payload_bytes))
        return (b"cli-ai-load:" + bytes(range(48, 123)) * (n // 75 + 1))[:n]

    def start(self) -> "WorkloadManager":
        if self.started:
            return self
        self.started = True
        self._stop.clear()
        sys_topics = [(t, 0) for t in (*SYS_COUNTERS.values(), *SYS_LOADS.values())]
        self.monitor = _Client(self, "sys-monitor", sys_topics, self._on_sys)
        pc = self.probe_config
        self._probe_topic = f"{pc.topic}/{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.probe = _Client(self, "latency-probe", [(self._probe_topic, pc.qos)], self._on_probe)
        clients = [self.monitor, self.probe]
        if self.enable_workload:
            wl = self.workload
            self.publishers = [_Client(self, f"pub{i}") for i in range(wl.publishers)]
            self.subscribers = [
                _Client(self, f"sub{j}-{k}", [(s.topic, s.qos)])
                for j, s in enumerate(wl.subscribers) for k in range(s.count)
            ]
            clients += self.publishers + self.subscribers
        for c in clients:
            c.start(self.host, self.port)
        self._spawn(self._probe_loop, "cli-ai-latency-probe")
        if self.publishers:
            self._spawn(self._publish_loop, "cli-ai-publishers")
        return self

    def _spawn(self, target, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    @property
    def clients(self) -> list[_Client]:
        return [c for c in (self.monitor, self.probe) if c is not None] + self.publishers + self.subscribers

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Whether every client is connected and subscribed within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.ready for c in self.clients):
                return True
            time.sleep(0.02)
        return all(c.ready for c in self.clients)

    def stop(self) -> None:
        """Stop every thread and disconnect every client (idempotent)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        for c in self.clients:
            c.stop()
        self.started = False

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> "WorkloadManager":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_sys_interval(self, seconds: float) -> None:
        """The broker's current sys_interval (when it is a knob)."""
        self.sys_interval_s = float(seconds)

    @property
    def sys_period(self) -> float:
        """Seconds between two $SYS updates: sys_interval + 1 in mosquitto 2.0."""
        return max(self.sys_interval_s, 0.0) + 1.0

    def _sys_alive(self, within: float) -> bool:
        series = self._series["sent"]
        return bool(series) and time.monotonic() - series[-1][0] <= within

    # ------------------------------------------------------------------ background loops
    def _publish_loop(self) -> None:
        wl = self.workload
        n = len(self.publishers)
        period = 1.0 / float(wl.rate_msg_s)
        now = time.monotonic()
        due = [now + period * i / n for i in range(n)]
        counts = [0] * n
        while not self._stop.is_set():
            i = min(range(n), key=due.__getitem__)
            delay = due[i] - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            pub = self.publishers[i]
            if pub.connected:
                topic = wl.topic(i + counts[i])
                info = pub.client.publish(topic, self._payload, qos=wl.qos)
                if info.rc == 0:
                    pub.published += 1
                else:
                    pub.skipped += 1
                counts[i] += 1
            else:
                pub.skipped += 1
            due[i] += period
            now = time.monotonic()
            if now - due[i] > 1.0:  # stalled (reconnecting): resume the pace, no burst
                due[i] = now + period

    def _probe_loop(self) -> None:
        pc = self.probe_config
        while not self._stop.wait(pc.interval_s):
            probe = self.probe
            if probe is None or not probe.ready:
                continue
            with self._lock:
                self._probe_seq += 1
                seq = self._probe_seq
                sent = time.perf_counter()
                self._pending[seq] = sent
                cutoff = sent - pc.timeout_s
                stale = [s for s, t in self._pending.items() if t < cutoff]
                for s in stale:
                    del self._pending[s]
                self._probe_lost += len(stale)
            info = probe.client.publish(self._probe_topic, _PROBE.pack(seq, sent), qos=pc.qos)
            if info.rc == 0:
                self._probe_sent += 1
            else:
                with self._lock:
                    self._pending.pop(seq, None)

    # paho callbacks (network threads)
    def _on_probe(self, message) -> None:
        now = time.perf_counter()
        try:
            seq, sent = _PROBE.unpack(message.payload)
        except struct.error:
            return
        with self._lock:
            if self._pending.pop(seq, None) is None:
                return  # late (already counted lost) or a stranger's
            self._rtts.append((time.monotonic(), (now - sent) * 1000.0))

    def _on_sys(self, message) -> None:
        if message.retain:
            return  # a value of some time ago: no timestamp to rate it by
        try:
            value = float(message.payload.decode().split()[0])
        except (ValueError, IndexError, UnicodeDecodeError):
            return
        now = time.monotonic()
        for key, topic in SYS_COUNTERS.items():
            if message.topic == topic:
                self._series[key].append((now, value))
                return
        for key, topic in SYS_LOADS.items():
            if message.topic == topic:
                self._loads[key] = value

    def _note(self, role: str, what: str) -> None:
        with self._lock:
            self._notes.append((time.monotonic(), role, what))
            del self._notes[:-200]

    # ------------------------------------------------------------------ measurement
    def latency(self, since: float | None = None) -> tuple[float, float, int] | None:
        """(p50 ms, p95 ms, samples) of the probe's round trips received since
        `since` (monotonic), by default over the last `rolling_s` seconds."""
        since = time.monotonic() - self.rolling_s if since is None else since
        with self._lock:
            rtts = [r for t, r in self._rtts if t >= since]
        if not rtts:
            return None
        p50, p95 = percentiles(rtts)
        return p50, p95, len(rtts)

    def _counts(self) -> dict[str, float]:
        return {
            "sub": float(sum(c.received for c in self.subscribers)),
            "pub": float(sum(c.published for c in self.publishers)),
            "monitor": float(self.monitor.received if self.monitor else 0),
            "probe": float(self.probe.received if self.probe else 0),
            "lost": float(self._probe_lost),
        }

    def measure(self, window_s: float) -> BrokerMeasurement:
        """Wait one window and report what happened in it. Never raises for a
        failing probe or a silent $SYS: it falls back and warns."""
        if not self.started:
            self.start()
        t0 = time.monotonic()
        c0 = self._counts()
        self._stop.wait(window_s)
        # $SYS updates come every sys_interval + 1 s (mosquitto 2.0 waits until
        # more than sys_interval whole seconds have passed): wait, if need be,
        # for the update that closes the span, as long as $SYS is alive.
        period = self.sys_period
        min_span = min(0.5 * window_s, period)
        extra_until = time.monotonic() + 2 * period + 0.3
        while (
            not self._stop.is_set()
            and counter_rate(list(self._series["sent"]), t0, time.monotonic(), min_span=min_span) is None
            and self.monitor is not None and self.monitor.connected
            and self._sys_alive(3 * period)
            and time.monotonic() < extra_until
        ):
            self._stop.wait(0.05)
        t1 = time.monotonic()
        c1 = self._counts()
        span = max(t1 - t0, 1e-9)
        rate = {k: (c1[k] - c0[k]) / span for k in c0}
        warnings: list[str] = []

        with self._lock:
            notes = [(role, what) for t, role, what in self._notes if t0 - 0.5 <= t <= t1]
        for role, what in notes:
            label = {"latency-probe": "latency probe", "sys-monitor": "$SYS monitor"}.get(role, f"workload client {role}")
            warnings.append(f"{label} {what}")

        # Throughput from the broker's own counters.
        sys_rates = {k: counter_rate(list(self._series[k]), t0, t1, min_span=min_span) for k in SYS_COUNTERS}
        if sys_rates["sent"] is not None and sys_rates["dropped"] is None:
            sys_rates["dropped"] = 0.0  # mosquitto publishes a $SYS value only when it changes
        overhead = rate["monitor"] + rate["probe"]
        subscriber_rate = rate["sub"] if self.enable_workload and self.subscribers else None
        if sys_rates["sent"] is not None:
            throughput = max(0.0, sys_rates["sent"] - overhead)
            source = "sys"
        elif subscriber_rate is not None:
            throughput = subscriber_rate
            source = "subscribers"
            warnings.append(
                f"$SYS counters did not update twice in the {span:.1f} s window (sys_interval "
                f"{self.sys_interval_s:g} s, or the monitor lost the broker); throughput from the subscribers' counts"
            )
        else:
            throughput = float("nan")
            source = "none"
            warnings.append(f"no throughput in the {window_s:g} s window: $SYS counters silent and no workload subscribers")
        if source == "sys" and subscriber_rate is not None:
            top = max(throughput, subscriber_rate, 1.0)
            if abs(throughput - subscriber_rate) / top > self.disagreement_warn:
                warnings.append(
                    f"$SYS throughput {throughput:.1f} msg/s and the subscribers' {subscriber_rate:.1f} msg/s disagree "
                    f"by more than {self.disagreement_warn:.0%}"
                )
        if math.isfinite(throughput):
            self.last_throughput = throughput

        # Latency from the probe, with the last known values as the fallback.
        stats = self.latency(since=t0)
        samples = stats[2] if stats else 0
        fallback = False
        if stats is not None and samples >= self.probe_config.min_samples:
            p50, p95 = stats[0], stats[1]
            self.last_latency = (p50, p95)
        else:
            fallback = True
            probe_state = "disconnected" if self.probe is not None and not self.probe.connected else "connected"
            if self.last_latency is not None:
                p50, p95 = self.last_latency
                warnings.append(
                    f"latency probe: {samples} round trip(s) in the {window_s:g} s window ({probe_state}); "
                    f"using the last known p50 {p50:.2f} ms / p95 {p95:.2f} ms"
                )
            else:
                p50 = p95 = None
                warnings.append(f"latency probe: {samples} round trip(s) in the {window_s:g} s window ({probe_state}) "
                                "and no earlier value; latency unknown")
        m = BrokerMeasurement(
            throughput_msg_s=throughput,
            latency_p50_ms=p50,
            latency_p95_ms=p95,
            sys_received_rate=sys_rates["received"],
            sys_sent_rate=sys_rates["sent"],
            subscriber_rate=subscriber_rate,
            warnings=tuple(warnings),
            window_s=span,
            publish_rate=rate["pub"] if self.publishers else None,
            sys_dropped_rate=sys_rates["dropped"],
            overhead_rate=overhead,
            probe_samples=samples,
            probe_lost=int(c1["lost"] - c0["lost"]),
            latency_fallback=fallback,
            throughput_source=source,
            extra={k: v for k, v in self._loads.items()},
        )
        if self.on_warning is not None:
            for w in warnings:
                try:
                    self.on_warning(w)
                except Exception:  # noqa: BLE001 - a listener never stops the measurement
                    pass
        return m


__all__ = ["BrokerMeasurement", "WorkloadManager", "counter_rate", "percentiles", "SYS_COUNTERS"]
