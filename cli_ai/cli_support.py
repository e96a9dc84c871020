"""What every Typer app of cli-ai shares: the --debug state, a console
factory, the decorator that maps errors to exit codes and one-line messages,
and `run`, the entry point (--debug anywhere, a closed stdout pipe).

Imports only typer and the standard library, so that `cli-ai --help` stays fast."""

from __future__ import annotations

import functools
import os
import sys

import typer


class State:
    """Global options of the root command (set by its callback)."""

    debug = False


def make_console(json_mode: bool = False, quiet: bool = False):
    from cli_ai.console import Console

    return Console(json_mode=json_mode, quiet=quiet, debug=State.debug)


def handled(fn):
    """Map cli-ai errors to exit codes and one line per problem on stderr; an
    unexpected exception is an internal error (exit 1), traced with --debug."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from cli_ai.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, CliAiError

        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except CliAiError as exc:
            console = make_console()
            if State.debug:
                console.traceback()
            console.error(exc.lines())
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            make_console().error(["interrupted"])
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:  # a bug: say so in one line, trace with --debug
            if isinstance(exc, BrokenPipeError) and stdout_gone():
                # the reader of stdout left (`| head`); a benchmark's socket stays an error
                raise typer.Exit(_quiet_broken_pipe()) from None
            console = make_console()
            if State.debug:
                console.traceback()
            console.error([f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"])
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper


DEBUG_FLAG = "--debug"


def take_debug(args: list[str]) -> tuple[list[str], bool]:
    """`--debug` is an option of the root command; accept it after the
    subcommand too (`cli-ai tune SPEC --debug`): the arguments without it
    (up to a `--`, after which everything is an argument) and whether it was given."""
    end = args.index("--") if "--" in args else len(args)
    kept = [a for a in args[:end] if a != DEBUG_FLAG] + args[end:]
    return kept, len(kept) != len(args)


def stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (poll says POLLERR)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.__stdout__.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def _quiet_broken_pipe() -> int:
    """Point stdout at /dev/null so that the flush at exit raises nothing more
    (the Python docs' recipe for SIGPIPE), and give the exit status of a Unix tool
    killed by SIGPIPE."""
    from cli_ai.errors import EXIT_BROKEN_PIPE

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
    return EXIT_BROKEN_PIPE


def _click_saw_broken_pipe() -> bool:
    # Typer (like Click) turns an EPIPE outside the commands (e.g. while printing
    # --help) into exit 1 after wrapping stdout in a PacifyFlushWrapper.
    return type(sys.stdout).__name__ == "PacifyFlushWrapper"


def run(app: typer.Typer, args: list[str] | None = None) -> None:
    """The `cli-ai` entry point: runs `app` with --debug taken from anywhere in
    the arguments, and ends quietly with exit 141 when stdout's reader has gone."""
    args, debug = take_debug(list(sys.argv[1:] if args is None else args))
    if debug:
        State.debug = True
    try:
        app(args=args, prog_name="cli-ai")
    except SystemExit as exc:
        # rich ends a write to a closed pipe with SystemExit(1) (its own recipe)
        if _click_saw_broken_pipe() or isinstance(exc.__context__, BrokenPipeError):
            raise SystemExit(_quiet_broken_pipe()) from None
        _flush_or_quit(exc.code)
        raise
    _flush_or_quit(0)


def _flush_or_quit(code) -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise SystemExit(_quiet_broken_pipe()) from None
