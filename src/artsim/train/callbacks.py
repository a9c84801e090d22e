"""Callbacks and plugins that make runs inspectable and safe to interrupt."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


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
        rows = read_metrics(self.path) if self.path.exists() else []
        kept = [row for row in rows if row["epoch"] <= done]
        _atomic_write_text(self.path, "".join(dumps_row(row) + "\n" for row in kept))

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
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(dumps_row(row) + "\n")
                handle.flush()
                os.fsync(handle.fileno())


# JSON has no NaN or infinity: a non-finite figure is written as one of these strings and read
# back as the float (a diverged epoch's loss is a fact worth keeping, not a missing value).
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its name in :data:`NON_FINITE`."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def dumps_row(row: dict[str, Any]) -> str:
    """One metrics row as strict JSON (never a bare ``NaN``)."""
    return json.dumps(json_safe(row), allow_nan=False)


def loads_row(line: str) -> dict[str, Any]:
    """One metrics row; the names of non-finite figures (and a bare ``NaN`` written by older
    versions) become floats again."""
    row = json.loads(line)
    if not isinstance(row, dict):
        raise json.JSONDecodeError("a metrics row is a JSON object", line, 0)
    return {
        key: NON_FINITE[value] if isinstance(value, str) and value in NON_FINITE else value
        for key, value in row.items()
    }


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl``; a torn last line (a crash mid-write) ends the list."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            rows.append(loads_row(line))
        except json.JSONDecodeError:
            break
    return rows


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file, synced, then renamed over the old one; read back
    with ``weights_only=True`` (no pickled code from a checkpoint file is ever run)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        with temporary.open("wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
