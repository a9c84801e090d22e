"""Shared fixtures: a small synthetic data set made once per session, copied per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

# Tests never reach the network; set before any test module imports a hub client.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def synthetic_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic manifest (6 groups, 3 generated per original, 32 px images). Read-only:
    tests that change it take a copy with ``tmp_copy``."""
    from artsim.data.synthetic import make_synthetic_manifest

    return make_synthetic_manifest(tmp_path_factory.mktemp("synthetic"), n_groups=6)


@pytest.fixture
def tmp_copy(tmp_path: Path) -> Callable[[Path], Path]:
    """Copy a manifest's whole folder into this test's tmp_path; returns the copied manifest."""

    def copy(manifest: Path) -> Path:
        target = tmp_path / manifest.parent.name
        shutil.copytree(manifest.parent, target)
        return target / manifest.name

    return copy


# -- a tiny untrained run and an index of the synthetic originals (index and serve tests) --


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


@pytest.fixture(scope="session")
def isolated_feature_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep the tower feature cache out of the home folder (index and service tests use it)."""
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


@pytest.fixture
def foreign_default_device():
    """A CPU stand-in for a GPU: code that makes a tensor without its inputs' device fails.

    Inside ``with foreign_default_device():`` PyTorch's default device is ``meta``. Inputs made
    before entering stay on the CPU, so a tensor created inside without ``device=``
    (``torch.tensor(x)``, ``torch.zeros(n)``) lands on ``meta`` and the first operation mixing
    it with the inputs raises ``Expected all tensors to be on the same device``: the error a
    CUDA run would hit.
    """
    import contextlib

    import torch

    @contextlib.contextmanager
    def guard(device: str = "meta"):
        previous = torch.get_default_device()
        torch.set_default_device(device)
        try:
            yield
        finally:
            torch.set_default_device(previous)

    return guard
