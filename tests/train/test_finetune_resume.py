"""kill -9 in either stage of a run with a fine-tune stage, then --resume: the same model and
the same metrics rows as an uninterrupted run (a tower with batch norm, like the real ones)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artsim.training.callbacks import read_metrics

pytestmark = pytest.mark.slow

HEADS, FINETUNE = 3, 3
CONFIG = (
    "groups_per_batch: 2\nitems_per_group: 2\nplateau_patience: 0\nearly_stopping_patience: 50\n"
    f"lr: 0.003\nfinetune_epochs: {FINETUNE}\nfinetune_lr: 0.003\nfinetune_blocks: 1\n"
    f"max_epochs: {HEADS}\nimage_tower: tiny-bn\n"
)


def _command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "artsim", "train", *args]


def _env() -> dict[str, str]:
    # one thread: the tower's multi-threaded CPU reductions may add in another order from run to
    # run (seen once: a 1.3e-6 relative difference in a loss), which is not what this test is about
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _args(tiny_args, manifest, out, cache, config, *extra):
    args = tiny_args(manifest, out, cache, "--config", str(config), *extra)
    position = args.index("--image-tower")
    return args[:position] + args[position + 2 :]  # the config's tiny-bn, not tiny


def _comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("epoch_seconds", "stage")} for row in rows]


def _finite_json(path: Path) -> dict:
    def refuse(constant: str):
        raise AssertionError(f"{path.name} holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def reference(training_manifest, feature_cache, tiny_args, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("reference")
    config = folder / "config.yaml"
    config.write_text(CONFIG)
    out = folder / "run"
    subprocess.run(
        _command(_args(tiny_args, training_manifest, out, feature_cache, config)),
        check=True,
        env=_env(),
        capture_output=True,
    )
    return out


@pytest.mark.parametrize("kill_after_rows", [1, HEADS + 1], ids=["in-heads", "in-finetune"])
def test_kill_minus_nine_in_either_stage_then_resume(
    reference, training_manifest, feature_cache, tiny_args, tmp_path, kill_after_rows
):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "run"
    args = _args(tiny_args, training_manifest, out, feature_cache, config)
    process = subprocess.Popen(
        _command(args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(read_metrics(metrics)) >= kill_after_rows:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert len(read_metrics(metrics)) < HEADS + FINETUNE
    resumed = subprocess.run(
        _command([*args, "--resume"]), env=_env(), capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    expected = _comparable(read_metrics(reference / "metrics.jsonl"))
    rows = read_metrics(metrics)
    got = _comparable(rows)
    assert [(row["epoch"], row["stage"]) for row in rows] == [
        (epoch, "heads" if epoch <= HEADS else "finetune")
        for epoch in range(1, HEADS + FINETUNE + 1)
    ]
    for want, have in zip(expected, got, strict=True):
        assert have == pytest.approx(want, rel=1e-6, abs=1e-7)
    summary, wanted = _finite_json(out / "summary.json"), _finite_json(reference / "summary.json")
    for have, want in zip(summary["stages"], wanted["stages"], strict=True):
        assert {k: v for k, v in have.items() if k != "best_val_loss"} == {
            k: v for k, v in want.items() if k != "best_val_loss"
        }
        assert have["best_val_loss"] == pytest.approx(want["best_val_loss"], rel=1e-6)
    assert all(math.isfinite(stage["best_val_loss"]) for stage in summary["stages"])
    card = _finite_json(out / "model.json")
    assert card["model_id"] == _finite_json(reference / "model.json")["model_id"]
    assert card["has_finetuned_image_tower"] == wanted["stages"][1]["kept"]
