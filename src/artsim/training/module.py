"""The LightningModule: projection heads trained with the four-family triplet loss."""

from __future__ import annotations

import math
from dataclasses import asdict

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping

from artsim.losses import (
    TRIPLET_FAMILIES,
    LossWeights,
    MultimodalTripletLoss,
    TripletMarginLoss,
    create_miner,
    seed_document_figures,
)
from artsim.model.heads import ArtSimModel, ModelConfig
from artsim.training.config import TrainConfig
from artsim.training.gather import gather_batch

LOGGED_PARTS = (*TRIPLET_FAMILIES, "cross", "copy", "koleo")
TRAIN_KEYS = ("loss", "triplet_acc", *(f"{f}_loss" for f in LOGGED_PARTS))


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class TripletModule(pl.LightningModule):
    """Heads + loss + optimisation. Epoch figures are kept on the module for the metrics file."""

    def __init__(self, model_config: ModelConfig, config: TrainConfig):
        super().__init__()
        self.config = config
        self.model = ArtSimModel(model_config)
        loss = TripletMarginLoss(config.margin, create_miner(config.miner))
        self.criterion = MultimodalTripletLoss(
            loss, LossWeights(**config.loss_weights), temperature=config.copy_temperature
        )
        self._train_sums: dict[str, float] = {}
        self._train_batches = 0
        self.val_figures: dict[str, float] = {}
        self.epoch_lr = config.lr
        # set by a resume with --resume-with-changes: the checkpoint's optimiser, scheduler and
        # early-stopping settings give way to the configuration's
        self.apply_config_on_resume = False

    # -- training ---------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._train_sums = {key: 0.0 for key in TRAIN_KEYS}
        self._train_batches = 0
        self.epoch_lr = self.optimizers().param_groups[0]["lr"]

    def image_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The image tower's features of a batch: cached ones here (the fine-tune stage runs
        the tower)."""
        return batch["image"]

    def _affinity(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if self.config.hard_negatives is None:
            return None
        keys = batch["affinity"]
        return (keys[:, None] == keys[None, :]) & (keys[:, None] >= 0)

    def step_parts(
        self, batch: dict[str, torch.Tensor], batch_index: int
    ) -> dict[str, torch.Tensor]:
        """The loss parts of one training step, over the whole step's batch.

        Under DDP every process embeds its share and :func:`gather_batch` joins the shares
        before mining, so negatives come from every process's items and the loss is the one a
        single process would compute over the whole batch.
        """
        # Reseeding per step (dropout, random negatives) makes a resumed run draw exactly what an
        # uninterrupted one draws, whatever else consumed random numbers in between; every
        # process draws the same random negatives over the gathered batch.
        torch.manual_seed(
            (self.config.seed * 1_000_003 + self.current_epoch) * 10_007 + batch_index
        )
        shares = {
            "image": self.model.embed_image(self.image_features(batch)),
            "text": self.model.embed_text(batch["text"]),
            "label": batch["label"],
            "has_text": batch["has_text"],
        }
        if self.config.hard_negatives is not None:
            shares["affinity"] = batch["affinity"]
        joined = gather_batch(shares)
        return self.criterion(
            joined["image"],
            joined["text"],
            joined["label"],
            joined["has_text"],
            self._affinity(joined),
        )

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        parts = self.step_parts(batch, batch_index)
        total = parts["total"]
        if not torch.isfinite(total):
            raise NonFiniteLossError(
                f"the training loss became {float(total.detach())} at epoch {self.current_epoch}, "
                f"batch {batch_index}"
            )
        values = {"loss": total, "triplet_acc": parts["triplet_acc"]}
        values.update({f"{f}_loss": parts[f] for f in LOGGED_PARTS})
        for key, value in values.items():
            self._train_sums[key] += float(value.detach())
        self._train_batches += 1
        self.log(
            "train/loss",
            total,
            prog_bar=True,
            on_step=True,
            on_epoch=False,
            batch_size=len(batch["label"]),
        )
        return total

    def train_epoch_means(self) -> dict[str, float]:
        """Mean of each training figure over this epoch's batches (over all processes)."""
        sums = torch.tensor(
            [self._train_sums.get(k, 0.0) for k in TRAIN_KEYS] + [self._train_batches],
            device=self.device,
        )
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum").cpu()
        count = max(float(sums[-1]), 1.0)
        return {f"train/{k}": float(v) / count for k, v in zip(TRAIN_KEYS, sums[:-1], strict=True)}

    # -- validation -------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_parts: list[dict[str, torch.Tensor]] = []

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        self._val_parts.append(
            {
                "image": self.model.embed_image(self.image_features(batch)),
                "text": self.model.embed_text(batch["text"]),
                "label": batch["label"],
                "has_text": batch["has_text"],
            }
        )

    def on_validation_epoch_end(self) -> None:
        joined = {k: torch.cat([part[k] for part in self._val_parts]) for k in self._val_parts[0]}
        figures = seed_document_figures(
            joined["image"],
            joined["text"],
            joined["label"],
            joined["has_text"],
            margin=self.config.margin,
            seed=self.config.seed,
            weights=LossWeights(**self.config.loss_weights),
        )
        self.val_figures = {f"val/{k}": v for k, v in figures.items()}
        # every process computed the same numbers on the whole set: nothing to synchronise
        for key, value in self.val_figures.items():
            shown = key in ("val/loss", "val/triplet_acc")
            self.log(key, value if math.isfinite(value) else 0.0, prog_bar=shown, batch_size=1)
        if self.trainer.sanity_checking:
            return
        value = self.val_figures.get("val/loss", float("nan"))
        if math.isfinite(value):
            self.plateau.step(value)

    # -- optimisation -----------------------------------------------------------------------
    def parameter_groups(self) -> list[dict]:
        return [{"params": list(self.model.parameters()), "lr": self.config.lr}]

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameter_groups(), weight_decay=self.config.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=self.config.plateau_factor,
            patience=self.config.plateau_patience,
            min_lr=self.config.min_lr,
        )
        # Stepped by hand after validation, not by Lightning after the epoch: the epoch's
        # checkpoint is written in between, and a resumed run must see the reduced rate.
        self.plateau = scheduler
        return optimizer

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["plateau_scheduler"] = self.plateau.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._plateau_state = checkpoint.get("plateau_scheduler")

    def on_fit_start(self) -> None:
        state = getattr(self, "_plateau_state", None)
        if state is not None:
            self.plateau.load_state_dict(state)

    def on_train_start(self) -> None:
        if self.apply_config_on_resume:
            self.apply_config_hyperparameters()

    def apply_config_hyperparameters(self) -> None:
        """Put the configuration's rates, decay, plateau and early-stopping settings in force
        (a restored checkpoint brings the old ones back with the optimiser's state)."""
        optimizer = self.optimizers(use_pl_optimizer=False)
        for group, wanted in zip(optimizer.param_groups, self.parameter_groups(), strict=True):
            group["lr"] = wanted["lr"]
            group["weight_decay"] = self.config.weight_decay
        self.plateau.factor = self.config.plateau_factor
        self.plateau.patience = self.config.plateau_patience
        self.plateau.min_lrs = [self.config.min_lr] * len(optimizer.param_groups)
        for callback in self.trainer.callbacks:
            if isinstance(callback, EarlyStopping):
                callback.patience = self.config.early_stopping_patience
                # Lightning keeps min_delta signed by the direction of improvement (min: negative)
                callback.min_delta = -abs(self.config.early_stopping_min_delta)
        self.epoch_lr = optimizer.param_groups[0]["lr"]

    def hparams_for_checkpoint(self) -> dict:
        return {"model": asdict(self.model.config), "train": asdict(self.config)}
