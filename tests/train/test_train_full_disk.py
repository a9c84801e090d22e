"""Training on a full disk: refused before any work when there is no room, one line (no
traceback) when the disk fills mid-run, no temporary file left, and ``--resume`` afterwards ends
as an uninterrupted run would. Needs a small tmpfs (root on Linux); skipped elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from artsim.cli.train import main
from artsim.runfolder import read_metrics, read_summary


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_a_full_disk_is_refused_before_any_work(
    training_manifest, feature_cache, tiny_args, small_disk, filled, capsys
):
    disk = small_disk(1024)
    filled(disk, leave=32 * 1024)
    out = disk / "run"
    capsys.readouterr()
    assert main(tiny_args(training_manifest, out, feature_cache, "--max-epochs", "2")) == 2
    line = one_line(capsys)
    assert "--out" in line and "No space left on device" in line, line
    assert not out.exists() or list(out.iterdir()) == []


def test_a_disk_full_mid_run_is_one_line_and_resume_ends_as_an_uninterrupted_run(
    training_manifest, feature_cache, tiny_args, small_disk, tmp_path: Path, capsys
):
    disk = small_disk(512)  # the write check (256 KB) passes; two checkpoints do not fit
    out = disk / "run"
    args = tiny_args(training_manifest, out, feature_cache, "--max-epochs", "6", "--seed", "1")
    capsys.readouterr()
    assert main(args) == 4
    line = one_line(capsys)
    assert "no space left" in line and "--resume" in line and str(out) in line, line
    assert [p.name for p in out.rglob("*.tmp")] == []
    done = read_metrics(out)
    assert all("val/loss" in row for row in done)  # whole rows only
    small_disk.grow(disk, 8192)
    assert main([*args, "--resume"]) == 0
    resumed = read_metrics(out)
    reference = tmp_path / "reference"
    assert (
        main(
            tiny_args(
                training_manifest, reference, feature_cache, "--max-epochs", "6", "--seed", "1"
            )
        )
        == 0
    )
    expected = read_metrics(reference)
    assert [row["epoch"] for row in resumed] == [row["epoch"] for row in expected]
    for got, want in zip(resumed, expected, strict=True):
        assert got["val/loss"] == pytest.approx(want["val/loss"], abs=1e-6)
    assert read_summary(out)["best_epoch"] == read_summary(reference)["best_epoch"]
