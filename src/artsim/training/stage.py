"""One Lightning fit of a run (the heads stage or the fine-tune stage) with its checkpoints."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from artsim.progress import Reporter, or_silent
from artsim.runfolder import metrics_path, read_metrics, write_text_atomic
from artsim.training.callbacks import AtomicCheckpointIO, MetricsJsonlWriter
from artsim.training.config import TrainConfig
from artsim.training.module import NonFiniteLossError

# Lightning advertises a cloud logger at every fit and warns about its own internals: neither is
# anything a user of artsim can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


class _NoAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdverts())

ProgressBarFactory = Callable[[], pl.Callback]


def is_global_zero() -> bool:
    """True in the process that writes files (always, without DDP)."""
    # Lightning's DDP launcher starts the other processes with these set.
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


class Stage:
    """One Lightning fit with its checkpoints, early stopping and metrics rows.

    ``progress_bar`` makes the Lightning progress-bar callback (the commands pass rich's); without
    it Lightning shows its default bar when ``config.progress`` is on.
    """

    def __init__(
        self,
        name: str,
        out: Path,
        folder: Path,
        config: TrainConfig,
        max_epochs: int,
        epoch_offset: int = 0,
        progress_bar: ProgressBarFactory | None = None,
        reporter: Reporter | None = None,
    ):
        self.name, self.out, self.folder, self.config = name, out, folder, config
        self.reporter = or_silent(reporter)
        self.progress_bar = progress_bar
        self.last = folder / "last.ckpt"
        self.reason = "not_run"
        self.kept = True
        self.details: dict = {}  # more for summary.json's stage entry (the fine-tune's items)
        self.recorded_best: float | None = None  # a finished stage's best, from its marker
        self.checkpoint = ModelCheckpoint(
            dirpath=folder,
            filename="best",
            monitor="val/loss",
            mode="min",
            save_top_k=1,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
        )
        # A second checkpoint for resuming, written every epoch whatever the monitored value does.
        last_checkpoint = ModelCheckpoint(
            dirpath=folder,
            filename="last",
            monitor=None,
            save_top_k=1,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
        )
        self.early_stopping = EarlyStopping(
            monitor="val/loss",
            mode="min",
            patience=config.early_stopping_patience,
            min_delta=config.early_stopping_min_delta,
            check_finite=True,
        )
        callbacks: list[pl.Callback] = [
            MetricsJsonlWriter(metrics_path(out), epoch_offset=epoch_offset, stage=name),
            self.early_stopping,
            self.checkpoint,
            last_checkpoint,
        ]
        if config.progress and progress_bar is not None:
            callbacks.append(progress_bar())
        world = config.devices * config.num_nodes
        self.max_epochs = max_epochs
        self.trainer = pl.Trainer(
            max_epochs=max_epochs,
            accelerator=config.accelerator,
            devices=config.devices,
            num_nodes=config.num_nodes,
            precision=config.precision,
            strategy="ddp" if world > 1 else "auto",
            callbacks=callbacks,
            logger=False,
            plugins=[AtomicCheckpointIO()],
            num_sanity_val_steps=0,
            enable_model_summary=False,
            enable_progress_bar=config.progress,
            use_distributed_sampler=False,
            deterministic=name == "heads",  # some backward kernels of the tower have none
            default_root_dir=str(out),
        )

    @property
    def marker(self) -> Path:
        """Written when the stage's fit ends: its stop reason and best validation loss."""
        return self.folder / f"{self.name}.done"

    def mark_done(self) -> None:
        write_marker(self.marker, self.reason, self.best_score())

    def ended_before(self, resume: bool, followed: bool) -> bool:
        """On a resume, take a stage that had ended from its marker instead of fitting it again.

        A stage that stopped early stays stopped (its resumed trainer would run another epoch:
        the stop is not in the checkpoint). One that reached its epoch limit is taken as it is
        when a later stage follows (``followed``); as the last stage it is fitted again, which
        trains nothing unless a resume with changes gave it more epochs.
        """
        if not (resume and self.marker.is_file()):
            return False
        reason, best = read_marker(self.marker, self.out, self.name)
        if reason != "early_stopping" and not followed:
            return False
        self.reason, self.recorded_best = reason, best
        return True

    def fit_unless_ended(self, module, datamodule, resume: bool, *, followed: bool, stopped):
        """:meth:`fit`, marked done after, unless :meth:`ended_before`; a NaN loss raises what
        ``stopped(error, stage)`` makes of it."""
        if self.ended_before(resume, followed):
            return
        try:
            self.fit(module, datamodule, resume)
        except NonFiniteLossError as error:
            raise stopped(error, self) from None
        if self.trainer.is_global_zero:
            self.mark_done()

    def fit(
        self, module: pl.LightningModule, datamodule: pl.LightningDataModule, resume: bool
    ) -> None:
        ckpt_path = str(self.last) if resume and self.last.is_file() else None
        if resume and ckpt_path is None and is_global_zero():
            self.reporter.note(
                f"no checkpoint in {self.folder}: stage {self.name} starts anew", "warning"
            )
        try:
            self.trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except SystemExit:
            # Lightning turns Ctrl-C into sys.exit(1) after a graceful stop, and ignores SIGINT
            # from then on: give Ctrl-C back and let the caller say how to resume.
            if self.trainer.interrupted:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt from None
            raise
        if self.early_stopping.stopped_epoch > 0:
            self.reason = "early_stopping"
        elif self.trainer.current_epoch >= self.max_epochs:
            self.reason = "max_epochs"
        else:
            self.reason = "interrupted"

    def best_score(self) -> float:
        """The best validation loss of this stage (inf when it has none: compare, never write)."""
        if self.recorded_best is not None:
            return self.recorded_best
        score = self.checkpoint.best_model_score
        return float(score) if score is not None else float("inf")

    def best_state(self) -> dict[str, torch.Tensor]:
        best = self.folder / "best.ckpt"
        return torch.load(best, map_location="cpu", weights_only=True)["state_dict"]

    def final_lr(self) -> float | None:
        optimizers = self.trainer.optimizers
        return optimizers[0].param_groups[0]["lr"] if optimizers else None


def is_finite_number(value: object) -> bool:
    return isinstance(value, float | int) and math.isfinite(value)


def write_marker(marker: Path, reason: str, best: float) -> Path:
    """A stage's stop reason and best validation loss, written atomically: a kill mid-write
    leaves the marker as it was (or absent), never a garbled reason that a resume would trust."""
    record = {"reason": reason, "best_val_loss": best if math.isfinite(best) else None}
    return write_text_atomic(marker, json.dumps(record) + "\n")


def read_marker(marker: Path, out: Path, stage: str = "heads") -> tuple[str, float | None]:
    """A finished stage's stop reason and best validation loss.

    Older markers hold the reason alone: the best loss is then the lowest of the stage's rows.
    """
    text = marker.read_text(encoding="utf-8").strip()
    try:
        saved = json.loads(text)
    except json.JSONDecodeError:
        saved = None
    if not isinstance(saved, dict):
        saved = {"reason": text}
    best = saved.get("best_val_loss")
    if not is_finite_number(best):
        losses = [
            row["val/loss"]
            for row in read_metrics(out)
            if row.get("stage", "heads") == stage and is_finite_number(row.get("val/loss"))
        ]
        best = min(losses) if losses else None
    return str(saved.get("reason", "max_epochs")), best
