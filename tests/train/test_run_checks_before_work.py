"""Options are checked before anything is written (a bad tower name leaves ``--out`` untouched,
and a folder left by a command that failed before its first epoch does not block the corrected
one), and ``--resume`` refuses data that changed since the run started, naming the rows."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from artsim.cli.train import main
from artsim.runfolder import read_metrics
from artsim.training.callbacks import MetricsJsonlWriter


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("option", "value", "wanted"),
    [
        ("--image-tower", "bogus", "unknown image tower 'bogus'"),
        ("--image-tower", "tiny+nope", "unknown image tower 'nope'"),
        ("--text-tower", "nope", "unknown text tower 'nope'"),
        ("--image-tower", "open_clip:ViT-B-32:/no/such/weights.safetensors", "not found"),
    ],
)
def test_a_bad_tower_writes_nothing_and_the_corrected_command_runs(
    training_manifest, feature_cache, tiny_args, tmp_path: Path, capsys, option, value, wanted
):
    out = tmp_path / "run"
    args = tiny_args(training_manifest, out, feature_cache, "--max-epochs", "1")
    capsys.readouterr()
    assert main([*args, option, value]) == 2
    assert wanted in one_line(capsys)
    assert not out.exists()
    assert main(args) == 0


def test_a_folder_of_a_run_that_never_trained_does_not_block_the_next_command(
    training_manifest, feature_cache, tiny_args, tmp_path: Path, capsys
):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("config.yaml", "split.csv", "problems.txt"):  # what a failed start left
        (out / name).write_text("left by a command that failed before training\n")
    args = tiny_args(training_manifest, out, feature_cache, "--max-epochs", "1")
    assert main([*args, "--resume"]) == 0
    assert len(read_metrics(out)) == 1
    (out / "notes.txt").write_text("mine")  # not a run's file: the folder is guarded again
    capsys.readouterr()
    assert main(args) == 2 and "not empty" in one_line(capsys)


def test_resume_refuses_data_that_changed_and_names_the_rows(
    training_manifest, feature_cache, tiny_args, tmp_path: Path, capsys, monkeypatch
):
    data = tmp_path / "data"
    shutil.copytree(training_manifest.parent, data)
    manifest = data / training_manifest.name
    out = tmp_path / "run"
    original = MetricsJsonlWriter.on_train_epoch_end

    def interrupted_in_epoch_two(self, trainer, module):
        original(self, trainer, module)
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(MetricsJsonlWriter, "on_train_epoch_end", interrupted_in_epoch_two)
    args = tiny_args(manifest, out, feature_cache, "--max-epochs", "4")
    assert main(args) == 130
    monkeypatch.setattr(MetricsJsonlWriter, "on_train_epoch_end", original)
    with manifest.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[3]["text"] += " (edited)"
    with manifest.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = read_metrics(out)
    capsys.readouterr()
    for flag in ("--resume", "--resume-with-changes"):
        assert main([*args, flag]) == 2
        line = one_line(capsys)
        assert "data changed" in line and f"1 changed (e.g. {rows[3]['id']!r})" in line, line
        assert read_metrics(out) == before
    rows[3]["text"] = rows[3]["text"].removesuffix(" (edited)")  # put back: the resume goes on
    with manifest.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main([*args, "--resume"]) == 0
    assert len(read_metrics(out)) > len(before)
