"""Run folders are never clobbered, options are checked before work starts, Ctrl-C says how to
resume. Tiny towers on CPU: every run here takes seconds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from artsim.cli.train import main
from artsim.errors import UserError
from artsim.runfolder import read_metrics
from artsim.training.callbacks import MetricsJsonlWriter
from artsim.training.config import TrainConfig
from artsim.training.runguard import LOCK_FILE, RunLock


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != LOCK_FILE
    }


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_a_folder_with_other_files_is_refused(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys
):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    code = main(tiny_args(training_manifest, out, feature_cache, "--max-epochs", "1"))
    line = _one_line(capsys)
    assert code == 2
    assert str(out) in line and "--resume" in line and "--overwrite" in line
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # --resume cannot continue what is not a run
    code = main(tiny_args(training_manifest, out, feature_cache, "--resume"))
    assert code == 2 and "nothing to resume" in _one_line(capsys)


def test_a_finished_run_is_kept_unless_overwrite(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys
):
    out = tmp_path / "run"
    args = tiny_args(training_manifest, out, feature_cache, "--max-epochs", "2")
    assert main(args) == 0
    (out / "notes.txt").write_text("my notes")
    before = _snapshot(out)
    capsys.readouterr()
    assert main([*args, "--seed", "3"]) == 2
    line = _one_line(capsys)
    assert "a finished run" in line and "--overwrite" in line
    assert _snapshot(out) == before
    assert main([*args, "--seed", "3", "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "my notes"
    assert [row["epoch"] for row in read_metrics(out / "metrics.jsonl")] == [1, 2]
    assert "seed: 3" in (out / "config.yaml").read_text()


def test_a_second_train_on_a_locked_folder_fails_at_once(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys
):
    out = tmp_path / "run"
    with RunLock(out):  # as another `artsim train` holds it while it trains
        code = main(tiny_args(training_manifest, out, feature_cache, "--max-epochs", "1"))
    line = _one_line(capsys)
    assert code == 3
    assert "another artsim train is writing this run folder" in line and str(out) in line
    assert not (out / "config.yaml").exists()
    # released: the folder trains now
    assert main(tiny_args(training_manifest, out, feature_cache, "--max-epochs", "1")) == 0


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--lr", "-1"], "--lr must be a positive number"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--margin", "-1"], "--margin must be between 0 and 2"),
        (["--margin", "2"], "--margin must be between 0 and 2"),
        (["--max-epochs", "0"], "--max-epochs must be at least 1"),
        (["--val-fraction", "0"], "--val-fraction must be between 0 and 1"),
        (["--accelerator", "tpu"], "--accelerator must be one of auto, cpu, gpu"),
        (["--cache-dir", "/proc/artsim-x"], "--cache-dir /proc/artsim-x: cannot write there"),
    ],
)
def test_nonsense_options_are_one_line_before_any_work(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys, extra, words
):
    out = tmp_path / "run"
    code = main(tiny_args(training_manifest, out, feature_cache, *extra))
    line = _one_line(capsys)
    assert code == 2 and words in line
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("finetune_lr", 0.0, "--finetune-lr must be a positive number"),
        ("dropout", 1.0, "--dropout must be in [0, 1)"),
        ("items_per_group", 1, "--items-per-group must be at least 2"),
        ("groups_per_batch", "many", "--groups-per-batch must be a whole number"),
        ("lr", float("nan"), "--lr must be a finite number"),
        ("loss_weights", {"image": -1.0}, "loss_weights.image must be at least 0"),
        ("loss_weights", {"image": 0.0, "text": 0.0, "cross": 0.0}, "at least one"),
    ],
)
def test_the_api_shares_the_checks(field, value, words):
    with pytest.raises(UserError) as caught:
        TrainConfig(data="m.csv", **{field: value}).validate()
    assert words in str(caught.value)


def test_gpu_asked_for_where_there_is_none_is_one_line(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(UserError) as caught:
        TrainConfig(data="m.csv", accelerator="gpu").check_accelerator()
    assert "no CUDA GPU" in str(caught.value)


def test_ctrl_c_says_how_to_resume_and_the_resume_finishes(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "run"
    original = MetricsJsonlWriter.on_train_epoch_end

    def interrupted_in_epoch_two(self, trainer, module):
        original(self, trainer, module)
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(MetricsJsonlWriter, "on_train_epoch_end", interrupted_in_epoch_two)
    args = tiny_args(training_manifest, out, feature_cache, "--max-epochs", "4")
    code = main([*args, "--seed", "1"])
    err = capsys.readouterr().err
    assert code == 130
    assert "Traceback" not in err
    hint = f"artsim train --config {out / 'config.yaml'} --resume"
    assert hint in err
    monkeypatch.setattr(MetricsJsonlWriter, "on_train_epoch_end", original)
    # the hinted command, as a user would type it
    assert main(hint.split()[2:]) == 0
    epochs = [row["epoch"] for row in read_metrics(out / "metrics.jsonl")]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 2
    assert (out / "model.safetensors").is_file()


def test_the_python_api_guards_the_folder_too(training_manifest, feature_cache, tmp_path):
    import artsim

    options = {
        "data": str(training_manifest),
        "out": str(tmp_path / "run"),
        "image_tower": "tiny",
        "text_tower": "tiny",
        "cache_dir": str(feature_cache),
        "accelerator": "cpu",
        "progress": False,
        "max_epochs": 1,
    }
    assert artsim.train(options)["epochs_completed"] == 1
    with pytest.raises(UserError, match="--overwrite"):
        artsim.train(options, seed=2)
    assert artsim.train(options, seed=2, overwrite=True)["seed"] == 2
