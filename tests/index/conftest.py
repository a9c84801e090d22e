"""Fixtures for index tests: a tiny untrained run and an index of the synthetic originals.

The run has random heads; "its original ranks first" still holds when the query is the
original's own image file (or a lightly perturbed copy), which is what the tests use.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_tiny_run(folder: Path, seed: int = 0) -> Path:
    """A run folder with a tiny random model, made without training."""
    import torch

    from artsim.model.heads import ArtSimModel, ModelConfig, save_model

    torch.manual_seed(seed)
    config = ModelConfig(
        image_tower="tiny",
        text_tower="tiny",
        image_feature_dim=32,
        text_feature_dim=32,
        embed_dim=16,
        hidden_dim=32,
    )
    save_model(ArtSimModel(config), folder)
    return folder


@pytest.fixture(scope="session", autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep the tower feature cache out of the home folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARTSIM_CACHE", str(tmp_path_factory.mktemp("artsim-cache")))
        yield


@pytest.fixture(scope="session")
def make_run():
    """``make_run(folder, seed)``: another tiny random model (another ``model_id``)."""
    return make_tiny_run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="session")
def built_index(tiny_run: Path, synthetic_manifest: Path, tmp_path_factory) -> Path:
    """An index of the synthetic originals. Read-only: tests that change it use ``index_copy``."""
    from artsim.index.index import build_index

    out = tmp_path_factory.mktemp("indexes") / "synthetic"
    build_index(tiny_run, synthetic_manifest, out).close()
    return out


@pytest.fixture
def index_copy(built_index: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(built_index, target)
    return target
