"""Every shipped training config under configs/ resolves to a valid TrainConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from artsim.training.config import resolve_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_shipped_config_resolves(path: Path) -> None:
    config = resolve_config(path)
    assert config.data and Path(config.data).suffix == ".csv"


def test_the_full_config_trains_on_the_full_corpus() -> None:
    config = resolve_config(Path(__file__).resolve().parents[1] / "configs" / "full.yaml")
    assert config.data == "data/full/manifest.csv" and config.out == "runs/full"
