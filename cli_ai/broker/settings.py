"""The mosquitto target's settings: the spec's free-form `mosquitto` block, typed.

Pure data (standard library only), so the safety checks and the dry-run path
can read it without starting a broker or importing paho-mqtt.

    "mosquitto": {
      "window_s": 3, "warmup_s": 0.5, "latency_percentile": "p95",
      "workload": {"publishers": 2, "rate_msg_s": 50, "payload_bytes": 256, "qos": 1, "topics": 4,
                   "subscribers": [{"topic": "cli-ai/load/#", "qos": 1}]},
      "probe": {"interval_s": 0.05, "qos": 0},
      "attach": {"config_file": "/etc/mosquitto/mosquitto.conf",
                 "reload_command": ["systemctl", "reload", "mosquitto"], "port": 1883},
      "replay": {"buffer_size": 100000, "alpha": 0.6, "beta": 0.4, "beta_increment": 0.001}
    }
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping

#: What one broker measurement reports; any of them can be the spec's reward_metric.
BROKER_METRICS = {
    "throughput_msg_s": "maximize",
    "latency_p50_ms": "minimize",
    "latency_p95_ms": "minimize",
    "sys_received_rate": "maximize",
    "sys_sent_rate": "maximize",
    "subscriber_rate": "maximize",
}
DEFAULT_METRIC = "throughput_msg_s"


@dataclass(frozen=True)
class SubscriberConfig:
    """`count` clients subscribed to `topic` (exact, or with + / # wildcards)."""

    topic: str
    qos: int = 0
    count: int = 1


DEFAULT_SUBSCRIBERS = (SubscriberConfig("cli-ai/load/#", 1), SubscriberConfig("cli-ai/load/0", 0))


@dataclass(frozen=True)
class WorkloadConfig:
    """Background load: `publishers` clients, each publishing `rate_msg_s`
    messages per second of `payload_bytes` at `qos`, round-robin over `topics`
    topics `<topic_prefix>/<i>`; subscribers count what they receive."""

    enabled: bool = True
    publishers: int = 2
    rate_msg_s: float = 50.0
    payload_bytes: int = 256
    qos: int = 1
    topics: int = 4
    topic_prefix: str = "cli-ai/load"
    subscribers: tuple[SubscriberConfig, ...] = DEFAULT_SUBSCRIBERS

    @property
    def clients(self) -> int:
        return self.publishers + sum(s.count for s in self.subscribers) if self.enabled else 0

    def topic(self, i: int) -> str:
        return f"{self.topic_prefix}/{i % max(1, self.topics)}"


@dataclass(frozen=True)
class ProbeConfig:
    """The latency probe: one client publishing timestamped messages on its own
    topic every `interval_s` and timing their way back."""

    interval_s: float = 0.05
    qos: int = 0
    timeout_s: float = 2.0
    topic: str = "cli-ai/probe"
    min_samples: int = 3


@dataclass(frozen=True)
class AttachConfig:
    """An existing broker: its config file (edited, journaled, restored) and
    the commands that make it re-read the file (argv lists, run without a shell)."""

    config_file: str
    reload_command: tuple[str, ...]
    restart_command: tuple[str, ...] | None = None
    host: str = "127.0.0.1"
    port: int = 1883


@dataclass(frozen=True)
class ReplayConfig:
    """Seed 000's PER settings (`--replay-*`), with its defaults."""

    buffer_size: int = 100_000
    alpha: float = 0.6
    beta: float = 0.4
    beta_increment: float | None = 0.001


@dataclass(frozen=True)
class BrokerSettings:
    binary: str | None = None
    port: int = 0
    window_s: float = 3.0
    warmup_s: float = 0.5
    settle_timeout_s: float = 10.0
    start_timeout_s: float = 10.0
    sys_interval: int = 1
    latency_percentile: str = "p95"
    disagreement_warn: float = 0.25
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    attach: AttachConfig | None = None
    replay: ReplayConfig = field(default_factory=ReplayConfig)

    @classmethod
    def from_spec(cls, spec: Any) -> "BrokerSettings":
        return cls.from_dict(getattr(spec, "target_config", None) or {})

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "BrokerSettings":
        raw = dict(raw or {})
        wl = dict(raw.get("workload") or {})
        subs = wl.pop("subscribers", None)
        workload = WorkloadConfig(
            **{k: v for k, v in wl.items() if k in WorkloadConfig.__dataclass_fields__},
            subscribers=DEFAULT_SUBSCRIBERS if subs is None else tuple(
                SubscriberConfig(str(s["topic"]), int(s.get("qos", 0)), int(s.get("count", 1))) for s in subs
            ),
        )
        probe = ProbeConfig(**{k: v for k, v in dict(raw.get("probe") or {}).items()
                               if k in ProbeConfig.__dataclass_fields__})
        attach = None
        if raw.get("attach"):
            a = dict(raw["attach"])
            attach = AttachConfig(
                config_file=str(a["config_file"]),
                reload_command=command_argv(a["reload_command"]),
                restart_command=command_argv(a["restart_command"]) if a.get("restart_command") else None,
                host=str(a.get("host", "127.0.0.1")),
                port=int(a.get("port", 1883)),
            )
        replay = ReplayConfig(**{k: v for k, v in dict(raw.get("replay") or {}).items()
                                 if k in ReplayConfig.__dataclass_fields__})
        top = {k: raw[k] for k in ("binary", "port", "window_s", "warmup_s", "settle_timeout_s", "start_timeout_s",
                                   "sys_interval", "latency_percentile", "disagreement_warn") if k in raw}
        return cls(**top, workload=workload, probe=probe, attach=attach, replay=replay)


def command_argv(command: Any) -> tuple[str, ...]:
    """A command given as an argv list, or as one string split like a shell
    would split it (no shell runs it; the safety check refuses shell syntax)."""
    if isinstance(command, str):
        return tuple(shlex.split(command))
    return tuple(str(c) for c in command)


def topic_problem(topic: str) -> str | None:
    """Why `topic` is not a valid MQTT subscription filter, or None."""
    if not topic:
        return "is empty"
    if "\x00" in topic:
        return "contains a NUL character"
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return "uses '#' other than as the whole last level"
        if "+" in level and level != "+":
            return "uses '+' other than as a whole level"
    return None


__all__ = [
    "AttachConfig", "BROKER_METRICS", "BrokerSettings", "DEFAULT_METRIC", "ProbeConfig", "ReplayConfig",
    "SubscriberConfig", "WorkloadConfig", "command_argv", "topic_problem",
]
