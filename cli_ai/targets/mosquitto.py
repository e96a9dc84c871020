"""The mosquitto target: an MQTT broker's options (seed 000), on a managed
broker or an attached one whose config file is journaled and restored; its
own checks (`broker/checks.py`), reward (cdbtuner by default), env and
trajectory columns."""

from __future__ import annotations

from typing import Any

from cli_ai.core.backend import Value
from cli_ai.safety.check import SafetyReport
from cli_ai.spec import TuningSpec
from cli_ai.targets.base import Target, TargetSession
from cli_ai.targets.exports import MOSQUITTO_EXPORTS, checked_result_values


class BrokerTarget(Target):
    name = "mosquitto"
    exports = MOSQUITTO_EXPORTS
    cli_flags = ("replay_buffer_size", "replay_alpha", "replay_beta", "replay_beta_increment", "enable_workload",
                 "total_timesteps")

    def doctor_checks(self, proc_root: str):
        from cli_ai.broker.process import find_mosquitto
        from cli_ai.errors import CliAiError

        try:
            where = find_mosquitto()
        except CliAiError as exc:
            return [("mosquitto target: broker", None, str(exc))]
        return [("mosquitto target: broker", True, where)]

    def result_values(self, result):
        from cli_ai.broker.options import catalog

        options = catalog()

        def entry_of(name: str):
            opt = options.get(name)
            return (opt.entry, None) if opt is not None else (None, "not a mosquitto option cli-ai tunes")

        return checked_result_values(result, entry_of)

    def check(self, spec: TuningSpec, *, clamp: bool, dry_run: bool, proc_root: str) -> SafetyReport:
        from cli_ai.broker.checks import check_mosquitto_spec

        return check_mosquitto_spec(spec, clamp=clamp, real_run=not dry_run)

    def runs(self, run: Any) -> list[tuple[str, str]]:
        """A managed run starts its own broker; an attached one edits the
        broker's config file and runs its reload (and restart) command."""
        import shlex

        from cli_ai.broker.settings import BrokerSettings

        s = BrokerSettings.from_spec(run.spec)
        if s.attach is None:
            return [("Starts its own broker (exact argv)",
                     shlex.join([s.binary or "mosquitto", "-c", "<its config in a private temp dir>"]))]
        lines = [("Edits the broker config (journaled, restored at the end)", s.attach.config_file),
                 ("Runs after each change (exact argv)", shlex.join(s.attach.reload_command))]
        if s.attach.restart_command:
            lines.append(("Runs for restart-only options (exact argv)", shlex.join(s.attach.restart_command)))
        return lines

    def writes_machine(self, run: Any) -> bool:
        """An attached broker's config file is the machine's; a managed broker
        lives in a private temp dir."""
        from cli_ai.broker.settings import BrokerSettings

        return not run.dry_run and BrokerSettings.from_spec(run.spec).attach is not None

    def search_steps(self, options: Any) -> int | None:
        return options.broker.get("total_timesteps")

    def current_values(self, spec: TuningSpec, space: Any, *, dry_run: bool, proc_root: str) -> dict[str, Value]:
        from cli_ai.broker.target import broker_current_values

        return broker_current_values(spec)

    def session(self, run: Any, options: Any, sink) -> TargetSession:
        from cli_ai.broker.target import MosquittoTarget, broker_reward
        from cli_ai.tactician.observe import SystemObserver
        from cli_ai.targets.evaluation import dry_session

        spec = run.spec
        reward = broker_reward(spec)
        if run.dry_run:
            return dry_session(run, reward)
        broker = MosquittoTarget(spec, seed=run.seed, options=_broker_options(spec, options), sink=sink)
        return TargetSession(broker.backend, broker.evaluate, SystemObserver(), reward, closer=broker)

    def make_env(self, run: Any, session: TargetSession, guard: Any, **common: Any):
        if session.closer is None:  # a dry run: the surrogate behind the common env
            return super().make_env(run, session, guard, **common)
        from cli_ai.broker.target import make_broker_env

        broker = session.closer
        for path, backup in broker.journal_files():
            guard.record_file(path, backup)
        return make_broker_env(run.spec, broker, guard.apply, space=run.space, **common)

    def fit_agent_plan(self, plan: Any, run: Any, options: Any) -> None:
        """Seed 000's --replay-* flags reach PER-DDPG's buffer and agent."""
        if run.algorithm != "per-ddpg":
            return
        broker_opts = _broker_options(run.spec, options)
        plan.replay_kwargs = broker_opts.replay_kwargs()
        plan.forced.update(broker_opts.agent_overrides())

    def step_columns(self, space: Any):
        from cli_ai.broker.target import broker_step_csv_row

        return lambda record: broker_step_csv_row(record, space)


def _broker_options(spec: TuningSpec, options: Any):
    """Seed 000's training flags of the run (`--total-timesteps` sets the budget instead)."""
    from cli_ai.broker.target import BrokerOptions

    flags = {k: v for k, v in options.broker.items() if k != "total_timesteps"}
    return BrokerOptions.from_spec(spec, **flags)
