"""The optional second stage: the image tower's last blocks fine-tuned on augmented images."""

from __future__ import annotations

import json

import numpy as np
from safetensors import safe_open

from artsim.cli.train import main
from artsim.data.families.training.augment import augment_image
from artsim.data.pictures.images import load_rgb
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
    pixels = packaged.preprocess(load_rgb(image))[None]
    frozen = packaged(pixels).detach().numpy()
    # the frozen baseline, the blend's frozen part and the bridge read the packaged tower...
    assert np.allclose(embedder.image_features([image]), frozen, atol=1e-6)
    # ...and only the trained head reads the fine-tuned one
    assert not np.allclose(embedder.tuned_image_features([image]), frozen)


def test_augmentation_is_seeded_and_keeps_the_picture_mode(training_manifest):
    image = load_rgb(next(iter(sorted((training_manifest.parent / "images").glob("*.png")))))
    first = augment_image(image, np.random.default_rng(3))
    again = augment_image(image, np.random.default_rng(3))
    other = augment_image(image, np.random.default_rng(4))
    assert first.mode == "RGB"
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


def test_finetune_groups_draws_whole_groups_with_the_seed(training_manifest):
    from artsim.data.manifest.manifest import load_manifest
    from artsim.training.finetune import finetune_rows

    items = load_manifest(training_manifest).items
    groups = sorted({item.group for item in items})
    assert finetune_rows(items, 0, seed=0) == list(range(len(items)))
    assert finetune_rows(items, len(groups) + 5, seed=0) == list(range(len(items)))
    rows = finetune_rows(items, 5, seed=0)
    drawn = {items[row].group for row in rows}
    assert len(drawn) == 5
    # every item of a drawn group, none of the others
    assert rows == [row for row, item in enumerate(items) if item.group in drawn]
    assert finetune_rows(items, 5, seed=0) == rows
    assert {items[r].group for r in finetune_rows(items, 5, seed=1)} != drawn


def test_finetune_keeps_batch_norm_statistics_and_tunes_only_the_last_blocks(
    training_manifest, feature_cache, tiny_args, tmp_path
):
    """The tower stays in eval mode while its last blocks train: batch norm keeps the packaged
    running statistics (training mode collapsed recall on painted art in the issue's probe), and
    the blocks before the last ``finetune_blocks`` are the packaged ones. With ``finetune_groups``
    the stage sees the items of that many training groups; ``finetune_keep: always`` ships the
    tower whatever the validation loss says."""
    import torch

    config = tmp_path / "config.yaml"
    config.write_text(CONFIG + "image_tower: tiny-bn\nfinetune_groups: 6\nfinetune_keep: always\n")
    out = tmp_path / "run"
    args = tiny_args(
        training_manifest, out, feature_cache, "--max-epochs", "1", "--config", str(config)
    )
    position = args.index("--image-tower")
    assert main(args[:position] + args[position + 2 :]) == 0  # the config's tiny-bn
    summary = json.loads((out / "summary.json").read_text())
    stage = next(s for s in summary["stages"] if s["stage"] == "finetune")
    assert stage["groups"] == 6 and stage["blocks"] == 1 and 6 <= stage["items"] < 24 * 4
    assert stage["kept"] is True  # finetune_keep: always, whatever the validation loss said
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        assert any(key.startswith("image_tower.") for key in handle.keys())  # noqa: SIM118
    # the stage's own checkpoint: whether or not it beat the heads (and so was shipped)
    state = torch.load(out / "checkpoints" / "finetune" / "last.ckpt", weights_only=True)
    prefix = "image_tower."
    tuned = {k[len(prefix) :]: v for k, v in state["state_dict"].items() if k.startswith(prefix)}
    packaged = create_image_tower("tiny-bn").state_dict()
    assert set(tuned) == set(packaged)
    for name in ("blocks.1.running_mean", "blocks.1.running_var", "blocks.1.num_batches_tracked"):
        assert torch.equal(tuned[name], packaged[name]), name
    # finetune_blocks 1: the first convolution is untouched, the last one moved
    assert torch.equal(tuned["blocks.0.weight"], packaged["blocks.0.weight"])
    assert not torch.equal(tuned["blocks.3.weight"], packaged["blocks.3.weight"])
