"""The Target contract: what cli-ai needs to know about one kind of thing it
tunes, in one place (TuneD's model: one plugin per subsystem over a common
base).

A target says which checks its spec gets, where its values live (the backend
and how the run starts from the current values), how a configuration is
measured (the evaluator, the observer, the default reward), how its agents
are fitted, what its trajectory rows add, and what the output may offer (the
confirmation screen, apply and export). `cli_ai.targets.get_target` maps a
spec's `target` to its Target; the run pipeline asks the Target and never
branches on the name.

The knob targets (sysctl, command, mosquitto) run through `tuning.execute`;
the simulated sequential ones (autoscaling, scheduler) train a policy in
`policy_training` (`search == "policy"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from cli_ai.core.backend import Backend, Value
from cli_ai.events import EventSink
from cli_ai.safety.check import SafetyReport
from cli_ai.spec import TuningSpec


@dataclass
class TargetSession:
    """Where one knob run's values live and how they are measured."""

    backend: Backend
    evaluate: Any  # values -> Evaluation
    observer: Any
    reward: Any
    closer: Any = None  # something holding processes (a managed broker): closed at the end

    def close(self) -> None:
        if self.closer is not None:
            self.closer.close()


class Target:
    """One kind of thing cli-ai tunes. The defaults describe a knob target that
    changes nothing on the machine and is measured by its spec's benchmark."""

    name: str = ""
    #: "knobs": configuration search (tuning.execute); "policy": a policy
    #: trained on a simulated sequential env (policy_training).
    search: str = "knobs"
    #: A real run lists the values it will change and asks before it starts.
    confirms_values: bool = False
    #: A result verified better can be applied with `cli-ai apply` and
    #: exported (sysctl.d, TuneD); its summary prints the commands.
    applicable: bool = False
    #: Who writes this target's specs: "templates" (the strategist plans them
    #: from its templates), "examples" (the curated ready examples), "person"
    #: (only a spec the person writes; a planned one is refused).
    planning: str = "examples"
    #: Its knobs are {name} placeholders put into the benchmark's argv at each step.
    substitutes_values: bool = False

    # ------------------------------------------------------------------ spec and safety
    def check(self, spec: TuningSpec, *, clamp: bool, dry_run: bool, proc_root: str) -> SafetyReport:
        """Refuse what may not run; return the knobs to use (narrowed under `clamp`)."""
        return SafetyReport(knobs=spec.action_space)

    def knob_rules(self, space: Any, *, dry_run: bool, proc_root: str):
        """The rules between this target's knobs, as a repair of a
        configuration (`KnobSpace.rules`), or None."""
        return None

    def knob_ordering(self, param: str) -> str | None:
        """How a vector knob's elements must be ordered (`KnobSpace`), if at all."""
        return None

    def netns_params(self, names: Sequence[str]) -> list[str]:
        """Which of `names` live in the network namespace (recorded in the journal)."""
        return []

    def runs(self, run: Any) -> list[tuple[str, str]]:
        """What a real run starts or edits, as (what, exact text) lines for the
        confirmation screen: by default the benchmark's argv of the first step,
        with the values of that step put in."""
        import shlex

        from cli_ai.targets.evaluation import first_step_argv

        argv = first_step_argv(run, substitute_values=self.substitutes_values)
        return [] if argv is None else [("Benchmark, first step (exact argv)", shlex.join(argv))]

    # ------------------------------------------------------------------ the run
    def search_steps(self, options: Any) -> int | None:
        """A search length the target's own flags ask for (seed 000's --total-timesteps)."""
        return None

    def current_values(self, spec: TuningSpec, space: Any, *, dry_run: bool, proc_root: str) -> dict[str, Value]:
        """What the run starts from: by default each knob's default, else mid-range."""
        return space.defaults()

    def writes_machine(self, run: Any) -> bool:
        """Whether this run writes to the machine, so that it takes the Guard's
        lock and refusals (`safety.guard.claim`) before it writes anything of
        its own (the run directory) or starts anything. A wrong False is safe:
        the Guard still locks and journals a backend that changes the machine."""
        return False

    def require_access(self, names: Sequence[str], *, dry_run: bool, proc_root: str) -> None:
        """Raise SafetyError when a real run could not write `names`."""

    def session(self, run: Any, options: Any, sink: EventSink) -> TargetSession:
        """The backend, evaluator, observer and reward of one run (dry or real)."""
        from cli_ai.targets.evaluation import benchmark_session

        return benchmark_session(run, options)

    def make_env(self, run: Any, session: TargetSession, guard: Any, **common: Any):
        """The gymnasium env the search drives (`common`: reward, failures, budget)."""
        from cli_ai.tactician.envs.knob_env import KnobTuningEnv

        spec = run.spec
        return KnobTuningEnv(
            run.space,
            session.evaluate,
            apply=guard.apply,
            read=session.backend.read,
            observer=session.observer,
            reward=common["reward"],
            state_metrics=[m.metric for m in spec.state_space],
            max_steps_per_episode=min(spec.training_config.max_steps_per_episode, run.budget),
            failure_penalty=spec.safety.failure_penalty,
            failures=common["failures"],
        )

    def fit_agent_plan(self, plan: Any, run: Any, options: Any) -> None:
        """Adjust the RL agent's plan for this target (its flags, its presets)."""

    def plan_hints(self, profile) -> list[str]:
        """What a plan of this target should tell the person about this
        machine (its ready spec is used as it is); none by default."""
        return []

    def doctor_checks(self, proc_root: str) -> list[tuple[str, bool | None, str]]:
        """What `cli-ai doctor` reports for this target: (what, ok / None for
        "not needed unless you use it", detail)."""
        return []

    def value_text(self, name: str, value: Value) -> str | None:
        """A knob value as the target spells it for people (postgres:
        `512MB`, `300s`, `on`), or None for the console's default."""
        return None

    #: Its bools are written as 1/0 (the kernel's spelling), and shown so.
    numeric_bools: bool = False
    #: The target's own `cli-ai tune` flags (keys of TuneOptions.broker) it takes.
    cli_flags: tuple[str, ...] = ()

    # ------------------------------------------------------------------ after the run
    #: The deployable forms of a verified result (`cli-ai export --format`),
    #: by name, the first the default: renderer(values, result) -> text.
    exports: Mapping[str, Callable[[Mapping[str, Value], Mapping[str, Any]], str]] = {}

    #: `cli-ai apply` writes a verified result through `apply_backend(result)`
    #: (a server the run was attached to) instead of the kernel's sysctls.
    applies_through_backend: bool = False

    def apply_backend(self, result: Mapping[str, Any]) -> Backend:
        """The backend a verified result of this target is applied through."""
        raise TypeError(f"a {self.name} result is not applied through a backend of its own")

    def result_values(self, result: Mapping[str, Any]) -> dict[str, Value]:
        """A result file's best configuration, checked as untrusted input
        (catalogued, typed, in its safe range) before it is applied or exported."""
        from cli_ai.errors import BadInputError

        raise BadInputError(
            f"{result.get('_path')}: a {self.name!r} result has no configuration cli-ai can apply or export; "
            "use its best_config in the program it belongs to"
        )

    def algorithm_problem(self, algorithm: str) -> str | None:
        """Why `algorithm` cannot search this target (a one-line error that
        names the ones that can), or None. Checked at validate and before a
        run. A knob target's actions are continuous."""
        if self.search == "knobs" and algorithm in ("sarsa", "dqn"):
            return (f"training_config.algorithm: {algorithm} needs a discrete action space; a {self.name} run's "
                    "knobs are continuous: use auto, ppo, ddpg, td3, sac, per-ddpg or random")
        return None

    def heuristic_policies(self, env) -> dict[str, Any]:
        """The hand-written policies a trained one is compared with, by name (a
        policy target's; knob targets have none)."""
        return {}

    def policy_env(self, spec: TuningSpec, *, seed: int | None = None):
        """The gymnasium env a policy target trains on (`search == "policy"`)."""
        raise TypeError(f"the {self.name} target is tuned by configuration search, not by training a policy")

    def step_columns(self, space: Any) -> Callable[[Any], Mapping[str, Any]] | None:
        """Extra trajectory.csv columns per step (seed 000's broker columns)."""
        return None


__all__ = ["Target", "TargetSession"]
