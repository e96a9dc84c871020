"""Gymnasium environments of cli-ai, one per target.

`make_target_env(spec, seed=...)` builds the env of a simulated target
(scheduler, autoscaling); knob targets (sysctl, command, mosquitto) are built
by the pipeline because they need a backend, a guard and a benchmark."""

from __future__ import annotations

import importlib
from typing import Any

SIMULATED_TARGETS = {
    "scheduler": "cli_ai.tactician.envs.scheduler",
    "autoscaling": "cli_ai.tactician.envs.autoscaling",
}


def make_target_env(spec: Any, *, seed: int | None = None):
    module = importlib.import_module(SIMULATED_TARGETS[spec.target])
    return module.make_env(spec, seed=seed)
