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
    from artsim.data.corpora.synthetic import make_synthetic_manifest

    return make_synthetic_manifest(tmp_path_factory.mktemp("synthetic"), n_groups=6)


@pytest.fixture
def tmp_copy(tmp_path: Path) -> Callable[[Path], Path]:
    """Copy a manifest's whole folder into this test's tmp_path; returns the copied manifest."""

    def copy(manifest: Path) -> Path:
        target = tmp_path / manifest.parent.name
        shutil.copytree(manifest.parent, target)
        return target / manifest.name

    return copy


# -- run folders made without training, written through artsim.runfolder ------------------------


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
    manifest: Path | None = None,
    *,
    val_fraction: float = 0.34,
    seed: int = 0,
    rows: list[dict] | None = None,
    stop_reason: str = "early_stopping",
    with_model: bool = True,
    config_extra: dict | None = None,
) -> Path:
    """Write a run folder as training would, without training: a tiny random model (seeded by
    ``seed``) and, given a manifest, config.yaml, split.csv, metrics.jsonl and summary.json."""
    from artsim import runfolder

    run_dir.mkdir(parents=True, exist_ok=True)
    if with_model:
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
        save_model(ArtSimModel(config), run_dir)
    if manifest is None:
        return run_dir
    from artsim.data.manifest.manifest import load_manifest
    from artsim.data.manifest.split import group_split, split_sizes

    loaded = load_manifest(manifest)
    assignment = group_split(loaded.items, val_fraction, seed=seed)
    runfolder.write_split(assignment, run_dir / runfolder.SPLIT_FILE)
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
    runfolder.write_config(config, run_dir / runfolder.CONFIG_FILE)
    runfolder.write_metrics(runfolder.metrics_path(run_dir), rows)
    best = min(rows, key=lambda row: row["val/loss"]) if rows else {}
    runfolder.write_summary(
        run_dir,
        {
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
        },
    )
    return run_dir


def make_tiny_run(folder: Path, seed: int = 0) -> Path:
    """A run folder holding only a tiny random model (index and service tests)."""
    return write_fake_run(folder, seed=seed)


@pytest.fixture(scope="session")
def write_run() -> Callable[..., Path]:
    """:func:`write_fake_run`, for tests (helpers cannot be imported under importlib mode)."""
    return write_fake_run


@pytest.fixture(scope="session")
def make_rows() -> Callable[..., list[dict]]:
    """:func:`metrics_rows`, for tests."""
    return metrics_rows


@pytest.fixture
def run_copy(tmp_path: Path) -> Callable[[Path], Path]:
    """Copy a run folder into this test's tmp_path."""

    def copy(run: Path) -> Path:
        target = tmp_path / "runs" / run.name
        shutil.copytree(run, target)
        return target

    return copy


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
    from artsim.index.build import build_index

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


# -- disks that refuse writes: a small tmpfs (full disk) or a read-only folder -------------------


def _mount_tmpfs(path: Path, options: str) -> bool:
    """Mount a tmpfs at ``path`` (root on Linux only); False where the machine does not allow it."""
    import subprocess
    import sys

    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path):
    """``small_disk(kilobytes) -> Path``: a folder on a tmpfs of that size, so writes past it
    fail with ENOSPC as on a full disk. Needs root on Linux (``mount``); skipped elsewhere (the
    injected-ENOSPC tests cover those machines)."""
    import subprocess

    mounted: list[Path] = []

    def make(kilobytes: int, name: str = "disk") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        if not _mount_tmpfs(folder, f"size={kilobytes}k"):
            pytest.skip("mounting a small tmpfs needs root on Linux")
        mounted.append(folder)
        return folder

    def grow(folder: Path, kilobytes: int) -> None:
        """Give a mounted small disk more room (as freeing space would)."""
        subprocess.run(["mount", "-o", f"remount,size={kilobytes}k", str(folder)], check=True)

    make.grow = grow
    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_disk(folder: Path, leave: int = 0) -> None:
    """Fill the file system of ``folder`` until at most ``leave`` bytes are free."""
    filler = folder / ".filler"
    with filler.open("ab") as handle:
        chunk = b"\0" * 4096
        while shutil.disk_usage(folder).free > leave + len(chunk):
            try:
                handle.write(chunk)
                handle.flush()
            except OSError:
                break


@pytest.fixture
def filled():
    """``filled(folder, leave=0)``: fill ``folder``'s file system (see :func:`fill_disk`)."""
    return fill_disk


@pytest.fixture
def read_only_folder(tmp_path: Path):
    """A folder this process cannot write: permissions 0555, or (for root, whom permissions do
    not stop) a read-only tmpfs; skipped where neither works."""
    import subprocess

    folder = tmp_path / "read-only"
    folder.mkdir()
    mounted = False
    if os.geteuid() == 0:
        mounted = _mount_tmpfs(folder, "ro,size=64k")
        if not mounted:
            pytest.skip("root ignores permissions and mounting a read-only tmpfs failed")
    else:
        folder.chmod(0o555)
    yield folder
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    else:
        folder.chmod(0o755)
