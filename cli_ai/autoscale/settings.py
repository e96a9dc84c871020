"""Build envs from command-line options, and load policies from model files.

A model file remembers the env it was trained in (``metadata["env_config"]``: the env
settings and the workload). `test` and `compare` start from that, then apply the
options the person gave, so ``autoscale test --model …`` evaluates in the training
conditions unless told otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from cli_ai.errors import BadInputError

BASELINE_NAMES = ("reactiveaverage", "reactivemaximum")
AGENT_NAMES = ("sarsa", "dqn") + BASELINE_NAMES


def build_env(*, workload: str | Path | None = None, base: Mapping[str, Any] | None = None, **overrides: Any):
    """An AutoscalingEnv from a saved env config (`base`), a workload file, and options
    (None values are left out)."""
    from cli_ai.tactician.envs.autoscaling import AutoscalingConfig, AutoscalingEnv

    given = {k: v for k, v in overrides.items() if v is not None}
    if "scale_steps" in given:
        given["scale_steps"] = tuple(given["scale_steps"])
    config = AutoscalingConfig.from_dict(base.get("config", {})) if base else AutoscalingConfig()
    if isinstance(given.get("reward"), Mapping):  # partial weights on top of the current ones
        from dataclasses import asdict

        from cli_ai.tactician.envs.autoscaling import RewardWeights

        given["reward"] = RewardWeights(**{**asdict(config.reward), **given["reward"]})
    try:
        config = replace(config, **given)
    except TypeError as exc:
        raise BadInputError(f"env options: {exc}") from None
    source = workload if workload is not None else (base.get("workload") if base else None)
    return AutoscalingEnv(workload=source, config=config)


def model_kind(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".pkl":
        return "sarsa"
    if suffix == ".pt":
        return "dqn"
    raise BadInputError(f"--model: {path}: a model is a SARSA .pkl or a DQN .pt file (or a baseline name: {', '.join(BASELINE_NAMES)})")


def load_model(path: str | Path):
    """A trained agent from its file: SARSA (.pkl) or DQN (.pt)."""
    kind = model_kind(path)
    if not Path(path).exists():
        raise BadInputError(f"--model: {path}: no such file")
    if kind == "sarsa":
        from cli_ai.tactician.agents.sarsa import SarsaAgent

        return SarsaAgent.load(path)
    from cli_ai.tactician.agents.dqn import DQNAgent

    return DQNAgent.load(path)


def env_config_of(agent) -> dict[str, Any] | None:
    meta = getattr(agent, "metadata", None) or {}
    cfg = meta.get("env_config")
    return cfg if isinstance(cfg, Mapping) else None


def check_compatible(agent, env, *, label: str = "--model") -> None:
    """The agent must choose among as many actions as the env offers. `test` and
    `compare` take the scale steps from the model file (they have no option for
    them), so the fix the message offers is about the model."""
    n = env.action_space.n
    if getattr(agent, "n_actions", n) == n:
        return
    steps = list(env.config.scale_steps)
    head = f"{label}: the model chooses among {agent.n_actions} actions but this env has {n} (scale steps {steps})"
    if env_config_of(agent) is None:
        fix = ("the model file does not record the env it was trained in, so the default scale steps were used; "
               "train the model with `cli-ai autoscale train-sarsa` or `train-dqn` and their --scale-steps "
               "(e.g. --scale-steps 1,2 for 5 actions), which the model file keeps")
    else:
        fix = ("the models disagree on their scale steps (the env follows the first model); "
               "compare models trained with the same --scale-steps")
    raise BadInputError(f"{head}; {fix}")


def make_policy(name: str, env, *, model: str | Path | None = None):
    """A policy by agent name: a baseline built for `env`, or a model loaded from `model`."""
    from cli_ai.tactician.agents.reactive import make_baseline

    if name in BASELINE_NAMES:
        return make_baseline(name, env)
    if name in ("sarsa", "dqn"):
        if model is None:
            flag = "--model" if name == "sarsa" else "--dqn-model"
            raise BadInputError(f"--agents: {name} needs a trained model; give {flag} PATH")
        agent = load_model(model)
        if agent.algorithm != name:
            raise BadInputError(f"{model}: is a {agent.algorithm} model, not {name}")
        check_compatible(agent, env, label=str(model))
        return agent
    raise BadInputError(f"--agents: {name!r} is not one of {', '.join(AGENT_NAMES)}")
