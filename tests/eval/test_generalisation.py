"""Trained vs frozen vs hash per task, the frozen fused baseline, and reading every evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from artsim.eval.generalisation import (
    baseline_comparison,
    frozen_fused_similarity,
    read_evaluations,
)


def _result(name: str, trained: dict, frozen: dict, phash: float | None = 0.3) -> dict:
    return {
        "name": name,
        "tasks": {task: {"recall@1": value} for task, value in trained.items()},
        "baselines": {
            "frozen": {task: {"recall@1": value} for task, value in frozen.items()},
            "phash": {"image": {"recall@1": phash}},
        },
    }


def test_below_frozen_lists_every_task_that_loses_even_slightly() -> None:
    result = _result(
        "x",
        {"image": 0.375, "text": 0.804, "fused": 0.9, "i2t": 0.01},
        {"image": 0.536, "text": 0.8041, "fused": 0.9},
    )
    comparison = baseline_comparison(result)
    assert comparison["below_frozen"] == ["image", "text"]
    image = comparison["tasks"]["image"]
    assert image == {
        "trained": 0.375,
        "frozen": 0.536,
        "phash": 0.3,
        "minus_frozen": image["minus_frozen"],
        "below_frozen": True,
    }
    assert abs(image["minus_frozen"] - (0.375 - 0.536)) < 1e-12
    assert comparison["tasks"]["fused"]["below_frozen"] is False  # a tie is not a loss
    assert "i2t" not in comparison["tasks"]  # no frozen cross-modal baseline exists


def test_a_missing_frozen_figure_is_not_a_flag() -> None:
    comparison = baseline_comparison(_result("x", {"image": 0.5, "fused": 0.1}, {"image": 0.4}))
    assert comparison["below_frozen"] == []
    assert comparison["tasks"]["fused"]["frozen"] is None
    assert comparison["tasks"]["fused"]["minus_frozen"] is None


def test_frozen_fused_similarity_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(0)
    image, text = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    query_text, gallery_text = rng.random(5) < 0.6, rng.random(7) < 0.6
    fused = frozen_fused_similarity(image, text, query_text, gallery_text)
    for q in range(5):
        for g in range(7):
            expected = (
                (image[q, g] + text[q, g]) / 2 if query_text[q] and gallery_text[g] else image[q, g]
            )
            assert abs(fused[q, g] - expected) < 1e-12


def test_read_evaluations_puts_val_first_and_skips_side_files(tmp_path: Path) -> None:
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    for name in ("external-b", "val", "heldout-a"):
        (eval_dir / f"{name}.json").write_text(json.dumps(_result(name, {}, {})))
    (eval_dir / "val.top5.json").write_text(json.dumps({"items": {}, "tasks": {}}))
    (eval_dir / "broken.json").write_text("{not json")
    assert [r["name"] for r in read_evaluations(tmp_path)] == ["val", "external-b", "heldout-a"]
    assert read_evaluations(tmp_path / "missing") == []
