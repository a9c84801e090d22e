"""``artsim train``: train the multimodal triplet model on a manifest (:mod:`artsim.training`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from artsim import runfolder
from artsim.cli.commands import run_app
from artsim.cli.progress import RichReporter

# artsim.training (torch, Lightning) is imported by the functions that train: `--help` needs none of it

console = Console(highlight=False)

SEED_DOCUMENT_TABLE_ROWS = [
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


def seed_document_table(summary: dict[str, Any], title: str = "the seed's figures") -> Table:
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

    for label, keys in SEED_DOCUMENT_TABLE_ROWS:
        text = " / ".join(show(k) for k in keys) if isinstance(keys, tuple) else show(keys)
        table.add_row(label, text)
    table.caption = (
        f"stopped by {summary.get('stop_reason')}; best epoch {summary.get('best_epoch')}"
    )
    return table


def train_with_progress(
    config, resume: bool = False, overwrite: bool = False, resume_with_changes: bool = False
):
    """:func:`artsim.training.run.train_run` with rich bars (features, epochs) and notes."""
    from lightning.pytorch.callbacks import RichProgressBar

    from artsim.training.run import train_run
    from artsim.training.stage import is_global_zero

    enabled = config.progress and is_global_zero()
    with RichReporter(console, enabled=enabled) as reporter:
        return train_run(
            config,
            resume=resume,
            resume_with_changes=resume_with_changes,
            overwrite=overwrite,
            reporter=reporter,
            progress_bar=lambda: RichProgressBar(leave=False),
        )


def train_command(
    data: Annotated[str | None, typer.Option(help="manifest (CSV, JSONL or Parquet)")] = None,
    out: Annotated[str | None, typer.Option(help="run folder")] = None,
    val_fraction: Annotated[
        float | None, typer.Option(help="validation share by group: 0.2 = 80/20")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="split file (id,split) instead of --val-fraction")
    ] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    config: Annotated[str | None, typer.Option("--config", help="YAML file of options")] = None,
    max_epochs: Annotated[int | None, typer.Option()] = None,
    image_tower: Annotated[
        str | None,
        typer.Option(help="efficientnet-lite0-gem, efficientnet-lite0, tiny, open_clip:ARCH:FILE"),
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
    resume_with_changes: Annotated[
        bool,
        typer.Option(
            "--resume-with-changes",
            help="resume although options differ from the run's (recorded in changes.log)",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="replace the run files already in a non-empty --out"),
    ] = False,
    precision: Annotated[
        str | None, typer.Option(help="32-true (default) or bf16-mixed (meant for CUDA)")
    ] = None,
    devices: Annotated[
        int | None, typer.Option(help="processes/GPUs per machine (DDP when > 1)")
    ] = None,
    num_nodes: Annotated[int | None, typer.Option(help="machines")] = None,
    accelerator: Annotated[str | None, typer.Option(help="auto, cpu or gpu")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    calib_fraction: Annotated[
        float | None,
        typer.Option(help="share of the validation groups kept for calibrating verdicts (0.5)"),
    ] = None,
    blend: Annotated[
        str | None,
        typer.Option(
            help="loso (trained/frozen blend chosen on leave-one-source-out folds), trained or "
            "frozen"
        ),
    ] = None,
    whiten_dim: Annotated[
        int | None, typer.Option(help="PCA-whitening of the frozen image part (0: none)")
    ] = None,
    loso_folds: Annotated[
        int | None,
        typer.Option(
            help="leave-one-source-out folds for the blend: 0 = one per source, k >= 2 = the "
            "sources grouped into k folds (fewer fold trainings on a corpus of many sources)"
        ),
    ] = None,
    text_blend_max: Annotated[
        float | None,
        typer.Option(
            help="the largest trained text part the folds may choose (default 0.05: their "
            "prompts share the training templates and overrate it)"
        ),
    ] = None,
    bridge_ratio: Annotated[
        float | None,
        typer.Option(
            help="how much the ConSE bridge (ImageNet classes -> text) counts against the "
            "trained heads in image <-> text search (0: none; default 2)"
        ),
    ] = None,
    loss_weight: Annotated[
        list[str] | None,
        typer.Option(
            help="PART=WEIGHT of a loss part (image, text, cross, copy, koleo), repeatable; "
            "copy and koleo are 0 unless given"
        ),
    ] = None,
    copy_temperature: Annotated[
        float | None, typer.Option(help="temperature of the copy part's softmax (0.1)")
    ] = None,
    copy_views: Annotated[
        int | None,
        typer.Option(help="augmented views per training original added to its group (0: none)"),
    ] = None,
) -> int:
    """Train the multimodal triplet model on a manifest."""
    from artsim.training.config import parse_loss_weights, resolve_config
    from artsim.training.stage import is_global_zero

    resolved = resolve_config(
        config,
        data=data,
        out=out,
        val_fraction=val_fraction,
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
        precision=precision,
        progress=progress,
        calib_fraction=calib_fraction,
        blend=blend,
        whiten_dim=whiten_dim,
        bridge_ratio=bridge_ratio,
        loso_folds=loso_folds,
        text_blend_max=text_blend_max,
        loss_weights=parse_loss_weights(loss_weight) if loss_weight else None,
        copy_temperature=copy_temperature,
        copy_views=copy_views,
    )
    run_dir = train_with_progress(
        resolved, resume=resume, overwrite=overwrite, resume_with_changes=resume_with_changes
    )
    if is_global_zero():
        summary = runfolder.read_summary(run_dir)
        console.print(
            seed_document_table(summary, title=f"{run_dir}: the seed's figures (validation split)")
        )
        console.print(f"model: {run_dir / 'model.safetensors'}")
    return 0


app = typer.Typer(add_completion=False)
app.command("train")(train_command)


def main(argv: list[str] | None = None) -> int:
    """``artsim train ...`` in-process."""
    return run_app(app, argv, prog_name="artsim train")
