"""``artsim train``: manifest -> group split -> cached features -> heads trained with Lightning.

A run folder holds ``config.yaml`` (resolved), ``split.csv``, ``problems.txt`` (rows skipped),
``metrics.jsonl`` (one row per epoch), ``summary.json``, ``model.safetensors`` + ``model.json``
(what a user shares; no pickle) and ``checkpoints/`` (resume state).
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import lightning.pytorch as pl
import torch
import typer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, RichProgressBar
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from artsim.commands import run_app
from artsim.data.manifest import load_manifest, write_problems
from artsim.data.split import (
    carve_calibration,
    group_split,
    read_split,
    split_sizes,
    write_split,
)
from artsim.errors import DataError, UserError
from artsim.model.features import FeatureCache, compute_image_features, compute_text_features
from artsim.model.heads import ModelConfig, save_model
from artsim.model.towers import create_image_tower, create_text_tower
from artsim.train.callbacks import AtomicCheckpointIO, MetricsJsonlWriter, read_metrics
from artsim.train.config import TrainConfig, read_config, resolve_config, write_config
from artsim.train.datamodule import FeatureDataModule, build_feature_set
from artsim.train.finetune import FinetuneDataModule, FinetuneModule, PixelSet
from artsim.train.module import NonFiniteLossError, TripletModule

console = Console(highlight=False)

# Lightning advertises a cloud logger at every fit and warns about its own internals: neither is
# anything a user of artsim can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


class _NoAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdverts())

SEED_TABLE_ROWS = [
    ("epochs completed", "epochs_completed"),
    ("final learning rate", "final_lr"),
    ("train loss", "train/loss"),
    ("train triplet accuracy", "train/triplet_acc"),
    ("validation loss", "val/loss"),
    ("validation triplet accuracy", "val/triplet_acc"),
    ("image loss / accuracy", ("val/image_loss", "val/image_acc")),
    ("text loss / accuracy", ("val/text_loss", "val/text_acc")),
    ("cross-modal loss / accuracy", ("val/cross_loss", "val/cross_acc")),
    ("image-to-text accuracy (i2t)", "val/i2t_acc"),
    ("text-to-image accuracy (t2i)", "val/t2i_acc"),
]


class TrainingStopped(UserError):
    """Training could not go on (NaN loss); the last good checkpoint is kept."""

    exit_code = 1


def _is_global_zero() -> bool:
    # Lightning's DDP launcher starts the other processes with these set.
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled or not _is_global_zero(),
    )


def _resolve_split(config: TrainConfig, manifest, out: Path, resume: bool) -> dict[str, str]:
    saved = out / "split.csv"
    if resume and saved.is_file():
        return read_split(saved, manifest)
    if config.split:
        return read_split(config.split, manifest)
    assignment = group_split(manifest.items, config.val_fraction, seed=config.seed)
    return carve_calibration(assignment, manifest.items, config.calib_fraction, seed=config.seed)


def train_run(config: TrainConfig, resume: bool = False) -> Path:
    """Train one run as ``config`` says and return its folder.

    With ``resume`` the run continues from ``RUN_DIR/checkpoints/last.ckpt`` (same split, same
    data) and ends with the figures an uninterrupted run would have.
    """
    config.validate()
    out = Path(config.out)
    is_zero = _is_global_zero()
    if resume and (out / "config.yaml").is_file():
        saved = read_config(out / "config.yaml")
        if (saved.data, saved.seed, saved.image_tower, saved.text_tower) != (
            config.data,
            config.seed,
            config.image_tower,
            config.text_tower,
        ):
            raise UserError(
                f"{out}: --resume needs the options of the interrupted run "
                f"(it used --data {saved.data} --seed {saved.seed} --image-tower "
                f"{saved.image_tower} --text-tower {saved.text_tower})"
            )
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(config.data, max_pixels=config.max_pixels)
    if is_zero:
        write_problems(manifest, out / "problems.txt")
        for problem in manifest.problems[:20]:
            console.print(f"[yellow]{problem.format(str(manifest.path))}[/]", markup=True)
        if len(manifest.problems) > 20:
            console.print(f"... {len(manifest.problems) - 20} more in {out / 'problems.txt'}")
    if not manifest.items:
        raise DataError(f"{config.data}: no usable rows (see {out / 'problems.txt'})")

    assignment = _resolve_split(config, manifest, out, resume)
    train_items = [item for item in manifest.items if assignment.get(item.id) == "train"]
    val_items = [item for item in manifest.items if assignment.get(item.id) == "val"]
    if not train_items or not val_items:
        raise DataError(
            f"{config.data}: the split leaves {len(train_items)} training and {len(val_items)} "
            "validation items; both sides need at least one group"
        )
    sizes = split_sizes(assignment, manifest.items)
    if is_zero:
        write_config(config, out / "config.yaml")
        write_split(assignment, out / "split.csv")
        console.print(
            f"split: train {sizes['train']['items']} items / {sizes['train']['groups']} groups, "
            f"val {sizes['val']['items']} items / {sizes['val']['groups']} groups, "
            + (
                f"calib {sizes['calib']['items']} items / {sizes['calib']['groups']} groups "
                "(kept for calibrating verdicts)"
                if "calib" in sizes
                else "no calibration part"
            )
        )

    image_tower = create_image_tower(config.image_tower)
    text_tower = create_text_tower(config.text_tower)
    device = (
        "cuda"
        if torch.cuda.is_available() and config.accelerator in ("auto", "gpu", "cuda")
        else "cpu"
    )
    items = train_items + val_items
    with _progress(config.progress) as progress:
        task = progress.add_task(f"image features ({image_tower.name})", total=len(items))
        image_features = compute_image_features(
            image_tower,
            [item.image for item in items],
            FeatureCache(config.cache_dir, image_tower.version),
            max_pixels=config.max_pixels,
            progress=lambda n: progress.advance(task, n),
            device=device,
        )
        texts = [item.text for item in items]
        task = progress.add_task(f"text features ({text_tower.name})", total=len(texts))
        text_features = compute_text_features(
            text_tower,
            texts,
            FeatureCache(config.cache_dir, text_tower.version),
            progress=lambda n: progress.advance(task, n),
        )
    tower_versions = (image_tower.version, text_tower.version)
    del image_tower  # the heads train on cached features; free the tower's memory

    groups = sorted({item.group for item in items})
    group_index = {group: k for k, group in enumerate(groups)}
    n_train = len(train_items)
    train_set = build_feature_set(
        train_items,
        image_features[:n_train],
        text_features[:n_train],
        group_index,
        config.hard_negatives,
    )
    val_set = build_feature_set(
        val_items,
        image_features[n_train:],
        text_features[n_train:],
        group_index,
        config.hard_negatives,
    )
    model_config = ModelConfig(
        image_tower=config.image_tower,
        text_tower=config.text_tower,
        image_feature_dim=int(image_features.shape[1]),
        text_feature_dim=int(text_features.shape[1]),
        tower_versions=tower_versions,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        dropout=config.dropout,
    )

    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = TripletModule(model_config, config)
    datamodule = FeatureDataModule(
        train_set, val_set, config.groups_per_batch, config.items_per_group, config.seed
    )
    started = time.perf_counter()

    def stopped(error: NonFiniteLossError, stage: Stage) -> TrainingStopped:
        if stage.trainer.is_global_zero:
            _write_summary(out, config, stage, [], sizes, manifest, time.perf_counter() - started)
        kept = f"; the last good checkpoint is {stage.last}" if stage.last.is_file() else ""
        return TrainingStopped(f"training stopped: {error}{kept}")

    heads = Stage("heads", out, out / "checkpoints", config, config.max_epochs)
    marker = out / "checkpoints" / "heads.done"
    if resume and marker.is_file() and config.finetune_epochs > 0:
        heads.reason = marker.read_text(encoding="utf-8").strip()  # stage one had finished
    else:
        try:
            heads.fit(module, datamodule, resume)
        except NonFiniteLossError as error:
            raise stopped(error, heads) from None
        if heads.trainer.is_global_zero:
            marker.write_text(heads.reason + "\n", encoding="utf-8")
    module.load_state_dict(heads.best_state())
    stages = [heads]

    tower_state = None
    if config.finetune_epochs > 0:
        tower = create_image_tower(config.image_tower)
        finetune = FinetuneModule(model_config, config, tower)
        finetune.model.load_state_dict(module.model.state_dict())
        pixels = FinetuneDataModule(
            PixelSet(train_items, train_set, tower, True, config.seed, config.max_pixels),
            PixelSet(val_items, val_set, tower, False, config.seed, config.max_pixels),
            config,
        )
        rows_so_far = len(read_metrics(out / "metrics.jsonl"))
        tuning = Stage(
            "finetune",
            out,
            out / "checkpoints" / "finetune",
            config,
            config.finetune_epochs,
            rows_so_far,
        )
        try:
            tuning.fit(finetune, pixels, resume)
        except NonFiniteLossError as error:
            raise stopped(error, tuning) from None
        stages.append(tuning)
        # fine-tuning is kept only where it beat the heads alone on the validation groups
        tuning.kept = tuning.best_score() < heads.best_score()
        if tuning.kept:
            finetune.load_state_dict(tuning.best_state())
            module.model.load_state_dict(finetune.model.state_dict())
            tower_state = finetune.tower_state()
    if not stages[-1].trainer.is_global_zero:
        return out
    summary = _write_summary(
        out, config, heads, stages, sizes, manifest, time.perf_counter() - started
    )
    save_model(
        module.model.cpu(),
        out,
        extra={
            "trained_on": manifest.fingerprint(),
            "best_epoch": summary["best_epoch"],
            "run": str(out),
        },
        tower_state=tower_state,
    )
    return out


class Stage:
    """One Lightning fit with its checkpoints, early stopping and metrics rows."""

    def __init__(
        self,
        name: str,
        out: Path,
        folder: Path,
        config: TrainConfig,
        max_epochs: int,
        epoch_offset: int = 0,
    ):
        self.name, self.folder, self.config = name, folder, config
        self.last = folder / "last.ckpt"
        self.reason = "not_run"
        self.kept = True
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
            MetricsJsonlWriter(out / "metrics.jsonl", epoch_offset=epoch_offset, stage=name),
            self.early_stopping,
            self.checkpoint,
            last_checkpoint,
        ]
        if config.progress:
            callbacks.append(RichProgressBar(leave=False))
        world = config.devices * config.num_nodes
        self.max_epochs = max_epochs
        self.trainer = pl.Trainer(
            max_epochs=max_epochs,
            accelerator=config.accelerator,
            devices=config.devices,
            num_nodes=config.num_nodes,
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

    def fit(
        self, module: pl.LightningModule, datamodule: pl.LightningDataModule, resume: bool
    ) -> None:
        ckpt_path = str(self.last) if resume and self.last.is_file() else None
        if resume and ckpt_path is None and _is_global_zero():
            console.print(
                f"[yellow]no checkpoint in {self.folder}: stage {self.name} starts anew[/]"
            )
        self.trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        if self.early_stopping.stopped_epoch > 0:
            self.reason = "early_stopping"
        elif self.trainer.current_epoch >= self.max_epochs:
            self.reason = "max_epochs"
        else:
            self.reason = "interrupted"

    def best_score(self) -> float:
        score = self.checkpoint.best_model_score
        if score is None and self.checkpoint.best_model_path:
            return float("inf")
        return float(score) if score is not None else float("inf")

    def best_state(self) -> dict[str, torch.Tensor]:
        best = self.folder / "best.ckpt"
        return torch.load(best, map_location="cpu", weights_only=True)["state_dict"]

    def final_lr(self) -> float | None:
        optimizers = self.trainer.optimizers
        return optimizers[0].param_groups[0]["lr"] if optimizers else None


def _write_summary(out, config, heads, stages, sizes, manifest, seconds) -> dict[str, Any]:
    rows = read_metrics(out / "metrics.jsonl") if (out / "metrics.jsonl").exists() else []
    best_row = min(rows, key=lambda r: r.get("val/loss", float("inf"))) if rows else {}
    failed = not stages  # a NaN loss: the stage that failed is `heads`' or the fine-tune's
    last_stage = stages[-1] if stages else heads
    summary = {
        "epochs_completed": len(rows),
        "stop_reason": "nan_loss" if failed else heads.reason,
        "best_epoch": best_row.get("epoch"),
        "best_val_loss": best_row.get("val/loss"),
        "final_lr": last_stage.final_lr() or config.lr,
        "stages": [
            {
                "stage": s.name,
                "stop_reason": s.reason,
                "kept": s.kept,
                "best_val_loss": s.best_score(),
            }
            for s in stages
        ],
        "val_fraction": None if config.split else config.val_fraction,
        "split_file": config.split,
        "seed": config.seed,
        "image_tower": config.image_tower,
        "text_tower": config.text_tower,
        "train_size": sizes["train"],
        "val_size": sizes["val"],
        "calib_size": sizes.get("calib", {"items": 0, "groups": 0}),
        "calib_fraction": None if config.split else config.calib_fraction,
        "data": str(Path(config.data).resolve()),
        "data_fingerprint": manifest.fingerprint(),
        "skipped_rows": len(manifest.errors),
        "train_seconds": round(seconds, 2),
        "best_checkpoint": str(heads.checkpoint.best_model_path or ""),
        "final": rows[-1] if rows else {},
        "best": best_row,
        "config": asdict(config),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def seed_table(summary: dict[str, Any], title: str = "the seed's figures") -> Table:
    """The seed's table of figures for one run (final epoch, like the seed reports them)."""
    final = {
        **summary.get("final", {}),
        **{k: summary.get(k) for k in ("epochs_completed", "final_lr")},
    }
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")

    def show(key: str) -> str:
        value = final.get(key)
        if value is None:
            return "-"
        if key == "epochs_completed":
            return str(value)
        return f"{value:.5g}"

    for label, keys in SEED_TABLE_ROWS:
        text = " / ".join(show(k) for k in keys) if isinstance(keys, tuple) else show(keys)
        table.add_row(label, text)
    table.caption = (
        f"stopped by {summary.get('stop_reason')}; best epoch {summary.get('best_epoch')}"
    )
    return table


def train_command(
    data: Annotated[str | None, typer.Option(help="manifest (CSV, JSONL or Parquet)")] = None,
    out: Annotated[str | None, typer.Option(help="run folder")] = None,
    val_fraction: Annotated[
        float | None, typer.Option(help="validation share by group: 0.2 = 80/20")
    ] = None,
    calib_fraction: Annotated[
        float | None,
        typer.Option(help="share of the validation groups kept for calibrating verdicts (0.5)"),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="split file (id,split) instead of --val-fraction")
    ] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    config: Annotated[str | None, typer.Option("--config", help="YAML file of options")] = None,
    max_epochs: Annotated[int | None, typer.Option()] = None,
    image_tower: Annotated[
        str | None, typer.Option(help="efficientnet-lite0, tiny, open_clip:ARCH:FILE")
    ] = None,
    text_tower: Annotated[
        str | None, typer.Option(help="e5-small, minilm, tiny, open_clip:ARCH:FILE")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="initial learning rate")] = None,
    margin: Annotated[float | None, typer.Option(help="triplet margin (cosine distance)")] = None,
    miner: Annotated[str | None, typer.Option(help="random, semihard or hard")] = None,
    hard_negatives: Annotated[str | None, typer.Option(help="artist or category")] = None,
    cache_dir: Annotated[str | None, typer.Option(help="feature cache folder")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue from RUN_DIR/checkpoints/last.ckpt")
    ] = False,
    devices: Annotated[
        int | None, typer.Option(help="processes/GPUs per machine (DDP when > 1)")
    ] = None,
    num_nodes: Annotated[int | None, typer.Option(help="machines")] = None,
    accelerator: Annotated[str | None, typer.Option(help="auto, cpu or gpu")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> int:
    """Train the multimodal triplet model on a manifest."""
    resolved = resolve_config(
        config,
        data=data,
        out=out,
        val_fraction=val_fraction,
        calib_fraction=calib_fraction,
        split=split,
        seed=seed,
        max_epochs=max_epochs,
        image_tower=image_tower,
        text_tower=text_tower,
        lr=lr,
        margin=margin,
        miner=miner,
        hard_negatives=hard_negatives,
        cache_dir=cache_dir,
        devices=devices,
        num_nodes=num_nodes,
        accelerator=accelerator,
        progress=progress,
    )
    run_dir = train_run(resolved, resume=resume)
    if _is_global_zero():
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        console.print(
            seed_table(summary, title=f"{run_dir}: the seed's figures (validation split)")
        )
        console.print(f"model: {run_dir / 'model.safetensors'}")
    return 0


app = typer.Typer(add_completion=False)
app.command("train")(train_command)


def main(argv: list[str] | None = None) -> int:
    """``artsim train ...`` in-process."""
    return run_app(app, argv, prog_name="artsim train")
