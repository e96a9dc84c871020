"""The mosquitto target (seed 000, BrokerTuner): a broker whose own settings
are tuned against a publish/subscribe workload.

    backend.py   MosquittoBackend: managed private broker, or attach to an existing one
    options.py   an option's value in mosquitto.conf, both ways
    config.py    reading, rendering and editing mosquitto.conf
    process.py   the broker process: binary, port, readiness, stop, sweep
    checks.py    the target's safety and semantic checks
    workload.py  WorkloadManager: paho-mqtt load, latency probe, $SYS throughput
    target.py    MosquittoTarget, MosquittoBrokerEnv, make_broker_env, broker_step_csv_row, BrokerOptions
    settings.py  the spec's `mosquitto` block, typed (no heavy imports)

Names are imported lazily: `import cli_ai.broker` loads neither paho-mqtt nor gymnasium.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MosquittoBackend": "cli_ai.broker.backend",
    "WorkloadManager": "cli_ai.broker.workload",
    "BrokerMeasurement": "cli_ai.broker.workload",
    "MosquittoTarget": "cli_ai.broker.target",
    "MosquittoBrokerEnv": "cli_ai.broker.target",
    "make_broker_env": "cli_ai.broker.target",
    "broker_step_csv_row": "cli_ai.broker.target",
    "BrokerOptions": "cli_ai.broker.target",
    "BrokerSettings": "cli_ai.broker.settings",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cli_ai.broker' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
