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
