"""Leave-one-source-out folds for choosing the blend (see :mod:`artsim.training.select`).

For every source of the training corpus, heads are trained as the run's own are (same options,
early stopping on the remaining validation groups) but without that source's groups, then scored
on all of its groups, trained and frozen, so :func:`select_blend` sees how much training helps on
a source and style it never saw.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Sequence
from dataclasses import replace

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from artsim.data.manifest.items import Item
from artsim.model.blend import fit_whitening, whiten
from artsim.model.heads import ModelConfig
from artsim.training.config import TrainConfig
from artsim.training.datamodule import FeatureDataModule, build_feature_set
from artsim.training.module import TripletModule
from artsim.training.select import (
    DEFAULT_COPY_WEIGHT,
    KEEP_CROSS,
    SelectionSet,
    group_sources,
    select_blend,
    select_fused_weight,
)

MIN_FOLD_GROUPS = 2


def _heads(model_config: ModelConfig, config: TrainConfig, train_set, val_set) -> TripletModule:
    """Heads trained like the run's own, in a throwaway folder."""
    module = TripletModule(model_config, config)
    with tempfile.TemporaryDirectory(prefix="artsim-loso-") as folder:
        checkpoint = ModelCheckpoint(
            dirpath=folder, filename="best", monitor="val/loss", mode="min", save_top_k=1
        )
        stopping = EarlyStopping(
            monitor="val/loss",
            mode="min",
            patience=config.early_stopping_patience,
            min_delta=config.early_stopping_min_delta,
        )
        trainer = pl.Trainer(
            max_epochs=config.max_epochs,
            accelerator="cpu" if config.accelerator == "auto" else config.accelerator,
            devices=1,
            callbacks=[stopping, checkpoint],
            logger=False,
            num_sanity_val_steps=0,
            enable_model_summary=False,
            enable_progress_bar=False,
            deterministic=True,
            default_root_dir=folder,
        )
        datamodule = FeatureDataModule(
            train_set, val_set, config.groups_per_batch, config.items_per_group, config.seed
        )
        trainer.fit(module, datamodule=datamodule)
        if checkpoint.best_model_path:
            state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
            module.load_state_dict(state["state_dict"])
    return module.eval()


def fold_sources(group_counts: dict[str, int], folds: int) -> list[tuple[str, ...]]:
    """The sources left out together, one tuple per fold: one source each when ``folds`` is 0
    or not below the number of sources; otherwise ``folds`` folds of similar group counts (the
    largest source first into the fold with the fewest groups so far; ties by name)."""
    names = sorted(group_counts)
    if folds <= 0 or folds >= len(names):
        return [(name,) for name in names]
    members: list[list[str]] = [[] for _ in range(folds)]
    sizes = [0] * folds
    for name in sorted(names, key=lambda n: (-group_counts[n], n)):
        lightest = min(range(folds), key=lambda k: (sizes[k], k))
        members[lightest].append(name)
        sizes[lightest] += group_counts[name]
    return [tuple(sorted(fold)) for fold in members]


def loso_sets(
    model_config: ModelConfig,
    config: TrainConfig,
    items: Sequence[Item],
    sides: Sequence[str],
    image_features: np.ndarray,
    text_features: np.ndarray,
    whitening,
) -> list[SelectionSet]:
    """One :class:`SelectionSet` per fold of sources with enough groups (one source per fold,
    or ``config.loso_folds`` folds: :func:`fold_sources`); [] for a one-source corpus.

    ``sides`` is "train" or "val" per item (the run's split); ``whitening(rows)`` returns the
    frozen image part fitted on the training originals among ``rows``.
    """
    sources = group_sources(items)
    counts: dict[str, int] = {}
    for source in sources.values():
        counts[source] = counts.get(source, 0) + 1
    held_out = sorted(s for s, n in counts.items() if n >= MIN_FOLD_GROUPS)
    if len(held_out) < 2:
        return []
    folds = fold_sources({s: counts[s] for s in held_out}, config.loso_folds)
    groups = sorted({item.group for item in items})
    group_index = {group: k for k, group in enumerate(groups)}
    fold_config = replace(copy.deepcopy(config), progress=False)
    sets = []
    for fold in folds:
        inside = np.array([sources.get(item.group) not in fold for item in items])
        train_rows = np.nonzero(inside & (np.asarray(sides) == "train"))[0]
        val_rows = np.nonzero(inside & (np.asarray(sides) == "val"))[0]
        out_rows = np.nonzero(~inside)[0]
        if len(train_rows) == 0 or len(val_rows) == 0:
            continue

        def feature_set(rows):
            return build_feature_set(
                [items[r] for r in rows],
                image_features[rows],
                text_features[rows],
                group_index,
                config.hard_negatives,
            )

        pl.seed_everything(config.seed, workers=True, verbose=False)
        module = _heads(model_config, fold_config, feature_set(train_rows), feature_set(val_rows))
        with torch.no_grad():
            image = torch.from_numpy(image_features[out_rows])
            text = torch.from_numpy(text_features[out_rows])
            trained_image = module.model.embed_image(image).numpy()
            trained_text = module.model.embed_text(text).numpy()
        frozen_image, copy_image = whitening(train_rows)(image_features[out_rows])
        frozen_text = text_features[out_rows] / np.maximum(
            np.linalg.norm(text_features[out_rows], axis=1, keepdims=True), 1e-12
        )
        sets.append(
            SelectionSet(
                name="without " + " + ".join(fold),
                items=[items[r] for r in out_rows],
                trained_image=trained_image,
                trained_text=trained_text,
                frozen_image=frozen_image,
                frozen_text=frozen_text.astype(np.float32),
                copy_image=copy_image,
            )
        )
    return sets


def _validation_set(model, items, sides, image_features, text_features, fitter) -> SelectionSet:
    """The run's validation groups, embedded by its heads and by the frozen towers (whitened
    on the training originals), for the one choice that needs no unseen source."""
    rows = np.nonzero(np.asarray(sides) == "val")[0]
    train_rows = np.nonzero(np.asarray(sides) == "train")[0]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # no dropout in what is measured
    with torch.no_grad():
        image = torch.from_numpy(image_features[rows]).to(device)
        text = torch.from_numpy(text_features[rows]).to(device)
        trained_image = model.embed_image(image).cpu().numpy()
        trained_text = model.embed_text(text).cpu().numpy()
    model.train(was_training)
    frozen_text = text_features[rows] / np.maximum(
        np.linalg.norm(text_features[rows], axis=1, keepdims=True), 1e-12
    )
    frozen_image, copy_image = fitter(train_rows)(image_features[rows])
    return SelectionSet(
        name="validation",
        items=[items[r] for r in rows],
        trained_image=trained_image,
        trained_text=trained_text,
        frozen_image=frozen_image,
        frozen_text=frozen_text.astype(np.float32),
        copy_image=copy_image,
        copy_weight=model.config.copy_weight,
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _part_fitter(items: Sequence[Item], features: np.ndarray, dim: int):
    """``fitter(rows)`` -> a function that whitens ``features``-like rows with the PCA of the
    originals among ``rows`` (unit-length output; ``dim`` 0 only normalises)."""

    def fitter(rows):
        originals = [r for r in rows if items[r].is_original]
        if dim <= 0 or len(originals) < 2:
            return _unit
        mean, projection = fit_whitening(features[originals], dim)
        mean_t, projection_t = torch.from_numpy(mean), torch.from_numpy(projection)
        if projection.shape[1] != dim:  # fewer originals than dimensions: pad with zeros
            projection_t = torch.nn.functional.pad(projection_t, (0, dim - projection.shape[1]))
        return lambda x: whiten(
            torch.from_numpy(np.asarray(x, np.float32)), mean_t, projection_t
        ).numpy()

    return fitter


def whitening_fitter(
    items: Sequence[Item],
    image_features: np.ndarray,
    dim: int,
    copy_dim: int = 0,
    copy_whiten: int = 0,
):
    """``fitter(rows)`` -> a function of image features returning ``(content, copy)``: each part
    whitened with the PCA of the originals among ``rows`` (unit length; a dim of 0 only
    normalises); ``copy`` is None without a copy descriptor (``copy_dim`` 0, the last columns)."""
    content_end = image_features.shape[1] - copy_dim
    content = _part_fitter(items, image_features[:, :content_end], dim)
    copy = _part_fitter(items, image_features[:, content_end:], copy_whiten) if copy_dim else None

    def fitter(rows):
        content_part = content(rows)
        copy_part = copy(rows) if copy is not None else None
        return lambda x: (
            content_part(x[:, :content_end]),
            None if copy_part is None else copy_part(x[:, content_end:]),
        )

    return fitter


def _block_whitening(
    originals: np.ndarray, dim: int, copy_dim: int, copy_whiten: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's whitening buffers: the content part's PCA (``dim`` columns) and, with a copy
    descriptor, the copy part's (``copy_whiten`` columns) as one block-diagonal projection."""
    features = originals.shape[1]
    content_end = features - copy_dim
    mean = np.zeros(features, np.float32)
    projection = np.zeros((features, dim + copy_whiten), np.float32)
    for rows, columns, start in (
        (slice(0, content_end), dim, 0),
        (slice(content_end, features), copy_whiten, dim),
    ):
        if columns <= 0 or rows.start == rows.stop:
            continue
        part_mean, part = fit_whitening(originals[:, rows], columns)
        mean[rows] = part_mean
        projection[rows, start : start + part.shape[1]] = part
    return torch.from_numpy(mean), torch.from_numpy(projection)


def choose_blend(
    config: TrainConfig,
    model,
    items: Sequence[Item],
    sides: Sequence[str],
    image_features: np.ndarray,
    text_features: np.ndarray,
) -> dict:
    """Fit the model's whitening on the training originals and set its blend weights as
    ``config.blend`` says; returns what was chosen and why (for summary.json and model.json)."""
    model_config = model.config
    dim, copy_dim, copy_whiten = (
        model_config.whiten_dim,
        model_config.copy_feature_dim,
        model_config.copy_whiten_dim,
    )
    train_rows = [r for r, side in enumerate(sides) if side == "train"]
    originals = [r for r in train_rows if items[r].is_original]
    if dim + copy_whiten > 0:
        model.set_whitening(
            *_block_whitening(image_features[originals], dim, copy_dim, copy_whiten)
        )
    if copy_dim:  # without folds (or a fixed blend): the default share, replaced when chosen
        model_config.copy_weight = DEFAULT_COPY_WEIGHT
    chosen: dict = {"mode": config.blend, "whitened_on": len(originals)}
    if config.blend == "trained":
        weights = {"image_blend": 1.0, "text_blend": 1.0, "fused_image_weight": 0.5}
    elif config.blend == "frozen":
        weights = {"image_blend": 0.0, "text_blend": 0.0, "fused_image_weight": 0.5}
    else:
        fitter = whitening_fitter(items, image_features, dim, copy_dim, copy_whiten)
        sets = loso_sets(model.config, config, items, sides, image_features, text_features, fitter)
        if sets:
            selected = select_blend(sets, config.text_blend_max)
            weights = {
                k: selected.pop(k) for k in ("image_blend", "text_blend", "fused_image_weight")
            }
            if "copy_weight" in selected:
                weights["copy_weight"] = selected.pop("copy_weight")
            chosen.update(selected)
        else:
            text_blend = min(KEEP_CROSS, config.text_blend_max)
            fused, fused_scores = select_fused_weight(
                [_validation_set(model, items, sides, image_features, text_features, fitter)],
                KEEP_CROSS,
                text_blend,
            )
            weights = {
                "image_blend": KEEP_CROSS,
                "text_blend": text_blend,
                "fused_image_weight": fused,
            }
            chosen["scores"] = {"fused": {f"{w:g}": v for w, v in fused_scores.items()}}
            chosen["note"] = (
                "fewer than two sources with groups: no fold to choose on, the frozen towers are "
                f"kept with the smallest trained part ({KEEP_CROSS}) that keeps cross-modal "
                "search; the fused image weight is chosen on the validation groups"
            )
    for key, value in weights.items():
        setattr(model.config, key, float(value))
    chosen.update(weights)
    return chosen
