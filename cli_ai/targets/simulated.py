"""The simulated sequential targets (seed 002's autoscaling, seed 003's
scheduler): a policy is trained on their gymnasium env (`policy_training`);
nothing on the machine changes."""

from __future__ import annotations

from cli_ai.spec import TuningSpec
from cli_ai.targets.base import Target


CONTINUOUS_ONLY = ("ddpg", "td3", "sac", "per-ddpg")


class _PolicyTarget(Target):
    search = "policy"
    #: algorithms this target refuses, with why
    refused: dict[str, str] = {}

    def algorithm_problem(self, algorithm: str) -> str | None:
        if algorithm in CONTINUOUS_ONLY:
            return (f"training_config.algorithm: {algorithm} needs a continuous action space; the {self.name} "
                    f"target decides discretely: use {self._allowed()}")
        if algorithm in self.refused:
            return f"training_config.algorithm: {algorithm} {self.refused[algorithm]}: use {self._allowed()}"
        return None

    def _allowed(self) -> str:
        return ", ".join(a for a in ("ppo", "dqn", "sarsa", "random") if a not in self.refused)


class AutoscalingTarget(_PolicyTarget):
    name = "autoscaling"

    def policy_env(self, spec: TuningSpec, *, seed: int | None = None):
        from cli_ai.tactician.envs.autoscaling import make_env

        return make_env(spec, seed=seed)

    def heuristic_policies(self, env) -> dict:
        """Seed 002's reactive autoscalers (average and maximum of the recent load)."""
        from cli_ai.tactician.agents.reactive import BASELINES, make_baseline

        return {name: make_baseline(name, env.unwrapped) for name in BASELINES}


class SchedulerTarget(_PolicyTarget):
    name = "scheduler"
    # Its observation is a few numbers per replica (24 for four replicas):
    # a table over them has millions of cells a tune budget never visits, and
    # an unseen state has no sane greedy action (measured: 101 states after
    # 2000 steps, p95 73.8 s against round-robin's 17.7 s).
    refused = {"sarsa": "is tabular, and the scheduler's observation (several numbers per replica) is too "
                        "large a table to learn at any tune budget"}

    def policy_env(self, spec: TuningSpec, *, seed: int | None = None):
        from cli_ai.tactician.envs.scheduler import make_env

        return make_env(spec, seed=seed)

    def heuristic_policies(self, env) -> dict:
        """Seed 003's routing baselines but the random one."""
        from cli_ai.tactician.agents.scheduler_baselines import make_baseline

        return {name: make_baseline(name, env.unwrapped.n) for name in ("round_robin", "least_outstanding", "least_work")}
