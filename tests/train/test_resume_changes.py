"""--resume refuses changed options, naming each; --resume-with-changes applies and records them."""

from __future__ import annotations

import json

import pytest
import yaml

from artsim.cli.train import main
from artsim.training.callbacks import read_metrics
from artsim.training.config import TrainConfig


def test_resume_refuses_changed_options_unless_asked(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys
):
    out = tmp_path / "run"
    assert main(tiny_args(training_manifest, out, feature_cache, "--max-epochs", "2")) == 0
    saved_config = (out / "config.yaml").read_text()
    weights = (out / "model.safetensors").read_bytes()
    capsys.readouterr()

    changed = ("--max-epochs", "4", "--lr", "0.05", "--margin", "0.9", "--miner", "hard")
    code = main(tiny_args(training_manifest, out, feature_cache, *changed, "--resume"))
    error = capsys.readouterr().err
    assert code != 0
    assert len(error.strip().splitlines()) == 1
    for named in (
        "max_epochs 2 -> 4",
        "lr 0.001 -> 0.05",
        "margin 0.2 -> 0.9",
        "miner 'random' -> 'hard'",
    ):
        assert named in error
    assert "--resume-with-changes" in error
    # nothing of the run was touched
    assert (out / "config.yaml").read_text() == saved_config
    assert (out / "model.safetensors").read_bytes() == weights
    assert len(read_metrics(out / "metrics.jsonl")) == 2
    assert not (out / "changes.log").exists()

    # the same options, shown or not: no change
    same = tiny_args(training_manifest, out, feature_cache, "--max-epochs", "2", "--resume")
    assert main([*same, "--progress"]) == 0

    code = main(tiny_args(training_manifest, out, feature_cache, *changed, "--resume-with-changes"))
    assert code == 0
    rows = read_metrics(out / "metrics.jsonl")
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    # the new learning rate is the one used (the checkpoint's optimiser had the old one)
    assert [row["lr"] for row in rows[:2]] == [pytest.approx(0.001)] * 2
    assert rows[2]["lr"] == pytest.approx(0.05)
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (config["lr"], config["margin"], config["miner"], config["max_epochs"]) == (
        0.05,
        0.9,
        "hard",
        4,
    )
    log = (out / "changes.log").read_text().splitlines()
    assert len(log) == 1 and "lr 0.001 -> 0.05" in log[0] and "margin 0.2 -> 0.9" in log[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_completed"] == 4


def test_what_a_checkpoint_is_made_of_never_changes(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys
):
    out = tmp_path / "run"
    assert main(tiny_args(training_manifest, out, feature_cache, "--max-epochs", "1")) == 0
    capsys.readouterr()
    code = main(
        tiny_args(training_manifest, out, feature_cache, "--seed", "3", "--resume-with-changes")
    )
    error = capsys.readouterr().err
    assert code != 0 and "seed 0 -> 3" in error and "train a new run" in error


def test_precision_is_validated_by_name():
    assert TrainConfig(data="x", precision="bf16-mixed").validate().precision == "bf16-mixed"
    with pytest.raises(Exception, match="precision must be one of 32-true, bf16-mixed"):
        TrainConfig(data="x", precision="bf16").validate()


def test_a_bf16_mixed_run_trains_on_cpu(training_manifest, feature_cache, tiny_args, tmp_path):
    out = tmp_path / "run"
    args = tiny_args(training_manifest, out, feature_cache, "--max-epochs", "2")
    assert main([*args, "--precision", "bf16-mixed"]) == 0
    rows = read_metrics(out / "metrics.jsonl")
    assert len(rows) == 2 and all(row["train/loss"] > 0 for row in rows)
