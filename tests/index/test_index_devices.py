"""``artsim index build --devices 2``: the images embedded by two processes (Lightning's
prediction loop) are the vectors one process makes, and the index holds every original."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from artsim.cli.index import main
from artsim.model.embedder import Embedder

pytestmark = pytest.mark.slow


def test_build_on_two_processes_embeds_like_one(
    tiny_run, synthetic_manifest, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ARTSIM_CACHE", str(tmp_path / "cache"))  # empty: every image is embedded
    out = tmp_path / "index"
    args = ["build", "--run", str(tiny_run), "--data", str(synthetic_manifest), "--out", str(out)]
    assert main([*args, "--devices", "2", "--calibrate-sample", "0"]) == 0
    with synthetic_manifest.open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["role"] == "original"]
    paths = [synthetic_manifest.parent / row["image"] for row in rows]
    cached = Embedder.from_run(tiny_run).image_features(paths)  # what the two processes cached
    fresh = Embedder.from_run(tiny_run, cache_dir=False).image_features(paths)
    np.testing.assert_allclose(cached, fresh, rtol=1e-5, atol=1e-6)
    capsys.readouterr()
    assert main(["info", "--index", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == len(rows)
