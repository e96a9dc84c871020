"""The mosquitto target's safety and semantic checks: its knobs against the
catalogue's `mosquitto` section, its workload against the knobs' ranges, its
reward metric, and an attached broker's commands and config file."""

from __future__ import annotations

import os
import shutil

from cli_ai.broker.settings import BROKER_METRICS, BrokerSettings, topic_problem
from cli_ai.errors import SafetyError
from cli_ai.safety.catalog import CatalogEntry, load_mosquitto_catalog
from cli_ai.safety.check import SafetyReport, check_knob, difflib_close, fmt_bound, shell_syntax_in
from cli_ai.safety.interpreters import interpreter_in
from cli_ai.spec import KnobSpec, TuningSpec


def check_mosquitto_spec(spec: TuningSpec, *, clamp: bool = False, real_run: bool = True) -> SafetyReport:
    """The mosquitto target's checks: every knob is an option of the
    catalogue's `mosquitto` section, inside its safe range (narrowed under
    `clamp`); the workload fits the knobs' ranges (payloads under
    message_size_limit, clients under max_connections); the reward metric is
    one the broker measurement reports; an attached broker's commands run
    without a shell and its config file exists (on a real run)."""
    catalog = load_mosquitto_catalog()
    errors: list[str] = []
    notes: list[str] = []
    warnings: list[str] = []
    knobs: list[KnobSpec] = []
    entries: dict[str, CatalogEntry] = {}
    try:
        settings = BrokerSettings.from_spec(spec)
    except (KeyError, TypeError, ValueError) as exc:
        raise SafetyError(f"mosquitto: cannot read the block ({exc})") from None
    for i, knob in enumerate(spec.action_space):
        option = catalog.get(knob.param)
        if option is None:
            close = difflib_close(knob.param, list(catalog))
            errors.append(
                f"action_space[{i}].param: {knob.param!r} is not a mosquitto option cli-ai tunes{close}; "
                f"known: {', '.join(sorted(catalog))}"
            )
            knobs.append(knob)
            continue
        entries[knob.param] = option.entry
        knobs.append(check_knob(i, knob, option.entry, clamp, notes, errors))
    by_name = {k.param: (i, k) for i, k in enumerate(knobs)}
    wl = settings.workload
    if wl.enabled:
        if "message_size_limit" in by_name:
            i, k = by_name["message_size_limit"]
            if k.min is not None and k.min < wl.payload_bytes:
                errors.append(
                    f"action_space[{i}].min: message_size_limit {fmt_bound(k.min)} is below the workload's payload of "
                    f"{wl.payload_bytes} bytes; every message would be dropped. Raise min above it"
                )
        if "max_packet_size" in by_name:
            i, k = by_name["max_packet_size"]
            need = wl.payload_bytes + len(wl.topic_prefix) + 64
            if k.min is not None and k.min < need:
                errors.append(
                    f"action_space[{i}].min: max_packet_size {fmt_bound(k.min)} is below the workload's packets "
                    f"(about {need} bytes); raise min above it"
                )
    if "max_connections" in by_name:
        i, k = by_name["max_connections"]
        need = wl.clients + 4  # the probe, the $SYS monitor, readiness checks, slack
        if k.min is not None and k.min < need:
            errors.append(
                f"action_space[{i}].min: max_connections {fmt_bound(k.min)} leaves no room for the {wl.clients} workload "
                f"clients and the measurement's own (at least {need}); raise min"
            )
    for j, sub in enumerate(wl.subscribers):
        problem = topic_problem(sub.topic)
        if problem:
            errors.append(f"mosquitto.workload.subscribers[{j}].topic: {sub.topic!r} {problem}")
    for where, topic in (("mosquitto.workload.topic_prefix", wl.topic_prefix), ("mosquitto.probe.topic", settings.probe.topic)):
        if "+" in topic or "#" in topic or topic.startswith("$"):
            errors.append(f"{where}: {topic!r} is published to; it cannot hold + or # or start with $")
    metric = spec.reward_metric or "throughput_msg_s"
    if metric not in BROKER_METRICS:
        errors.append(f"reward_metric: {metric!r} is not measured by the mosquitto target; choose one of "
                      f"{', '.join(BROKER_METRICS)}")
    elif BROKER_METRICS[metric] != spec.metric_direction:
        warnings.append(f"reward_metric {metric} is usually {BROKER_METRICS[metric]}d; the spec says {spec.metric_direction}")
    if "sys_interval" in by_name:
        i, k = by_name["sys_interval"]
        if k.max is not None and k.max > settings.window_s / 2:
            warnings.append(
                f"sys_interval may reach {fmt_bound(k.max)} s, more than half the {settings.window_s:g} s window: such steps "
                "measure throughput from the subscribers' counts instead of $SYS"
            )
    if settings.binary is not None:
        from cli_ai.broker.process import mosquitto_binary_problem

        # a dry run starts nothing: only the name must be mosquitto there
        problem = mosquitto_binary_problem(settings.binary) if real_run or shutil.which(settings.binary) else (
            None if os.path.basename(settings.binary) == "mosquitto" else f"{settings.binary} is not mosquitto")
        if problem is not None:
            errors.append(f"mosquitto.binary: {problem}")
    attach = settings.attach
    raw_attach = dict((spec.target_config or {}).get("attach") or {})
    if attach is not None:
        for key in ("reload_command", "restart_command"):
            given = raw_attach.get(key)
            if isinstance(given, str):
                syntax = shell_syntax_in(given)
                if syntax:
                    errors.append(
                        f"mosquitto.attach.{key}: {given!r} uses shell syntax ({' '.join(repr(s) for s in syntax)}); "
                        "give it as an argv list, it runs without a shell"
                    )
        for key, argv in (("reload_command", attach.reload_command), ("restart_command", attach.restart_command)):
            why = interpreter_in(argv) if argv else None
            if why is not None:
                errors.append(f"mosquitto.attach.{key}: {why}; give the program itself (e.g. systemctl reload "
                              "mosquitto), a shell or interpreter here could run anything")
        restart_only = [k.param for k in knobs if k.param in catalog and catalog[k.param].reload == "restart"]
        if restart_only and attach.restart_command is None:
            errors.append(
                f"mosquitto.attach.restart_command: missing; {', '.join(restart_only)} only take(s) effect when the "
                "broker restarts (mosquitto does not reload listener options)"
            )
        if real_run and not os.path.isfile(attach.config_file):
            errors.append(f"mosquitto.attach.config_file: {attach.config_file} does not exist")
    elif real_run and not (settings.binary or shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")):
        warnings.append("mosquitto is not installed (apt-get install mosquitto); the run cannot start its broker")
    if errors:
        raise SafetyError(f"{len(errors)} safety problem(s)", problems=errors)
    return SafetyReport(knobs=tuple(knobs), notes=notes, warnings=warnings, entries=entries)
