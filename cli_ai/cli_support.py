"""What every Typer app of cli-ai shares: the --debug state, a console
factory, and the decorator that maps errors to exit codes and one-line messages.

Imports only typer and the standard library, so that `cli-ai --help` stays fast."""

from __future__ import annotations

import functools

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
            console = make_console()
            if State.debug:
                console.traceback()
            console.error([f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"])
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper
