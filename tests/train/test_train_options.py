"""Every TrainConfig field is an option of ``artsim train``, and what its flag says reaches the
run's saved config.yaml: the flags are generated from the fields, none can be accepted and
ignored."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from artsim.cli import train as train_cli
from artsim.training.config import TrainConfig, flag_of, read_config, write_config


class Stopped(Exception):
    """Raised by the stand-in for training once the resolved config is saved."""


def _values(tmp_path: Path, manifest: Path) -> dict:
    split = tmp_path / "split.csv"
    split.write_text("id,split\n", encoding="utf-8")
    return {
        "data": str(manifest),
        "out": str(tmp_path / "run"),
        "val_fraction": 0.3,
        "calib_fraction": 0.4,
        "split": str(split),
        "seed": 7,
        "max_epochs": 3,
        "image_tower": "tiny",
        "text_tower": "tiny",
        "embed_dim": 32,
        "hidden_dim": 16,
        "dropout": 0.1,
        "margin": 0.3,
        "miner": "hard",
        "hard_negatives": "artist",
        "loss_weights": {"image": 1.0, "text": 1.0, "cross": 1.0, "koleo": 1.0, "copy": 0.5},
        "copy_temperature": 0.2,
        "copy_views": 2,
        "groups_per_batch": 8,
        "items_per_group": 3,
        "lr": 0.002,
        "weight_decay": 0.001,
        "plateau_factor": 0.3,
        "plateau_patience": 3,
        "min_lr": 1e-5,
        "early_stopping_patience": 7,
        "early_stopping_min_delta": 0.001,
        "blend": "frozen",
        "loso_folds": 2,
        "text_blend_max": 0.1,
        "whiten_dim": 16,
        "copy_whiten_dim": 8,
        "bridge_ratio": 1.5,
        "bridge_top": 3,
        "finetune_epochs": 1,
        "finetune_lr": 2e-5,
        "finetune_blocks": 1,
        "finetune_groups": 4,
        "finetune_keep": "always",
        "devices": 2,
        "num_nodes": 2,
        "accelerator": "cpu",
        "precision": "bf16-mixed",
        "cache_dir": str(tmp_path / "cache"),
        "max_pixels": 1_000_000,
        "progress": False,
    }


def _argv(values: dict) -> list[str]:
    argv = []
    for name, value in values.items():
        if isinstance(value, bool):
            argv.append(flag_of(name) if value else f"--no-{flag_of(name)[2:]}")
        elif isinstance(value, dict):
            argv += [flag_of(name), "copy=0.5"]
        else:
            argv += [flag_of(name), str(value)]
    return argv


def test_every_field_reaches_the_saved_config_from_its_flag(
    tmp_path: Path, synthetic_manifest: Path, monkeypatch
):
    values = _values(tmp_path, synthetic_manifest)
    fields = dataclasses.fields(TrainConfig)
    # a new field without a value here fails this test: give it one
    assert set(values) == {field.name for field in fields}
    defaults = TrainConfig()
    for field in fields:  # every value differs from its default: a dropped flag shows
        assert values[field.name] != getattr(defaults, field.name), field.name

    def save_and_stop(config, **_):
        write_config(config, tmp_path / "config.yaml")
        raise Stopped

    monkeypatch.setattr(train_cli, "train_with_progress", save_and_stop)
    with pytest.raises(Stopped):
        train_cli.main(_argv(values))
    saved = dataclasses.asdict(read_config(tmp_path / "config.yaml"))
    assert saved == values


def test_a_flag_given_goes_over_the_config_file_and_an_absent_one_does_not(
    tmp_path: Path, synthetic_manifest: Path, monkeypatch
):
    options = tmp_path / "options.yaml"
    options.write_text(f"data: {synthetic_manifest}\nseed: 3\nprogress: false\nlr: 0.01\n")
    seen = {}

    def keep(config, **_):
        seen["config"] = config
        raise Stopped

    monkeypatch.setattr(train_cli, "train_with_progress", keep)
    with pytest.raises(Stopped):
        train_cli.main(["--config", str(options), "--out", str(tmp_path / "run"), "--seed", "5"])
    config = seen["config"]
    assert (config.seed, config.lr, config.progress) == (5, 0.01, False)
