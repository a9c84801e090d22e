"""Fixtures of the evaluation tests: a run folder with random heads (no training needed)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    # one feature cache for the session, never the user's ~/.cache
    monkeypatch.setenv("ARTSIM_CACHE", str(tmp_path_factory.getbasetemp() / "artsim-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def eval_run(tmp_path_factory: pytest.TempPathFactory, synthetic_manifest: Path) -> Path:
    """model.safetensors/model.json (tiny towers, random heads) + split.csv + summary.json +
    config.yaml, as training writes them. Read-only: copy with ``run_copy``."""
    import yaml

    from artsim.data.manifest import load_manifest
    from artsim.data.split import group_split, write_split
    from artsim.model.heads import ArtSimModel, ModelConfig, save_model

    run = tmp_path_factory.mktemp("eval-runs") / "run"
    config = ModelConfig(
        image_tower="tiny",
        text_tower="tiny",
        image_feature_dim=32,
        text_feature_dim=32,
        embed_dim=16,
        hidden_dim=32,
    )
    save_model(ArtSimModel(config), run)
    manifest = load_manifest(synthetic_manifest)
    write_split(group_split(manifest.items, 0.5, seed=0), run / "split.csv")
    summary = {"data": str(synthetic_manifest), "data_fingerprint": manifest.fingerprint()}
    (run / "summary.json").write_text(json.dumps(summary), "utf-8")
    (run / "config.yaml").write_text(
        yaml.safe_dump({"data": str(synthetic_manifest), "margin": 0.2, "seed": 0}), "utf-8"
    )
    return run


@pytest.fixture
def run_copy(tmp_path: Path) -> Callable[[Path], Path]:
    """Copy a run folder into this test's tmp_path."""

    def copy(run: Path) -> Path:
        target = tmp_path / "runs" / run.name
        shutil.copytree(run, target)
        return target

    return copy
