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

import logging
import time
from pathlib import Path
from typing import Any

from cli_ai.results import RunDirectory

MODEL_SUFFIX = {"sarsa": ".pkl", "dqn": ".pt"}


def timestamp() -> str:
    return time.strftime("%Y%m%d_%H%M%S")


class RunDir(RunDirectory):
    """The engine's run directory in seed 002's layout: <algo>_run_<local
    time>/ (``_1``, ``_2`` for two runs in one second) with logs/, models/, plots/."""

    separator = "_"
    subdirs = ("logs", "models", "plots")

    def __init__(self, output_dir: str | Path, algorithm: str):
        super().__init__(output_dir, f"{algorithm}_run_{timestamp()}")
        self.algorithm = algorithm

    @classmethod
    def create(cls, output_dir: str | Path, algorithm: str) -> "RunDir":
        return cls(output_dir, algorithm)

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


def format_kv(values: dict[str, Any]) -> str:
    """key=value pairs for one log line (floats with 4 decimals)."""
    parts = []
    for k, v in values.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.4f}")
        else:
            parts.append(f"{k}={v}")
    return " ".join(parts)
