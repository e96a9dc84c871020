"""One small error hierarchy. The CLI maps each class to an exit code and prints
its message as one line per problem, so every message must say what is wrong,
where, and how to fix it."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
EXIT_TARGET_FAILURE = 4
EXIT_INTERRUPTED = 130
# stdout closed early (`cli-ai params | head -1`): quiet, with the status a Unix tool
# killed by SIGPIPE gets (128 + 13), so `set -o pipefail` sees it as `seq` or `grep` would show it.
EXIT_BROKEN_PIPE = 141


class CliAiError(Exception):
    """Base of every error cli-ai raises on purpose."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, problems: list[str] | None = None):
        self.problems = list(problems) if problems else [message]
        # str() of the error carries every problem, not a summary count.
        super().__init__("; ".join(self.problems))

    def lines(self) -> list[str]:
        """The message as one line per problem, for the console."""
        return [p.replace("\n", " ") for p in self.problems]


class BadInputError(CliAiError):
    """The person's input (a spec, a flag, a file) is malformed."""

    exit_code = EXIT_BAD_INPUT


class SpecError(BadInputError):
    """A tuning spec failed to parse or validate; `problems` holds one line per error."""


class StateError(BadInputError):
    """The state directory or a file in it (journal, lock) is unsafe to trust
    (owner, permissions, a symlink) or malformed; nothing was changed."""


class SafetyError(CliAiError):
    """Safety refused to let something touch the machine."""

    exit_code = EXIT_REFUSED


class ConfirmationRefused(SafetyError):
    """A change needs confirmation and none was given."""


class LockHeldError(SafetyError):
    """Another cli-ai run holds the machine lock."""


class JournalPendingError(SafetyError):
    """An earlier run left a journal of original values that was never restored."""


class OriginalsOutOfRange(SafetyError):
    """A journal asks to restore values outside the catalogue's safe range:
    `cli-ai rollback` restores them only when the person confirms."""


class TargetError(CliAiError):
    """The target (kernel, broker, program) or the benchmark failed."""

    exit_code = EXIT_TARGET_FAILURE


class BackendWriteError(TargetError):
    """A value could not be written, or the target did not take it."""


class BenchmarkError(TargetError):
    """The benchmark crashed, timed out, or its output lacks the metric."""


class TooManyFailures(TargetError):
    """The run stopped after too many consecutive failed steps."""


class RestoreError(TargetError):
    """Some original values could not be restored; the journal is kept."""


class StrategistError(CliAiError):
    """The strategist (LLM endpoint or offline planner) could not produce a spec."""

    exit_code = EXIT_TARGET_FAILURE


class GoalDeclined(StrategistError):
    """The goal names nothing cli-ai can tune (or is not a tuning request): no spec is planned."""

    exit_code = EXIT_BAD_INPUT


class BenchmarkCannotMeasure(StrategistError):
    """None of the plan's knobs can move the chosen benchmark: any "gain" would be noise."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str, *, problems: list[str] | None = None, params: tuple[str, ...] = ()):
        super().__init__(message, problems=problems)
        self.params = tuple(params)  # the params the goal pointed to, which no benchmark could show


class Interrupted(CliAiError):
    """Ctrl+C or another terminating signal (TERM, HUP, QUIT, USR1, ...) arrived; raised in the main thread so that
    every `with Guard(...)` block unwinds and restores."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, signum: int | None = None):
        import signal as _signal

        self.signum = signum
        try:
            name = _signal.Signals(signum).name if signum else "interrupt"
        except ValueError:  # a real-time signal: SIGRTMIN+n has no name of its own
            name = f"signal {signum}"
        super().__init__(f"interrupted by {name}")
