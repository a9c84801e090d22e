"""The main job end to end on a small real corpus: `artsim demo` in-process."""

from __future__ import annotations

import json
import shutil

import pytest

from artsim.cli import main

pytestmark = pytest.mark.slow


def test_demo_runs_every_step_on_a_small_real_corpus(tmp_path, capsys):
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("apt-get and dpkg-deb are needed to fetch the Debian packages")
    out = tmp_path / "run"
    args = [
        "demo",
        "--out",
        str(out),
        "--data-dir",
        str(tmp_path / "data"),
        "--max-originals",
        "24",
        "--max-epochs",
        "3",
        "--no-external",
    ]
    assert main(args) == 0
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long paths
    for name in (
        "summary.json",
        "model.safetensors",
        "calibration.json",
        "report.html",
        "report.es.html",
    ):
        assert (out / name).is_file(), name
    assert (out / "index").is_dir()
    # --no-external: the external set is neither built nor evaluated
    assert not (out / "eval" / "external-art4apps-heldout.json").exists()
    assert "external check: skipped (--no-external)" in printed
    # the validation groups through the held-out family, judged against the frozen towers
    heldout = json.loads((out / "eval" / "heldout-val.json").read_text())
    assert heldout["counts"]["queries"] > 0 and "below_frozen" in heldout
    assert (tmp_path / "heldout" / "val" / "manifest.csv").is_file()
    assert "trained vs baselines" in printed
    assert json.loads((out / "summary.json").read_text())["epochs_completed"] <= 3
    assert "closest originals" in printed and "artsim serve --index" in printed
    # a second run reuses the trained model instead of training again
    assert main(args) == 0
    assert "already holds this run" in " ".join(capsys.readouterr().out.split())
