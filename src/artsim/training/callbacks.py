"""Callbacks and plugins that make runs inspectable and safe to interrupt."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from artsim.runfolder import (
    append_metrics_row,
    dumps_row,
    loads_row,
    read_metrics,
    replacing,
    write_metrics,
)

# the metrics-row format lives in artsim.runfolder; these names stay importable from here
__all__ = [
    "AtomicCheckpointIO",
    "MetricsJsonlWriter",
    "dumps_row",
    "loads_row",
    "read_metrics",
]


class MetricsJsonlWriter(pl.Callback):
    """Appends one row per epoch to ``metrics.jsonl`` (process 0 writes, every process reduces).

    The row is written before the epoch's checkpoint (checkpoint callbacks run last), so after a
    crash the file never lacks an epoch the checkpoint has; rows of epochs the checkpoint lacks are
    dropped when the run resumes and are written again.
    """

    def __init__(self, path: str | Path, epoch_offset: int = 0, stage: str = "heads"):
        self.path = Path(path)
        self.epoch_offset, self.stage = epoch_offset, stage
        self._started = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        # epochs already completed: earlier stages' and this one's restored from a checkpoint
        done = self.epoch_offset + trainer.current_epoch
        kept = [row for row in read_metrics(self.path) if row["epoch"] <= done]
        write_metrics(self.path, kept)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row: dict[str, Any] = {
            "epoch": self.epoch_offset + trainer.current_epoch + 1,
            "stage": self.stage,
            "lr": pl_module.epoch_lr,
        }
        row.update(pl_module.train_epoch_means())  # a collective call: every process makes it
        row.update(pl_module.val_figures)
        row["epoch_seconds"] = round(time.perf_counter() - self._started, 4)
        if trainer.is_global_zero:
            append_metrics_row(self.path, row)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file, synced, then renamed over the old one; read back
    with ``weights_only=True`` (no pickled code from a checkpoint file is ever run)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as temporary, temporary.open("wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
