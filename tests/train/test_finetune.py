"""The optional second stage: the image tower's last blocks fine-tuned on augmented images."""

from __future__ import annotations

import json

import numpy as np
from safetensors import safe_open

from artsim.cli.train import main
from artsim.data.augment import augment_image
from artsim.data.images import load_rgb
from artsim.model.embedder import Embedder
from artsim.model.towers import create_image_tower
from artsim.runfolder import read_metrics

CONFIG = "finetune_epochs: 3\nfinetune_lr: 0.003\nfinetune_blocks: 1\nlr: 0.0003\n"


def test_finetune_stage_follows_the_heads_and_ships_its_tower(
    training_manifest, feature_cache, tiny_args, tmp_path
):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "run"
    args = tiny_args(
        training_manifest, out, feature_cache, "--max-epochs", "1", "--config", str(config)
    )
    assert main(args) == 0
    rows = read_metrics(out / "metrics.jsonl")
    assert [(row["epoch"], row["stage"]) for row in rows] == [
        (1, "heads"),
        (2, "finetune"),
        (3, "finetune"),
        (4, "finetune"),
    ]
    summary = json.loads((out / "summary.json").read_text())
    stages = {stage["stage"]: stage for stage in summary["stages"]}
    assert set(stages) == {"heads", "finetune"}
    tuned = stages["finetune"]
    # weak heads after one epoch at a low rate: three epochs of tuning at a higher one help
    assert tuned["kept"] is True
    assert tuned["best_val_loss"] < stages["heads"]["best_val_loss"]
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        tower_keys = [k for k in handle.keys() if k.startswith("image_tower.")]  # noqa: SIM118
    assert tower_keys
    embedder = Embedder.from_run(out, cache_dir=tmp_path / "cache")
    packaged = create_image_tower("tiny")
    image = next(iter(sorted((training_manifest.parent / "images").glob("*.png"))))
    tuned_features = embedder.image_features([image])
    pixels = packaged.preprocess(load_rgb(image))[None]
    assert not np.allclose(tuned_features, packaged(pixels).detach().numpy())


def test_augmentation_is_seeded_and_keeps_the_picture_mode(training_manifest):
    image = load_rgb(next(iter(sorted((training_manifest.parent / "images").glob("*.png")))))
    first = augment_image(image, np.random.default_rng(3))
    again = augment_image(image, np.random.default_rng(3))
    other = augment_image(image, np.random.default_rng(4))
    assert first.mode == "RGB"
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))
