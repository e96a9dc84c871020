"""MosquittoTarget: the one object `cli-ai tune` uses for `target: "mosquitto"`.

    target = MosquittoTarget(spec, seed=seed, sink=sink)      # broker + workload running
    with Guard(target.backend, space.names, sink=sink) as guard:
        for path, backup in target.journal_files():           # attach mode: the config file
            guard.record_file(path, backup)
        env = make_broker_env(spec, target, guard.apply, space=space, failures=...)
        ...                                                    # agent.learn(...)
    target.close()                                            # always (try/finally)

`evaluate(values)` (the env has just applied `values` through the guard) waits
until the workload's clients are connected again (a restart drops them), lets
the broker settle for `warmup_s`, measures one `window_s` window and returns an
`Evaluation` with:

* `metric`: the spec's `reward_metric` (default `throughput_msg_s`);
* `throughput`: `throughput_msg_s`, the workload's deliveries per second as the
  broker's $SYS counters count them (see `workload.py`);
* `latency_ms`: the latency probe's round-trip **p95** in milliseconds
  (`mosquitto.latency_percentile: "p50"` picks the median instead);
* `metrics`: everything measured (`BrokerMeasurement.metrics()`).

`MosquittoBrokerEnv` is `KnobTuningEnv` on this target, scored by the
`cdbtuner` reward on raw msg/s and ms (unless the spec picks another reward
mode), tracking the default, last and best measurements, with the broker
columns of seed 000 in `info` (`broker_step_csv_row(info)` for trajectory.csv).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from cli_ai.broker.backend import MosquittoBackend
from cli_ai.broker.options import default_value
from cli_ai.broker.settings import DEFAULT_METRIC, BrokerSettings
from cli_ai.broker.workload import BrokerMeasurement, WorkloadManager
from cli_ai.errors import TargetError
from cli_ai.events import Event, EventSink, null_sink
from cli_ai.spec import TuningSpec
from cli_ai.core.backend import Value
from cli_ai.tactician.envs.knob_env import Evaluation, KnobTuningEnv
from cli_ai.tactician.knobs import KnobSpace

#: Seed 000's trajectory columns, in order (after "action").
BROKER_CSV_COLUMNS = (
    "action", "throughput", "latency_p50", "latency_p95",
    "reward_tps", "reward_latency", "reward_raw", "reward_final",
    "default_tps", "default_lat", "best_tps", "best_lat",
)


# --------------------------------------------------------------------------- options


@dataclass
class BrokerOptions:
    """Seed 000's training flags, with its defaults (CDBTuner's PER: alpha 0.6,
    beta 0.4 annealed by 0.001 per sampling, a 100,000-transition buffer).

    * `--replay-buffer-size` -> `replay_buffer_size` -> `build_per_ddpg(overrides={"buffer_size": ...})`
    * `--replay-alpha` / `--replay-beta` / `--replay-beta-increment` -> `replay_kwargs()`
      -> `build_per_ddpg(replay_kwargs={"alpha", "beta", "beta_increment"})`
    * `--enable-workload/--no-workload` -> `enable_workload` -> `MosquittoTarget(enable_workload=...)`
    * `--total-timesteps N` -> `total_timesteps` -> N agent steps, i.e. a budget of
      N + 1 evaluations (the baseline is one): `budget()`.
    """

    replay_buffer_size: int = 100_000
    replay_alpha: float = 0.6
    replay_beta: float = 0.4
    replay_beta_increment: float | None = 0.001
    enable_workload: bool = True
    total_timesteps: int | None = None

    @classmethod
    def from_spec(cls, spec: TuningSpec | None = None, **flags: Any) -> "BrokerOptions":
        """The spec's `mosquitto.replay` and `mosquitto.workload.enabled`, then
        every flag that is not None (the CLI's)."""
        s = BrokerSettings.from_spec(spec) if spec is not None else BrokerSettings()
        opts = cls(
            replay_buffer_size=s.replay.buffer_size,
            replay_alpha=s.replay.alpha,
            replay_beta=s.replay.beta,
            replay_beta_increment=s.replay.beta_increment,
            enable_workload=s.workload.enabled,
        )
        known = set(cls.__dataclass_fields__)
        unknown = [k for k in flags if k not in known]
        if unknown:
            raise TypeError(f"unknown broker option(s): {', '.join(unknown)}")
        return replace(opts, **{k: v for k, v in flags.items() if v is not None})

    def replay_kwargs(self) -> dict[str, Any]:
        """`build_per_ddpg(replay_kwargs=...)`."""
        out: dict[str, Any] = {"alpha": float(self.replay_alpha), "beta": float(self.replay_beta)}
        if self.replay_beta_increment is not None:
            out["beta_increment"] = float(self.replay_beta_increment)
        return out

    def agent_overrides(self) -> dict[str, Any]:
        """Merged into `build_per_ddpg(overrides=...)`."""
        return {"buffer_size": int(self.replay_buffer_size)}

    def budget(self, spec_budget: int | None) -> int | None:
        """Evaluations of the run: total_timesteps + 1 when given, else the spec's."""
        return self.total_timesteps + 1 if self.total_timesteps is not None else spec_budget


# --------------------------------------------------------------------------- the target


def broker_initial_values(spec: TuningSpec) -> dict[str, Value]:
    """What a managed broker starts from, without starting one (dry runs,
    confirmation screens): each knob's spec default, else mosquitto's own."""
    out: dict[str, Value] = {}
    for knob in spec.action_space:
        out[knob.param] = knob.default if knob.default is not None else default_value(knob.param)
    return out


class MosquittoTarget:
    """A running broker (managed or attached), its workload and its measurement."""

    def __init__(
        self,
        spec: TuningSpec,
        *,
        seed: int | None = None,
        enable_workload: bool | None = None,
        options: BrokerOptions | None = None,
        sink: EventSink | None = None,
        backend: MosquittoBackend | None = None,
    ):
        """
        :param spec: a spec with `target: "mosquitto"` (already safety-checked)
        :param seed: recorded (the workload's shape is deterministic)
        :param enable_workload: run the background load (None: `options`, whose
            default comes from the spec's `mosquitto.workload.enabled`, true).
            Without it, throughput is whatever traffic the broker carries
            (attach mode) as $SYS counts it.
        :param options: seed 000's training flags (`BrokerOptions.from_spec(spec, ...)`)
        :param sink: receives `target_warning` and `broker_*` events
        :param backend: an already built backend (tests); by default one is
            made from the spec: managed, or attached when `mosquitto.attach` is given
            (a spec of `target: "mosquitto"`: `targets.BrokerTarget` builds it)
        """
        self.spec = spec
        self.seed = seed
        self.settings = BrokerSettings.from_spec(spec)
        self.options = options or BrokerOptions.from_spec(spec)
        self.enable_workload = self.options.enable_workload if enable_workload is None else bool(enable_workload)
        self.sink = sink or null_sink
        self.names = list(spec.params)
        self.metric_name = spec.reward_metric or DEFAULT_METRIC
        self.warnings: list[str] = []
        self.last: BrokerMeasurement | None = None
        self.evaluations = 0
        self.workload: WorkloadManager | None = None
        self._closed = False
        s = self.settings
        tuned_sys = "sys_interval" in self.names
        if backend is None:
            if s.attach is not None:
                backend = MosquittoBackend(attach=s.attach, binary=s.binary, start_timeout_s=s.start_timeout_s,
                                           on_event=self._backend_event)
            else:
                backend = MosquittoBackend(
                    broker_initial_values(spec),
                    binary=s.binary,
                    port=s.port,
                    fixed={} if tuned_sys else {"sys_interval": s.sys_interval},
                    start_timeout_s=s.start_timeout_s,
                    on_event=self._backend_event,
                )
        elif backend.on_event is None:
            backend.on_event = self._backend_event
        self.backend = backend
        try:
            self.backend.start()
            self.workload = WorkloadManager(
                self.backend.host,
                self.backend.port,
                s.workload,
                s.probe,
                enable_workload=self.enable_workload,
                on_warning=self._warn,
                disagreement_warn=s.disagreement_warn,
                sys_interval_s=self._sys_interval(),
            ).start()
            if not self.workload.wait_ready(s.settle_timeout_s):
                self._warn(f"the workload's clients were not all connected after {s.settle_timeout_s:g} s")
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ events
    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self.sink(Event("target_warning", {"target": "mosquitto", "message": message}))

    def _backend_event(self, kind: str, data: dict) -> None:
        self.sink(Event(kind, {"target": "mosquitto", **data}))

    # ------------------------------------------------------------------ API
    def initial_values(self) -> dict[str, Value]:
        """The values the broker runs with before tuning (the baseline)."""
        return self.backend.read(self.names)

    def journal_files(self) -> list[tuple[str, str]]:
        """Attach mode: (config file, backup) for `Guard.record_file`."""
        return self.backend.journal_files()

    def _sys_interval(self) -> float:
        try:
            return float(self.backend.read(["sys_interval"])["sys_interval"])  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - a foreign config may hold anything
            return float(self.settings.sys_interval)

    def evaluate(self, values: Mapping[str, Value]) -> Evaluation:
        """Measure the broker as it runs now (the env applied `values` just before)."""
        if self._closed or self.workload is None:
            raise TargetError("the mosquitto target is closed")
        s = self.settings
        started = time.monotonic()
        if not self.backend.alive():
            if self.backend.managed:
                try:
                    self.backend.start()  # back on the last good configuration
                except TargetError as exc:
                    raise TargetError(f"the broker died and did not come back: {exc}") from None
                raise TargetError("the broker had died; it was restarted on the last good configuration")
            raise TargetError(f"the broker at {self.backend.host}:{self.backend.port} does not accept connections")
        self.workload.set_sys_interval(self._sys_interval())
        if not self.workload.wait_ready(s.settle_timeout_s):
            self._warn(f"measuring although not every workload client reconnected within {s.settle_timeout_s:g} s")
        if s.warmup_s > 0:
            time.sleep(s.warmup_s)
        m = self.workload.measure(s.window_s)
        self.last = m
        self.evaluations += 1
        metrics = m.metrics()
        metric = metrics.get(self.metric_name, float("nan"))
        latency = m.latency_p50_ms if s.latency_percentile == "p50" else m.latency_p95_ms
        return Evaluation(
            metric=float(metric),
            metrics=metrics,
            duration_s=time.monotonic() - started,
            throughput=float(m.throughput_msg_s),
            latency_ms=None if latency is None else float(latency),
        )

    def close(self) -> None:
        """Stop the workload and the broker (a managed one is removed); idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.workload is not None:
                self.workload.stop()
        finally:
            self.backend.close()

    def __enter__(self) -> "MosquittoTarget":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- the env


def broker_reward(spec: TuningSpec):
    """The spec's reward; `cdbtuner` when the spec names no reward block."""
    from cli_ai.tactician.rewards import make_reward

    if "reward" not in (spec.raw or {}) and spec.reward.mode == "weighted":
        return make_reward({"mode": "cdbtuner"}, spec.metric_direction)
    return make_reward(spec.reward, spec.metric_direction)


class MosquittoBrokerEnv(KnobTuningEnv):
    """`KnobTuningEnv` on a `MosquittoTarget`, with seed 000's broker columns
    in `info`: `action`, `throughput`, `latency_p50`, `latency_p95`, and the
    default / last / best measurements (`default_metrics`, `last_metrics`,
    `best_metrics`: best by the spec's metric and direction)."""

    def __init__(self, space: KnobSpace, target: MosquittoTarget, *, apply: Callable[[Mapping[str, Value]], None],
                 read: Callable[[Sequence[str]], dict[str, Value]] | None = None, observer=None, reward=None,
                 **kwargs: Any):
        if observer is None:
            from cli_ai.tactician.observe import SystemObserver

            observer = SystemObserver()
        super().__init__(space, target.evaluate, apply=apply, read=read or target.backend.read, observer=observer,
                         reward=reward if reward is not None else broker_reward(target.spec), **kwargs)
        self.target = target
        self.direction = target.spec.metric_direction
        self.default_metrics: dict[str, float] | None = None
        self.last_metrics: dict[str, float] | None = None
        self.best_metrics: dict[str, float] | None = None

    def _better(self, metrics: Mapping[str, float]) -> bool:
        name = self.target.metric_name
        new = metrics.get(name)
        if new is None or not math.isfinite(new):
            return False
        old = (self.best_metrics or {}).get(name)
        if old is None or not math.isfinite(old):
            return True
        return new < old if self.direction == "minimize" else new > old

    def _broker_info(self, metrics: Mapping[str, float], action) -> dict[str, Any]:
        return {
            "action": [float(a) for a in np.asarray(action, dtype=float).reshape(-1)],
            "throughput": metrics.get("throughput_msg_s"),
            "latency_p50": metrics.get("latency_p50_ms"),
            "latency_p95": metrics.get("latency_p95_ms"),
            "default_metrics": dict(self.default_metrics or {}),
            "last_metrics": dict(self.last_metrics or {}),
            "best_metrics": dict(self.best_metrics or {}),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        if info.get("baseline"):
            metrics = dict(info.get("metrics", {}))
            self.default_metrics = dict(metrics)
            self.last_metrics = dict(metrics)
            self.best_metrics = dict(metrics)
            info.update(self._broker_info(metrics, self.space.to_action(self.baseline_values)))
            tp, lat = metrics.get("throughput_msg_s"), self._latency(metrics)
            info["reward_components"] = {
                "reward_tps": 0.0, "reward_latency": 0.0, "reward_raw": 0.0, "reward_final": 0.0,
                "default_tps": tp or 0.0, "default_lat": lat or 0.0, "best_tps": tp or 0.0, "best_lat": lat or 0.0,
            }
        return obs, info

    def _latency(self, metrics: Mapping[str, float]) -> float | None:
        key = "latency_p50_ms" if self.target.settings.latency_percentile == "p50" else "latency_p95_ms"
        return metrics.get(key)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if not info.get("failed"):
            metrics = dict(info.get("metrics", {}))
            self.last_metrics = metrics
            if self._better(metrics):
                self.best_metrics = dict(metrics)
            info.update(self._broker_info(metrics, action))
        else:
            info.update(self._broker_info({}, action))
        return obs, reward, terminated, truncated, info


def make_broker_env(
    spec: TuningSpec,
    target: MosquittoTarget,
    guard_apply: Callable[[Mapping[str, Value]], None],
    *,
    space: KnobSpace | None = None,
    read: Callable[[Sequence[str]], dict[str, Value]] | None = None,
    observer=None,
    reward=None,
    failures=None,
    max_steps_per_episode: int | None = None,
    budget: int | None = None,
) -> MosquittoBrokerEnv:
    """The broker env of a run: `guard_apply` is the Guard's `apply` (every
    write journaled); `space` the checked knobs' space (default: the spec's
    knobs as given); state metrics, episode length and failure penalty from the
    spec, as `cli_ai.tuning.execute` does for sysctl."""
    from cli_ai.safety.guard import FailureCounter

    if space is None:
        space = KnobSpace.from_specs(spec.action_space)
    episode = max_steps_per_episode or spec.training_config.max_steps_per_episode
    if budget is not None:
        episode = min(episode, budget)
    return MosquittoBrokerEnv(
        space,
        target,
        apply=guard_apply,
        read=read,
        observer=observer,
        reward=reward,
        state_metrics=[m.metric for m in spec.state_space],
        max_steps_per_episode=episode,
        failure_penalty=spec.safety.failure_penalty,
        failures=failures or FailureCounter(spec.safety.max_consecutive_failures),
    )


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value


def broker_step_csv_row(info: Any, space: KnobSpace | None = None) -> dict[str, Any]:
    """Seed 000's trajectory columns (`BROKER_CSV_COLUMNS`) of one evaluation:
    the `info` of a `MosquittoBrokerEnv` step (or of its baseline reset), or a
    `StepRecord` of the run's Tracker (then `space` turns its values back into
    the normalized action). Missing values are empty cells."""
    if not isinstance(info, Mapping):
        info = _info_of_record(info, space)
    comps = dict(info.get("reward_components") or {})
    action = info.get("action") or []
    row: dict[str, Any] = {
        "action": " ".join(f"{float(a):.6g}" for a in action),
        "throughput": _cell(info.get("throughput")),
        "latency_p50": _cell(info.get("latency_p50")),
        "latency_p95": _cell(info.get("latency_p95")),
    }
    for key in BROKER_CSV_COLUMNS[4:]:
        row[key] = _cell(comps.get(key))
    return row


def _info_of_record(record: Any, space: KnobSpace | None) -> dict[str, Any]:
    metrics = dict(getattr(record, "metrics", {}) or {})
    comps = dict(getattr(record, "components", {}) or {})
    values = dict(getattr(record, "values", {}) or {})
    action: list[float] = []
    if space is not None and values and all(n in values for n in space.names):
        action = [float(a) for a in space.to_action(values)]
    if not comps and getattr(record, "index", None) == 0:  # the baseline: it is the default and the best
        tp = metrics.get("throughput_msg_s")
        lat = metrics.get("latency_p95_ms")
        comps = {"reward_tps": 0.0, "reward_latency": 0.0, "reward_raw": 0.0, "reward_final": 0.0,
                 "default_tps": tp, "default_lat": lat, "best_tps": tp, "best_lat": lat}
    return {
        "action": action,
        "throughput": metrics.get("throughput_msg_s"),
        "latency_p50": metrics.get("latency_p50_ms"),
        "latency_p95": metrics.get("latency_p95_ms"),
        "reward_components": comps,
    }


def broker_current_values(spec: TuningSpec) -> dict[str, Value]:
    """What a run starts from, read-only (for `prepare` and the confirmation
    screen): the attached broker's config file, else a managed broker's
    initial values. Raises TargetError when an attached config cannot be read
    or a backup of an earlier run is in the way."""
    settings = BrokerSettings.from_spec(spec)
    if settings.attach is None:
        return broker_initial_values(spec)
    backend = MosquittoBackend(attach=settings.attach, binary=settings.binary)
    try:
        return backend.read(spec.params)
    finally:
        backend.close()


__all__ = [
    "BROKER_CSV_COLUMNS", "BrokerOptions", "MosquittoBrokerEnv", "MosquittoTarget", "broker_current_values",
    "broker_initial_values", "broker_reward", "broker_step_csv_row", "make_broker_env",
]
