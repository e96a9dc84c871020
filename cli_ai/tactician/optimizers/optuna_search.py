"""Model-based configuration search with Optuna's samplers, through its
ask-and-tell API.

The knob space becomes Optuna distributions (ints and floats with their log
scales, bools and enums as categoricals, one int per free element of a vector
sysctl; fixed elements are not searched). The run's current values are the
first trials (the baseline runs, told before the first ask), so the model
starts from what is known. A failed evaluation is never dropped: Optuna's
samplers ignore failed trials, and on a surface with a crash region they then
keep proposing configurations that crash. It is told as a complete trial that
violates a constraint (`failed > 0`), with a value worse than any seen, so
the GP models where failures lie and the objective model sees the cliff.

Optuna is imported here, and this module is imported only when a search
runs: `cli-ai --help` and `cli-ai plan` never load it.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Mapping

from cli_ai.core.backend import Value
from cli_ai.tactician.knobs import Knob, KnobSpace, repair_order
from cli_ai.tactician.optimizers.base import Choice, Optimizer, Outcome, Proposal, worst_value

CONSTRAINT = "failed"
# An int knob with more values than this is searched as a continuous range and
# rounded: Optuna's GP optimises its acquisition over a discrete dimension with
# a line search per dimension, which costs seconds per proposal on wide ranges
# (a 1..512 batch size) and gains little over rounding (measured on
# bench/search.py's smooth surface at budget 40: 2.2 s -> 0.2 s per proposal).
CONTINUOUS_INT_VALUES = 16


@dataclass(frozen=True)
class _Dim:
    """One searched Optuna parameter: a knob, or one free element of a vector knob."""

    name: str
    knob: Knob
    element: int | None = None  # index into the vector's elements


class OptunaSpace:
    """The knob space as Optuna distributions, and the way back."""

    def __init__(self, space: KnobSpace):
        import optuna.distributions as od

        self.space = space
        self.dims: list[_Dim] = []
        self.distributions: dict[str, Any] = {}
        for knob in space.knobs:
            s = knob.spec
            if s.type == "vector":
                for j, el in enumerate(s.elements or ()):
                    if el.fixed:
                        continue
                    name = f"{s.param}[{j}]"
                    self.dims.append(_Dim(name, knob, j))
                    self.distributions[name] = _int_distribution(el.min, el.max, el.scale == "log")
                continue
            self.dims.append(_Dim(s.param, knob))
            if s.type == "int":
                dist = _int_distribution(s.min, s.max, s.scale == "log")
            elif s.type == "float":
                dist = od.FloatDistribution(float(s.min), float(s.max), log=s.scale == "log")
            elif s.type == "bool":
                dist = od.CategoricalDistribution((False, True))
            else:
                dist = od.CategoricalDistribution(tuple(s.values or ()))
            self.distributions[s.param] = dist

    def to_values(self, params: Mapping[str, Any]) -> dict[str, Value]:
        """Native values of a trial's params (clamped and, for vectors, ordered)."""
        out: dict[str, Value] = {}
        for knob in self.space.knobs:
            s = knob.spec
            if s.type == "vector":
                elements = s.elements or ()
                vec = [int(el.min) if el.fixed else _round(params[f"{s.param}[{j}]"]) for j, el in enumerate(elements)]
                vec = [min(max(v, el.min), el.max) for v, el in zip(vec, elements)]
                out[s.param] = tuple(repair_order(vec, [(e.min, e.max) for e in elements], knob.ordered))
            elif s.type == "int":
                out[s.param] = min(max(_round(params[s.param]), int(s.min)), int(s.max))
            elif s.type == "float":
                out[s.param] = float(min(max(float(params[s.param]), s.min), s.max))
            elif s.type == "bool":
                out[s.param] = bool(params[s.param])
            else:
                out[s.param] = params[s.param]
        return out

    def to_params(self, values: Mapping[str, Value]) -> dict[str, Any] | None:
        """Optuna params of native values, or None when a value lies outside
        the search space (the machine's current value can)."""
        import optuna.distributions as od

        params: dict[str, Any] = {}
        for dim in self.dims:
            s = dim.knob.spec
            value = values.get(s.param)
            if value is None:
                return None
            if dim.element is not None:
                if not isinstance(value, (tuple, list)) or dim.element >= len(value):
                    return None
                value = value[dim.element]
            dist = self.distributions[dim.name]
            if s.type == "bool":
                value = value not in (0, "0", False, "false", "off")
            elif s.type == "enum":
                matches = [c for c in dist.choices if str(c) == str(value)]
                if not matches:
                    return None
                value = matches[0]
            else:
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    return None
                if not (math.isfinite(number) and dist.low <= number <= dist.high):
                    return None
                value = int(value) if isinstance(dist, od.IntDistribution) else number
            params[dim.name] = value
        return params


def _int_distribution(lo: int, hi: int, log: bool):
    import optuna.distributions as od

    if int(hi) - int(lo) + 1 > CONTINUOUS_INT_VALUES:
        return od.FloatDistribution(float(lo), float(hi), log=log)
    return od.IntDistribution(int(lo), int(hi), log=log)


def _round(x: Any) -> int:
    return x if isinstance(x, int) else int(round(float(x)))


@contextmanager
def _quiet():
    """Optuna's own log lines and experimental-feature warnings are not for
    the person running cli-ai: the console says what ran."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", module="optuna")
        yield


class OptunaOptimizer(Optimizer):
    """Any Optuna sampler driven through ask-and-tell over the knob space."""

    name = "optuna"

    def __init__(self, space: KnobSpace, *, sampler: Any, choice: Choice, direction: str = "maximize",
                 seed: int | None = None, budget: int = 20, start: Mapping[str, Value] | None = None):
        """
        :param sampler: an Optuna sampler (GPSampler, TPESampler, ...)
        :param choice: what to report as the optimiser and why
        """
        super().__init__(space, direction=direction, seed=seed, budget=budget, start=start)
        import optuna

        self.choice = choice
        self.name = choice.name
        self.codec = OptunaSpace(space)
        with _quiet():
            self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.metrics: list[float] = []
        self._told_start = False
        # (trials after which, sampler): a later sampler takes over the study.
        self.handover: tuple[int, Any] | None = None

    # ------------------------------------------------------------------ ask / tell
    def ask(self, n: int = 1) -> list[Proposal]:
        if not self._told_start:
            self._enqueue_start()
        out = []
        with _quiet():
            for _ in range(n):
                if self.handover is not None and len(self.study.trials) >= self.handover[0]:
                    self.study.sampler = self.handover[1]
                    self.handover = None
                trial = self.study.ask(self.codec.distributions)
                out.append(Proposal(self.codec.to_values(trial.params), token=trial))
        return out

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        trial = proposal.token
        if trial is None:
            raise ValueError("a proposal this optimiser did not make")
        self._tell_trial(trial, outcome)

    def observe(self, values: Mapping[str, Value], outcome: Outcome) -> None:
        """An evaluation of the start (the baseline runs): a fixed trial."""
        params = self.codec.to_params(values)
        if params is None:
            # Outside the search space: the model cannot place it, but its
            # metric still sets how bad a failure is (worst_value).
            if outcome.usable:
                self.metrics.append(float(outcome.metric))
            return
        with _quiet():
            self.study.enqueue_trial(params, skip_if_exists=False)
            trial = self.study.ask(self.codec.distributions)
        self._told_start = True
        self._tell_trial(trial, outcome)

    def _enqueue_start(self) -> None:
        """When the current values lie outside the space, the first proposal is
        the nearest configuration inside it."""
        self._told_start = True
        if self.start and all(n in self.start for n in self.space.names):
            params = self.codec.to_params(self.space.clamp(self.start))
            if params is not None:
                self.study.enqueue_trial(params)

    def _tell_trial(self, trial: Any, outcome: Outcome) -> None:
        with _quiet():
            if outcome.usable:
                self.metrics.append(float(outcome.metric))
                trial.set_constraint(CONSTRAINT, 0.0)
                self.study.tell(trial, float(outcome.metric))
            else:
                trial.set_constraint(CONSTRAINT, 1.0)
                self.study.tell(trial, worst_value(self.metrics, self.direction))


# --------------------------------------------------------------------------- auto


def qmc_sampler(seed: int | None):
    """Scrambled Sobol points: the start-up design, spread over the whole space."""
    import optuna

    with _quiet():
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                          warn_independent_sampling=False)


def gp_sampler(seed: int | None):
    import optuna

    with _quiet():
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=0, deterministic_objective=False,
                                         warn_independent_sampling=False)


def tpe_sampler(seed: int | None):
    import optuna

    with _quiet():
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=0, multivariate=True, constant_liar=True,
                                          warn_independent_sampling=False)


#: Where `auto` leaves the GP for TPE (bench/search.py, docs/benchmarks.md).
#: A GP's time per proposal grows with the trials and the dimensions, its
#: model thins out with the dimensions: up to 16 searched dimensions it is
#: used for up to 60 search evaluations, up to 8 dimensions (most tuning
#: specs) for up to 120, where on the benchmark surfaces it still finds more
#: than TPE; beyond, multivariate TPE (6 ms per proposal at 100 evaluations
#: over 10 knobs, bench/overhead.py).
GP_MAX_DIMS = 16
GP_MAX_EVALUATIONS = 60
GP_SMALL_DIMS = 8
GP_SMALL_MAX_EVALUATIONS = 120
#: Quasi-random points after the current values, before the model takes over.
GP_START_POINTS = 5


@dataclass(frozen=True)
class AutoPlan:
    kind: str  # "gp" | "tpe"
    start_points: int
    reason: str


def choose_auto(space: KnobSpace, evaluations: int) -> AutoPlan:
    """Which model `--algo auto` uses for `evaluations` search evaluations, and why."""
    dims = space.dims
    if (dims <= GP_MAX_DIMS and evaluations <= GP_MAX_EVALUATIONS) or \
            (dims <= GP_SMALL_DIMS and evaluations <= GP_SMALL_MAX_EVALUATIONS):
        points = min(GP_START_POINTS, max(2, evaluations // 4))
        return AutoPlan("gp", points, (
            f"Gaussian-process Bayesian optimisation (Optuna's GPSampler): {dims} searched dimension(s) and "
            f"{evaluations} search evaluations are a small space on a small budget, where a model of the surface "
            f"and of its noise pays off most; it starts from the current values plus {points} quasi-random "
            "(Sobol) points, and failed evaluations are modelled as infeasible"))
    points = min(max(GP_START_POINTS, dims // 2), 10)
    why = (f"{dims} searched dimensions are more than a GP models well in few evaluations" if dims > GP_MAX_DIMS
           else f"{evaluations} search evaluations over {dims} dimensions are beyond where a GP's time per "
                "proposal pays off")
    return AutoPlan("tpe", points, (
        f"multivariate TPE (Optuna's TPESampler): {why}; it starts from the current values plus {points} "
        "quasi-random (Sobol) points, and failed evaluations are modelled as infeasible"))


def make_auto(space: KnobSpace, *, direction: str, seed: int | None, budget: int,
              start: Mapping[str, Value] | None = None, start_runs: int = 1) -> OptunaOptimizer:
    """The `auto` optimiser for `budget` proposals: Sobol points after the
    `start_runs` evaluations of the current values (observed before the first
    ask), then the model the plan chose."""
    plan = choose_auto(space, budget)
    model = gp_sampler(seed) if plan.kind == "gp" else tpe_sampler(seed)
    choice = Choice(f"auto ({plan.kind})", plan.reason, {"sampler": plan.kind, "start_points": plan.start_points})
    opt = OptunaOptimizer(space, sampler=qmc_sampler(seed), choice=choice, direction=direction, seed=seed,
                          budget=budget, start=start)
    opt.handover = (max(1, start_runs) + plan.start_points, model)
    return opt


__all__ = ["OptunaOptimizer", "OptunaSpace", "choose_auto", "make_auto"]
