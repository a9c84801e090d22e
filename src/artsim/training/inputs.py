"""What a training run trains on: the manifest, its split, and the towers' features.

:func:`load_and_split` loads the manifest (rows it cannot use go to ``problems.txt``), checks
that a resumed run goes on on the data it started on, chooses the split and writes it with the
resolved config; :func:`tower_features` computes (or reads from the cache) the image and text
features of every item, training items first; :func:`with_views` adds the copy views of the
training originals to them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from artsim import runfolder
from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import Manifest, load_manifest, write_problems
from artsim.data.manifest.split import (
    carve_calibration,
    group_split,
    read_split,
    split_sizes,
    write_split,
)
from artsim.errors import DataError
from artsim.model.features import FeatureCache, compute_image_features, compute_text_features
from artsim.model.towers import create_image_tower, create_text_tower
from artsim.progress import Reporter
from artsim.training.config import TrainConfig, write_config
from artsim.training.stage import is_global_zero

MAX_PROBLEMS_SHOWN = 20


@dataclass
class RunData:
    """The manifest, its split and the two sides of it."""

    manifest: Manifest
    train_items: list[Item]
    val_items: list[Item]
    sizes: dict[str, dict[str, int]]


@dataclass
class RunFeatures:
    """Tower features of the training then the validation items, and what made them."""

    image: np.ndarray
    text: np.ndarray
    tower_versions: tuple[str, str]
    copy_dim: int = 0  # the last image features that are a copy descriptor's (paired tower)


def _resolve_split(config: TrainConfig, manifest, out: Path, resume: bool) -> dict[str, str]:
    saved = out / runfolder.SPLIT_FILE
    if resume and saved.is_file():
        return read_split(saved, manifest)
    if config.split:
        return read_split(config.split, manifest)
    assignment = group_split(manifest.items, config.val_fraction, seed=config.seed)
    return carve_calibration(assignment, manifest.items, config.calib_fraction, seed=config.seed)


def load_and_split(config: TrainConfig, out: Path, resume: bool, reporter: Reporter) -> RunData:
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
    return RunData(manifest, train_items, val_items, sizes)


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


def tower_features(config: TrainConfig, data: RunData, reporter: Reporter) -> RunFeatures:
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
    return RunFeatures(
        image_features,
        text_features,
        (image_tower.version, text_tower.version),
        copy_dim=int(copy.dim) if copy is not None else 0,
    )


def with_views(data: RunData, features: RunFeatures, n_train: int, views, view_image, view_text):
    """Items, sides and features of the training items, their views, then the validation items
    (the manifest's alone when there are no views)."""
    items = data.train_items + views + data.val_items
    sides = ["train"] * (n_train + len(views)) + ["val"] * len(data.val_items)
    if not views:
        return items, sides, features.image, features.text
    image = np.concatenate([features.image[:n_train], view_image, features.image[n_train:]])
    text = np.concatenate([features.text[:n_train], view_text, features.text[n_train:]])
    return items, sides, image, text
