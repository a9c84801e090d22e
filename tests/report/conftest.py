"""Fixtures of the report tests: a data set big enough for a gallery and an evaluated run.

Run folders come from the root conftest's ``write_run`` (no training): random heads are fine for
checking the mechanics of reports, comparisons and sweeps.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    # one feature cache for the session, never the user's ~/.cache
    root = tmp_path_factory.getbasetemp() / "artsim-cache"
    monkeypatch.setenv("ARTSIM_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def report_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic data set big enough for a gallery (12 groups, a third of them Spanish)."""
    from artsim.data.corpora.synthetic import make_synthetic_manifest

    return make_synthetic_manifest(tmp_path_factory.mktemp("report-data"), n_groups=12)


@pytest.fixture(scope="session")
def evaluated_run(
    tmp_path_factory: pytest.TempPathFactory, report_manifest: Path, write_run
) -> Path:
    """A fake run whose val split has been evaluated once (read-only: copy it with ``run_copy``)."""
    from artsim.eval.evaluate import evaluate_run

    cache = tmp_path_factory.getbasetemp() / "artsim-cache" / "features"
    run = write_run(tmp_path_factory.mktemp("runs") / "run", report_manifest)
    evaluate_run(run, split="val", cache_dir=cache)
    return run
