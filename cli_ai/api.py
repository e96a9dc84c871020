"""The Python API of seed 004: `run_rl_optimization(config_path, dry_run, verbose)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_rl_optimization(
    config_path: str | Path,
    dry_run: bool = False,
    verbose: bool = True,
    *,
    budget: int | None = None,
    algorithm: str | None = None,
    seed: int | None = None,
    output_dir: str | None = None,
    clamp: bool = False,
) -> dict[str, Any]:
    """Tune the spec at `config_path` and return the result as a dict.

    The dict holds `success`, `best_config`, `baseline`, `best`, `improvement`
    (percent) and `run_dir`, plus everything `result.json` holds. Calling this
    function is the caller's consent to the run (as `--yes` on the command
    line); original values are restored at the end as always. Errors (a bad
    spec, a refusal, a failing benchmark) give `success: False` with `error`
    and `exit_code` instead of raising, except an interruption, which is
    re-raised after the values were restored.
    """
    from cli_ai import tuning
    from cli_ai.errors import CliAiError, Interrupted

    sink = None
    if verbose:
        from cli_ai.console import Console
        from cli_ai.console.tune import TuneRenderer

        sink = TuneRenderer(Console())
    options = tuning.TuneOptions(dry_run=dry_run, budget=budget, algorithm=algorithm, seed=seed,
                                 output_dir=output_dir, yes=True, clamp=clamp)
    try:
        result = tuning.tune(config_path, options, **({"sink": sink} if sink else {}))
    except Interrupted:
        raise
    except CliAiError as exc:
        return {"success": False, "error": str(exc), "exit_code": exc.exit_code, "best_config": {},
                "baseline": None, "best": None, "improvement": None, "run_dir": None}
    return result.to_json()
