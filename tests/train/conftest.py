"""Fixtures for training tests: a synthetic corpus big enough for a few batches per epoch."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def training_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from artsim.data.corpora.synthetic import make_synthetic_manifest

    return make_synthetic_manifest(tmp_path_factory.mktemp("training"), n_groups=24)


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="session")
def tiny_args():
    """``tiny_args(manifest, out, cache, *extra)``: options of a seconds-long CPU run."""
    return _tiny_args


def _tiny_args(manifest: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "--data",
        str(manifest),
        "--out",
        str(out),
        "--image-tower",
        "tiny",
        "--text-tower",
        "tiny",
        "--cache-dir",
        str(cache),
        "--accelerator",
        "cpu",
        "--no-progress",
        *extra,
    ]
