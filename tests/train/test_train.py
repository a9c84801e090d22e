"""Whole training runs on CPU with tiny towers: files written, figures present, failures clean."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from artsim.cli.train import main
from artsim.model.heads import load_model
from artsim.runfolder import read_metrics
from artsim.training import run as train_module

ROW_KEYS = {
    "epoch",
    "lr",
    "train/loss",
    "train/triplet_acc",
    "val/loss",
    "val/triplet_acc",
    "val/image_loss",
    "val/image_acc",
    "val/text_loss",
    "val/text_acc",
    "val/cross_loss",
    "val/cross_acc",
    "val/i2t_acc",
    "val/t2i_acc",
}
SUMMARY_KEYS = {
    "epochs_completed",
    "stop_reason",
    "best_epoch",
    "final_lr",
    "val_fraction",
    "seed",
    "image_tower",
    "text_tower",
    "train_size",
    "val_size",
    "data_fingerprint",
}


def test_run_folder_has_everything_the_seed_reports(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys
):
    out = tmp_path / "run"
    code = main(
        tiny_args(
            training_manifest, out, feature_cache, "--max-epochs", "4", "--val-fraction", "0.4"
        )
    )
    assert code == 0
    for name in (
        "config.yaml",
        "split.csv",
        "metrics.jsonl",
        "summary.json",
        "model.safetensors",
        "model.json",
    ):
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "last.ckpt").is_file()
    rows = read_metrics(out / "metrics.jsonl")
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    for row in rows:
        assert set(row) >= ROW_KEYS
        assert 0.0 <= row["val/triplet_acc"] <= 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["epochs_completed"] == 4
    assert summary["stop_reason"] == "max_epochs"
    assert summary["val_fraction"] == 0.4
    # half the validation groups are the calibration part, which training never reads
    sizes = summary["train_size"]["items"] + summary["val_size"]["items"]
    assert sizes + summary["calib_size"]["items"] == 96 and summary["calib_size"]["items"] > 0
    assert summary["calib_fraction"] == 0.5
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["val_fraction"] == 0.4 and config["image_tower"] == "tiny"
    model, card, _ = load_model(out)
    assert card["config"]["image_tower"] == "tiny"
    assert model.config.embed_dim == 256
    printed = capsys.readouterr().out
    assert "validation triplet accuracy" in printed


def test_training_learns_the_synthetic_groups(
    training_manifest, feature_cache, tiny_args, tmp_path
):
    out = tmp_path / "run"
    assert (
        main(
            tiny_args(training_manifest, out, feature_cache, "--max-epochs", "12", "--lr", "0.003")
        )
        == 0
    )
    rows = read_metrics(out / "metrics.jsonl")
    assert rows[-1]["train/loss"] < rows[0]["train/loss"]
    assert max(row["val/triplet_acc"] for row in rows) >= 0.8


def test_split_file_is_used_as_given(training_manifest, feature_cache, tiny_args, tmp_path):
    first = tmp_path / "first"
    assert main(tiny_args(training_manifest, first, feature_cache, "--max-epochs", "1")) == 0
    second = tmp_path / "second"
    args = tiny_args(
        training_manifest,
        second,
        feature_cache,
        "--max-epochs",
        "1",
        "--split",
        str(first / "split.csv"),
    )
    assert main(args) == 0
    assert (first / "split.csv").read_text() == (second / "split.csv").read_text()


def test_early_stopping_stops_a_run_that_does_not_improve(
    training_manifest, feature_cache, tiny_args, tmp_path
):
    config = tmp_path / "config.yaml"
    config.write_text("early_stopping_patience: 1\nlr: 1.0e-12\n")  # 0 is refused
    out = tmp_path / "run"
    args = tiny_args(
        training_manifest, out, feature_cache, "--max-epochs", "10", "--config", str(config)
    )
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "early_stopping"
    assert summary["epochs_completed"] < 10


def test_learning_rate_is_reduced_on_plateau(training_manifest, feature_cache, tiny_args, tmp_path):
    config = tmp_path / "config.yaml"
    # no calibration part: the plateau this test drives is measured on the whole validation side
    config.write_text(
        "plateau_patience: 0\nearly_stopping_patience: 50\nlr: 0.5\ncalib_fraction: 0.0\n"
    )
    out = tmp_path / "run"
    assert (
        main(
            tiny_args(
                training_manifest, out, feature_cache, "--max-epochs", "8", "--config", str(config)
            )
        )
        == 0
    )
    rates = [row["lr"] for row in read_metrics(out / "metrics.jsonl")]
    assert rates[0] == pytest.approx(0.5)
    assert min(rates) < 0.5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_lr"] <= rates[-1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--val-fraction", "1.5"], "--val-fraction must be between 0 and 1"),
        (["--image-tower", "nope"], "unknown image tower 'nope'"),
        (["--miner", "greedy"], "miner must be random, semihard or hard"),
    ],
)
def test_bad_options_give_one_line(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys, extra, message
):
    code = main(tiny_args(training_manifest, tmp_path / "run", feature_cache, *extra))
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_unknown_config_key_is_named(training_manifest, feature_cache, tiny_args, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("learning_rate: 0.1\n")
    code = main(
        tiny_args(training_manifest, tmp_path / "run", feature_cache, "--config", str(config))
    )
    assert code == 2
    assert "unknown options learning_rate" in capsys.readouterr().err


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys, monkeypatch
):
    original_step = train_module.TripletModule.training_step

    # poison the inputs from the third epoch on: the loss the step computes becomes NaN
    def checked_step(self, batch, batch_index):
        if self.current_epoch >= 2:
            batch = dict(batch)
            batch["image"] = batch["image"] * float("nan")
        return original_step(self, batch, batch_index)

    monkeypatch.setattr(train_module.TripletModule, "training_step", checked_step)
    out = tmp_path / "run"
    code = main(tiny_args(training_manifest, out, feature_cache, "--max-epochs", "5"))
    err = capsys.readouterr().err
    assert code == 1
    assert "training stopped: the training loss became nan at epoch 2" in err
    assert "Traceback" not in err
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 1  # the end of the second epoch, the last good one
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "nan_loss"
    assert summary["epochs_completed"] == 2


@pytest.mark.parametrize("miner", ["semihard", "hard"])
def test_hard_negatives_sharing_the_artist_train(
    training_manifest, feature_cache, tiny_args, tmp_path, miner
):
    out = tmp_path / "run"
    args = tiny_args(
        training_manifest,
        out,
        feature_cache,
        "--max-epochs",
        "2",
        "--hard-negatives",
        "artist",
        "--miner",
        miner,
    )
    assert main(args) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (config["hard_negatives"], config["miner"]) == ("artist", miner)
    assert all(row["train/loss"] > 0 for row in read_metrics(out / "metrics.jsonl"))


def test_bad_rows_are_skipped_and_listed_in_the_run(
    training_manifest, feature_cache, tiny_args, tmp_copy, tmp_path, capsys
):
    manifest = tmp_copy(training_manifest)
    broken = manifest.parent / "images" / "g001_gen0.png"
    broken.write_bytes(broken.read_bytes()[:40])  # truncated
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write("g001-gen0,g001,generated,images/g001_gen0.png,dup id,en,,,\n")
    out = tmp_path / "run"
    assert main(tiny_args(manifest, out, feature_cache, "--max-epochs", "1")) == 0
    problems = (out / "problems.txt").read_text()
    assert "g001-gen0" in problems and "truncated" in problems
    assert "duplicate" in problems
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_rows"] == 2
    sides = ("train_size", "val_size", "calib_size")  # the calibration part counts too
    assert sum(summary[side]["items"] for side in sides) == 95
