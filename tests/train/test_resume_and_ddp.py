"""Runs in separate processes: killed with SIGKILL then resumed, and two DDP processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artsim.runfolder import read_metrics

pytestmark = pytest.mark.slow

# small batches: many optimiser steps per epoch, so a kill usually lands inside one
CONFIG = "groups_per_batch: 2\nitems_per_group: 2\nplateau_patience: 0\nearly_stopping_patience: 50\nlr: 0.01\n"


def _command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "artsim", "train", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def _comparable(rows: list[dict]) -> list[dict]:
    """The figures of each row (wall-clock time and the stage's name apart)."""
    return [{k: v for k, v in row.items() if k not in ("epoch_seconds", "stage")} for row in rows]


def test_kill_minus_nine_then_resume_ends_like_an_uninterrupted_run(
    training_manifest, feature_cache, tiny_args, tmp_path
):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    epochs = ["--max-epochs", "6", "--config", str(config)]
    reference = tmp_path / "reference"
    subprocess.run(
        _command(tiny_args(training_manifest, reference, feature_cache, *epochs)),
        check=True,
        env=_env(),
        capture_output=True,
    )
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        _command(tiny_args(training_manifest, interrupted, feature_cache, *epochs)),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = interrupted / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(read_metrics(metrics)) >= 2:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    killed_at = len(read_metrics(metrics))
    assert killed_at < 6
    resumed = subprocess.run(
        _command(tiny_args(training_manifest, interrupted, feature_cache, *epochs, "--resume")),
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected = _comparable(read_metrics(reference / "metrics.jsonl"))
    got = _comparable(read_metrics(metrics))
    assert [row["epoch"] for row in got] == [1, 2, 3, 4, 5, 6]
    for want, have in zip(expected, got, strict=True):
        assert have == pytest.approx(want, rel=1e-6, abs=1e-7)
    summary = json.loads((interrupted / "summary.json").read_text())
    assert summary["final_lr"] == pytest.approx(
        json.loads((reference / "summary.json").read_text())["final_lr"]
    )


def test_two_ddp_processes_on_cpu(training_manifest, feature_cache, tiny_args, tmp_path):
    out = tmp_path / "ddp"
    result = subprocess.run(
        _command(
            tiny_args(training_manifest, out, feature_cache, "--max-epochs", "2", "--devices", "2")
        ),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_metrics(out / "metrics.jsonl")
    assert [row["epoch"] for row in rows] == [1, 2]  # written once, by process 0
    assert all(row["train/loss"] > 0 for row in rows)
    assert (out / "model.safetensors").is_file()
    assert "GLOBAL_RANK" not in Path(out / "summary.json").read_text()
