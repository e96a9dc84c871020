"""The spec's data: typed, frozen dataclasses with the seeds' defaults, and
what each target's fragment holds (`SPEC_SHAPES`)."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cli_ai.errors import SpecError


KnobType = Literal["int", "float", "bool", "enum", "vector"]
Scale = Literal["linear", "log"]



@dataclass(frozen=True)
class SpecShape:
    """What a target's spec fragment holds, as data (each target's own checks
    live with its Target in cli_ai/targets/)."""

    benchmark: bool = False  # measured by the spec's benchmark: it needs one and a reward_metric
    placeholders: bool = False  # its knobs are {name} placeholders of the benchmark command
    block: bool = False  # its settings sit in a block named after the target


SPEC_SHAPES: dict[str, SpecShape] = {
    "sysctl": SpecShape(benchmark=True),
    "command": SpecShape(benchmark=True, placeholders=True),
    "mosquitto": SpecShape(block=True),
    "postgres": SpecShape(block=True),
    "autoscaling": SpecShape(block=True),
    "scheduler": SpecShape(block=True),
}
TARGETS = tuple(SPEC_SHAPES)
# cli-ai's own benchmarks (`cli-ai bench NAME`): their args are options, not a program
BUILTIN_RUNNERS = ("tcp-accept", "probe")
ALGORITHMS = ("auto", "ppo", "ddpg", "td3", "sac", "per-ddpg", "random", "sarsa", "dqn")
COMMAND_KNOB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

# Seed 004's defaults, used when training_config leaves a field out.
DEFAULT_TRAINING = {
    "total_timesteps": 10000,
    "max_steps_per_episode": 50,
    "learning_rate": 0.0003,
    "n_steps": 2048,
    "batch_size": 64,
    "n_epochs": 10,
    "gamma": 0.99,
    "benchmark_timeout": 120,
    # The target's own default search: model-based for knob targets, PPO for
    # the sequential simulated ones (scheduler, autoscaling).
    "algorithm": "auto",
}
DEFAULT_STATE_SPACE = (
    ("cpu_utilization", "/proc/stat"),
    ("iowait", "/proc/stat"),
    ("memory_used", "/proc/meminfo"),
    ("memory_pressure", "/proc/pressure/memory"),
    ("load_average", "/proc/loadavg"),
    ("context_switches", "/proc/stat"),
)




@dataclass(frozen=True)
class VectorElement:
    """One field of a multi-value sysctl; min == max holds the field fixed."""

    min: int
    max: int
    scale: Scale = "linear"

    @property
    def fixed(self) -> bool:
        return self.min == self.max


@dataclass(frozen=True)
class KnobSpec:
    """One tunable parameter as the spec states it (before catalogue narrowing)."""

    param: str
    type: KnobType = "int"
    min: float | None = None
    max: float | None = None
    values: tuple[Any, ...] | None = None
    scale: Scale = "linear"
    default: Any = None
    elements: tuple[VectorElement, ...] | None = None
    description: str | None = None


@dataclass(frozen=True)
class StateMetric:
    metric: str
    source: str | None = None


@dataclass(frozen=True)
class BenchmarkSpec:
    """How to run the benchmark. `command` is the seed-004 string form; `args`
    the structured argv after the runner's program (the full argv for 'command')."""

    runner: str = "command"
    command: str | None = None
    args: tuple[str, ...] | None = None
    timeout_s: float = 120.0
    repeats: int = 1
    warmup_runs: int = 0


@dataclass(frozen=True)
class TrainingConfig:
    total_timesteps: int = 10000
    max_steps_per_episode: int = 50
    learning_rate: float = 0.0003
    n_steps: int = 2048
    batch_size: int = 64
    n_epochs: int = 10
    gamma: float = 0.99
    benchmark_timeout: float = 120.0
    algorithm: str = "auto"
    preset: str | None = None
    budget: int | None = None
    seed: int | None = None
    tau: float | None = None
    buffer_size: int | None = None
    learning_starts: int | None = None
    explicit: frozenset[str] = frozenset()

    def given(self, name: str) -> bool:
        """Whether the spec set this field itself (as opposed to a default)."""
        return name in self.explicit


@dataclass(frozen=True)
class RewardConfig:
    mode: str = "weighted"
    performance_weight: float = 0.5
    stability_weight: float = 0.5
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SafetyConfig:
    max_consecutive_failures: int = 3
    failure_penalty: float = -1.0


@dataclass(frozen=True)
class TuningSpec:
    workload_name: str
    action_space: tuple[KnobSpec, ...]
    target: str = "sysctl"
    reward_metric: str | None = None
    metric_direction: str = "maximize"
    benchmark: BenchmarkSpec | None = None
    state_space: tuple[StateMetric, ...] = ()
    training_config: TrainingConfig = field(default_factory=TrainingConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    target_config: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    source: str | None = None

    @property
    def params(self) -> list[str]:
        return [k.param for k in self.action_space]

    def with_overrides(
        self,
        *,
        budget: int | None = None,
        algorithm: str | None = None,
        seed: int | None = None,
    ) -> "TuningSpec":
        """The spec with command-line overrides applied, to both the typed view
        and `raw`, so that the saved spec.json reproduces the run."""
        raw = copy.deepcopy(self.raw)
        tc = raw.setdefault("training_config", {})
        changes: dict[str, Any] = {}
        explicit = set(self.training_config.explicit)
        for key, value in (("budget", budget), ("algorithm", algorithm), ("seed", seed)):
            if value is not None:
                tc[key] = value
                changes[key] = value
                explicit.add(key)
        if not changes:
            return self
        if "algorithm" in changes and changes["algorithm"] not in ALGORITHMS:
            raise SpecError(
                f"--algo: {changes['algorithm']!r} is not one of {', '.join(ALGORITHMS)}"
            )
        training = replace(self.training_config, explicit=frozenset(explicit), **changes)
        return replace(self, training_config=training, raw=raw)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)
