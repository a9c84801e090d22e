"""Resuming a run that already ended does nothing more: it says so in one line and leaves every
file of the run as it was (the same model_id, the same metrics rows). Tiny towers on CPU."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from artsim.cli.train import main
from artsim.runfolder import read_metrics
from artsim.training.runguard import LOCK_FILE

# lr 1e-12: validation never improves, so patience 1 stops the run after its second epoch
STOPS_EARLY = "early_stopping_patience: 1\nlr: 1.0e-12\n"


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != LOCK_FILE
    }


def _model_id(out: Path) -> str:
    return json.loads((out / "model.json").read_text())["model_id"]


def _early_stopped_run(training_manifest, feature_cache, tiny_args, tmp_path, options=""):
    config = tmp_path / "config.yaml"
    config.write_text(STOPS_EARLY + options)
    out = tmp_path / "run"
    args = tiny_args(
        training_manifest, out, feature_cache, "--max-epochs", "10", "--config", str(config)
    )
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [stage["stop_reason"] for stage in summary["stages"]] == ["early_stopping"] * (
        1 + ("finetune_epochs" in options)
    )
    assert summary["epochs_completed"] == 2 * len(summary["stages"])
    return out, args


def test_resuming_an_early_stopped_run_changes_nothing(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys
):
    out, args = _early_stopped_run(training_manifest, feature_cache, tiny_args, tmp_path)
    before, model_id, rows = _snapshot(out), _model_id(out), read_metrics(out / "metrics.jsonl")
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    said = capsys.readouterr()
    lines = [line for line in (said.out + said.err).splitlines() if "nothing to resume" in line]
    assert len(lines) == 1 and "early_stopping" in lines[0] and "2 epochs" in lines[0]
    assert _model_id(out) == model_id
    assert read_metrics(out / "metrics.jsonl") == rows
    assert _snapshot(out) == before


@pytest.mark.parametrize("written_up", [True, False], ids=["finished", "before-summary"])
def test_an_early_stopped_run_is_not_continued_under_other_options(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys, written_up
):
    out, args = _early_stopped_run(training_manifest, feature_cache, tiny_args, tmp_path)
    if not written_up:
        # stopped after its stage ended early but before the summary: more epochs would train
        # nothing (the stage is never fitted again), so they are refused as for a finished run
        for name in ("summary.json", "model.json", "model.safetensors"):
            (out / name).unlink()
    before = _snapshot(out)
    capsys.readouterr()
    assert main([*args, "--max-epochs", "20", "--resume-with-changes"]) == 2
    error = capsys.readouterr().err
    lines = [line for line in error.splitlines() if line.strip()]
    assert len(lines) == 1 and "stopped early" in lines[0] and "max_epochs 10 -> 20" in lines[0]
    assert "Traceback" not in error
    assert _snapshot(out) == before
    if not written_up:  # without changes the resume finishes it, with no further epoch
        rows = read_metrics(out / "metrics.jsonl")
        assert main([*args, "--resume"]) == 0
        assert read_metrics(out / "metrics.jsonl") == rows and (out / "summary.json").is_file()


def test_resuming_a_run_that_reached_max_epochs_changes_nothing(
    training_manifest, feature_cache, tiny_args, tmp_path, capsys
):
    out = tmp_path / "run"
    args = tiny_args(training_manifest, out, feature_cache, "--max-epochs", "2")
    assert main(args) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    said = capsys.readouterr()
    assert "nothing to resume" in said.out + said.err and "max_epochs" in said.out + said.err
    assert _snapshot(out) == before  # summary.json too: not re-timed, not re-written


@pytest.mark.parametrize("finetune", [False, True], ids=["heads", "heads+finetune"])
def test_a_run_stopped_early_but_not_written_up_trains_no_further_epoch(
    training_manifest, feature_cache, tiny_args, tmp_path, finetune
):
    options = "finetune_epochs: 4\nfinetune_lr: 1.0e-12\n" if finetune else ""
    out, args = _early_stopped_run(training_manifest, feature_cache, tiny_args, tmp_path, options)
    summary = json.loads((out / "summary.json").read_text())
    model_id, rows = _model_id(out), read_metrics(out / "metrics.jsonl")
    # as if stopped (Ctrl-C, a crash) after the last stage ended but before the summary
    for name in ("summary.json", "model.json", "model.safetensors"):
        (out / name).unlink()
    assert main([*args, "--resume"]) == 0
    assert read_metrics(out / "metrics.jsonl") == rows
    assert _model_id(out) == model_id
    resumed = json.loads((out / "summary.json").read_text())
    for key in ("epochs_completed", "stop_reason", "best_epoch", "best_val_loss", "stages"):
        assert resumed[key] == summary[key], key


def test_a_stage_marker_killed_mid_write_keeps_the_last_complete_one(tmp_path, monkeypatch):
    """The marker tells a resume how a stage ended; a write cut short (kill, full disk) must
    leave the previous marker whole, not half a record that reads as another stop reason."""
    from artsim.training.stage import read_marker, write_marker

    marker = tmp_path / "heads.done"
    write_marker(marker, "early_stopping", 0.25)
    real_write = Path.write_text

    def cut_short(self, text, *args, **kwargs):
        real_write(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("killed mid-write")

    monkeypatch.setattr(Path, "write_text", cut_short)
    with pytest.raises(OSError, match="killed mid-write"):
        write_marker(marker, "max_epochs", 0.5)
    monkeypatch.undo()
    assert read_marker(marker, tmp_path) == ("early_stopping", 0.25)
