"""Fixtures of the evaluation tests: a run folder with random heads (no training needed)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    # one feature cache for the session, never the user's ~/.cache
    monkeypatch.setenv("ARTSIM_CACHE", str(tmp_path_factory.getbasetemp() / "artsim-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def eval_run(tmp_path_factory: pytest.TempPathFactory, synthetic_manifest: Path, write_run) -> Path:
    """A run folder as training writes it (tiny towers, random heads, half the groups on the
    validation side), made without training. Read-only: copy with ``run_copy``."""
    return write_run(
        tmp_path_factory.mktemp("eval-runs") / "run", synthetic_manifest, val_fraction=0.5
    )
