"""Fixtures of the report tests: run folders made by hand (no training).

``write_fake_run`` follows the run-folder contract (config.yaml, split.csv, metrics.jsonl,
summary.json, model.safetensors + model.json) with random heads, so reports, comparisons and
sweeps are tested in seconds; random heads are fine for checking mechanics.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml


def metrics_rows(
    epochs: int = 8, train_final: float = 0.03, val_final: float = 0.08, seed: int = 0
) -> list[dict]:
    """Plausible per-epoch rows: losses falling towards the given finals, lr halved twice."""
    rows = []
    for epoch in range(1, epochs + 1):
        progress = epoch / epochs
        jitter = 0.002 * ((seed * 7 + epoch * 3) % 5 - 2)
        train = train_final + (0.5 - train_final) * (1 - progress) ** 2 + jitter
        val = val_final + (0.5 - val_final) * (1 - progress) ** 2 + jitter
        acc = lambda loss: max(0.0, min(1.0, 1.0 - loss / 2.5))  # noqa: E731
        lr = 1e-3 * (0.5 ** (epoch > epochs * 0.5)) * (0.5 ** (epoch > epochs * 0.75))
        row = {"epoch": epoch, "lr": lr, "train/loss": train, "train/triplet_acc": acc(train)}
        for part, scale in (("image", 0.4), ("text", 1.6), ("i2t", 1.1), ("t2i", 0.9)):
            row[f"train/{part}_loss"] = train * scale
            row[f"val/{part}_loss"] = val * scale
            row[f"val/{part}_acc"] = acc(val * scale)
        row["train/cross_loss"] = train
        row["val/cross_loss"] = val
        row["val/cross_acc"] = acc(val)
        row["val/loss"] = val
        row["val/triplet_acc"] = acc(val)
        row["epoch_seconds"] = 0.5
        rows.append(row)
    return rows


def write_fake_run(
    run_dir: Path,
    manifest: Path,
    *,
    val_fraction: float = 0.34,
    seed: int = 0,
    rows: list[dict] | None = None,
    stop_reason: str = "early_stopping",
    with_model: bool = True,
    config_extra: dict | None = None,
) -> Path:
    """Write a run folder as training would, without training."""
    from artsim.data.manifest import load_manifest
    from artsim.data.split import group_split, split_sizes, write_split
    from artsim.model.heads import ArtSimModel, ModelConfig, save_model

    run_dir.mkdir(parents=True, exist_ok=True)
    if with_model:
        import torch

        torch.manual_seed(seed)
        config = ModelConfig(
            image_tower="tiny",
            text_tower="tiny",
            image_feature_dim=32,
            text_feature_dim=32,
            embed_dim=16,
            hidden_dim=32,
        )
        save_model(ArtSimModel(config), run_dir)
    loaded = load_manifest(manifest)
    assignment = group_split(loaded.items, val_fraction, seed=seed)
    write_split(assignment, run_dir / "split.csv")
    sizes = split_sizes(assignment, loaded.items)
    rows = rows if rows is not None else metrics_rows(seed=seed)
    config = {
        "data": str(manifest),
        "out": str(run_dir),
        "val_fraction": val_fraction,
        "seed": seed,
        "image_tower": "tiny",
        "text_tower": "tiny",
        "margin": 0.2,
        "miner": "semihard",
        "hard_negatives": None,
        "max_epochs": 40,
        "finetune_epochs": 0,
        **(config_extra or {}),
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (run_dir / "metrics.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8"
    )
    best = min(rows, key=lambda row: row["val/loss"]) if rows else {}
    summary = {
        "epochs_completed": len(rows),
        "stop_reason": stop_reason,
        "best_epoch": best.get("epoch"),
        "best_val_loss": best.get("val/loss"),
        "final_lr": rows[-1]["lr"] if rows else None,
        "val_fraction": val_fraction,
        "seed": seed,
        "image_tower": "tiny",
        "text_tower": "tiny",
        "train_size": sizes["train"],
        "val_size": sizes["val"],
        "data_fingerprint": loaded.fingerprint(),
        "data": str(manifest),
        "final": rows[-1] if rows else {},
        "best": best,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return run_dir


@pytest.fixture
def write_run() -> Callable[..., Path]:
    """:func:`write_fake_run`, for tests (helpers cannot be imported under importlib mode)."""
    return write_fake_run


@pytest.fixture
def make_rows() -> Callable[..., list[dict]]:
    """:func:`metrics_rows`, for tests."""
    return metrics_rows


@pytest.fixture(autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    # one feature cache for the session, never the user's ~/.cache
    root = tmp_path_factory.getbasetemp() / "artsim-cache"
    monkeypatch.setenv("ARTSIM_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def report_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic data set big enough for a gallery (12 groups, a third of them Spanish)."""
    from artsim.data.synthetic import make_synthetic_manifest

    return make_synthetic_manifest(tmp_path_factory.mktemp("report-data"), n_groups=12)


@pytest.fixture(scope="session")
def evaluated_run(tmp_path_factory: pytest.TempPathFactory, report_manifest: Path) -> Path:
    """A fake run whose val split has been evaluated once (read-only: copy it with ``run_copy``)."""
    from artsim.eval.evaluate import evaluate_run

    cache = tmp_path_factory.getbasetemp() / "artsim-cache" / "features"
    run = write_fake_run(tmp_path_factory.mktemp("runs") / "run", report_manifest)
    evaluate_run(run, split="val", progress=False, cache_dir=cache)
    return run


@pytest.fixture
def run_copy(tmp_path: Path) -> Callable[[Path], Path]:
    """Copy a run folder into this test's tmp_path."""

    def copy(run: Path) -> Path:
        target = tmp_path / run.name
        shutil.copytree(run, target)
        return target

    return copy
