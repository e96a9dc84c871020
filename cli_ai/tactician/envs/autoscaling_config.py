"""The autoscaling env's settings: observation names, the metrics it reports
and their directions, the reward weights and `AutoscalingConfig` (what a spec's
`autoscaling` section or the toolkit's flags set), validated in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from cli_ai.errors import BadInputError

OBSERVATION_NAMES = (
    "queued",
    "running",
    "completed_window",
    "missed_window",
    "workers",
    "avg_processing_time",
    "max_processing_time",
    "arrival_rate",
    "qos_rate",
)

#: values a spec's reward_metric may name; info["metric"] carries the chosen one
METRICS = (
    "reward",
    "qos",
    "qos_rate",
    "final_qos",
    "workers",
    "workers_avg",
    "queued",
    "running",
    "completed",
    "missed",
    "arrival_rate",
    "avg_processing_time",
    "max_processing_time",
    "qos_per_worker",
)

#: which way each metric is better (None: neither; a spec may choose)
METRIC_DIRECTIONS = {
    "reward": "maximize",
    "qos": "maximize",
    "qos_rate": "maximize",
    "final_qos": "maximize",
    "completed": "maximize",
    "qos_per_worker": "maximize",
    "workers": "minimize",
    "workers_avg": "minimize",
    "queued": "minimize",
    "missed": "minimize",
    "avg_processing_time": "minimize",
    "max_processing_time": "minimize",
    "running": None,
    "arrival_rate": None,
}

PLATFORMS = ("simulated", "local")


@dataclass(frozen=True)
class RewardWeights:
    qos_weight: float = 1.0
    worker_weight: float = 1.0
    queue_weight: float = 0.2
    scaling_weight: float = 0.02
    queue_target: float = 50.0
    target_qos: float = 0.0


@dataclass(frozen=True)
class AutoscalingConfig:
    """Everything that shapes the env besides the workload itself."""

    step_duration: float = 8.0
    observation_window: float = 8.0
    initial_workers: int = 12
    min_workers: int = 1
    max_workers: int = 32
    max_steps: int | None = 30
    scale_steps: tuple[int, ...] = (1,)
    cold_start: float | None = None  # None: the workload's function settings
    concurrency: int | None = None
    queue_capacity: int | None = None
    phase_shuffle: bool = False
    phase_shuffle_seed: int | None = None
    reward: RewardWeights = field(default_factory=RewardWeights)
    reward_metric: str | None = None
    platform: str = "simulated"
    time_scale: float = 1.0  # local platform: wall seconds per workload second

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scale_steps"] = list(self.scale_steps)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AutoscalingConfig":
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if isinstance(kwargs.get("reward"), Mapping):
            kwargs["reward"] = RewardWeights(**kwargs["reward"])
        if "scale_steps" in kwargs:
            kwargs["scale_steps"] = tuple(int(s) for s in kwargs["scale_steps"])
        return cls(**kwargs)

    def validate(self) -> None:
        problems = []
        if not self.step_duration > 0:
            problems.append(f"step_duration: {self.step_duration} must be above 0")
        if not self.observation_window > 0:
            problems.append(f"observation_window: {self.observation_window} must be above 0")
        if self.min_workers < 0:
            problems.append(f"min_workers: {self.min_workers} must be at least 0")
        if self.max_workers < 1:
            problems.append(f"max_workers: {self.max_workers} must be at least 1")
        if self.min_workers > self.max_workers:
            problems.append(f"min_workers: {self.min_workers} is above max_workers {self.max_workers}")
        if not self.min_workers <= self.initial_workers <= self.max_workers:
            problems.append(
                f"initial_workers: {self.initial_workers} is outside [min_workers, max_workers] = "
                f"[{self.min_workers}, {self.max_workers}]"
            )
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps: {self.max_steps} must be at least 1")
        if not self.scale_steps or any(s < 1 for s in self.scale_steps) or len(set(self.scale_steps)) != len(self.scale_steps):
            problems.append(f"scale_steps: {list(self.scale_steps)} must be distinct whole numbers >= 1")
        if self.platform not in PLATFORMS:
            problems.append(f"platform: {self.platform!r} is not one of {', '.join(PLATFORMS)}")
        if not self.time_scale > 0:
            problems.append(f"time_scale: {self.time_scale} must be above 0")
        if self.reward_metric is not None and self.reward_metric not in METRICS:
            problems.append(f"reward_metric: {self.reward_metric!r} is not one of {', '.join(METRICS)}")
        if self.reward.queue_target <= 0:
            problems.append(f"reward.queue_target: {self.reward.queue_target} must be above 0")
        if problems:
            raise BadInputError(problems[0], problems=problems)
