"""Run directories of the autoscaling toolkit, laid out as seed 002 lists them::

    <runs>/sarsa_run_<timestamp>/
      logs/training.log          structured log (one key=value line per episode)
      models/sarsa_final.pkl     final agent
      models/sarsa_ep<NNNN>.pkl   checkpoints
      models/sarsa_interrupt.pkl after Ctrl+C
      training_metrics.json      episode-level training metrics
      evaluation_metrics.json    checkpoint evaluation summaries
      plots/training_curves.png  training curves (evaluation overlay when present)
      config.json                what the run was started with

The DQN's live under ``dqn_run_<timestamp>/`` with ``.pt`` models; comparisons under
``<runs>/comparison/compare_<timestamp>/``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_SUFFIX = {"sarsa": ".pkl", "dqn": ".pt"}


def timestamp() -> str:
    return time.strftime("%Y%m%d_%H%M%S")


def unique_dir(parent: Path, name: str) -> Path:
    """parent/name, or parent/name_1, _2, ... if it exists already (two runs in one second)."""
    parent.mkdir(parents=True, exist_ok=True)
    candidate = parent / name
    n = 0
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = parent / f"{name}_{n}"


@dataclass
class RunDir:
    path: Path
    algorithm: str

    @classmethod
    def create(cls, output_dir: str | Path, algorithm: str) -> "RunDir":
        path = unique_dir(Path(output_dir), f"{algorithm}_run_{timestamp()}")
        for sub in ("logs", "models", "plots"):
            (path / sub).mkdir()
        return cls(path, algorithm)

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def models(self) -> Path:
        return self.path / "models"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def log_file(self) -> Path:
        return self.logs / "training.log"

    @property
    def training_metrics(self) -> Path:
        return self.path / "training_metrics.json"

    @property
    def evaluation_metrics(self) -> Path:
        return self.path / "evaluation_metrics.json"

    @property
    def training_plot(self) -> Path:
        return self.plots / "training_curves.png"

    def model(self, tag: str) -> Path:
        """models/<algo>_<tag><suffix>: tag is 'final', 'interrupt' or 'ep0025'."""
        return self.models / f"{self.algorithm}_{tag}{MODEL_SUFFIX[self.algorithm]}"

    def checkpoint(self, episode: int) -> Path:
        return self.model(f"ep{episode:04d}")

    def logger(self) -> logging.Logger:
        return file_logger(f"cli_ai.autoscale.{self.path.name}", self.log_file)


def file_logger(name: str, path: Path) -> logging.Logger:
    """A logger that writes only to `path` (never to the terminal: the console prints)."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger


def close_logger(logger: logging.Logger) -> None:
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (a temp file renamed over the target)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_clean(data), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_json(path: Path) -> Any:
    from cli_ai.errors import BadInputError

    from cli_ai.core.files import read_untrusted_text

    text = read_untrusted_text(path, "JSON file of an autoscale run")  # no FIFO, device or huge file
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None
    except (RecursionError, ValueError) as exc:
        raise BadInputError(f"{path}: not valid JSON ({type(exc).__name__})") from None


def format_kv(values: dict[str, Any]) -> str:
    """key=value pairs for one log line (floats with 4 decimals)."""
    parts = []
    for k, v in values.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.4f}")
        else:
            parts.append(f"{k}={v}")
    return " ".join(parts)
