"""The simulated sequential targets (seed 002's autoscaling, seed 003's
scheduler): a policy is trained on their gymnasium env (`policy_training`);
nothing on the machine changes."""

from __future__ import annotations

from cli_ai.spec import TuningSpec
from cli_ai.targets.base import Target


class AutoscalingTarget(Target):
    name = "autoscaling"
    search = "policy"

    def policy_env(self, spec: TuningSpec, *, seed: int | None = None):
        from cli_ai.tactician.envs.autoscaling import make_env

        return make_env(spec, seed=seed)


class SchedulerTarget(Target):
    name = "scheduler"
    search = "policy"

    def policy_env(self, spec: TuningSpec, *, seed: int | None = None):
        from cli_ai.tactician.envs.scheduler import make_env

        return make_env(spec, seed=seed)
