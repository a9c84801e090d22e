"""Trained vs frozen vs hash per task, the frozen fused baseline, and reading every evaluation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from artsim.eval.generalisation import baseline_comparison, paired_comparison, sign_test
from artsim.eval.metrics import hits_at_k, recall_at_k
from artsim.eval.result import Comparison, EvalResult, read_results
from artsim.eval.tasks import frozen_fused_similarity


def _result(name: str, trained: dict, frozen: dict, phash: float | None = 0.3) -> dict:
    return {
        "name": name,
        "tasks": {task: {"recall@1": value} for task, value in trained.items()},
        "baselines": {
            "frozen": {task: {"recall@1": value} for task, value in frozen.items()},
            "phash": {"image": {"recall@1": phash}},
        },
    }


def _compare(result: dict):
    """The comparison of a result as a file holds it (an older one: no paired counts)."""
    read = EvalResult.from_dict(result)
    return baseline_comparison(read.retrieval, read.baselines)


def test_without_paired_counts_below_frozen_lists_every_task_that_loses_even_slightly() -> None:
    result = _result(
        "x",
        {"image": 0.375, "text": 0.804, "fused": 0.9, "i2t": 0.01},
        {"image": 0.536, "text": 0.8041, "fused": 0.9},
    )
    comparison = _compare(result)
    assert comparison.below_frozen == ["image", "text"]
    image = comparison.vs_baselines["image"]
    assert image == Comparison(
        trained=0.375,
        frozen=0.536,
        phash=0.3,
        minus_frozen=image.minus_frozen,
        wins=None,
        losses=None,
        p_value=None,
        below_frozen=True,
        lower_within_chance=False,
    )
    assert abs(image.minus_frozen - (0.375 - 0.536)) < 1e-12
    assert comparison.vs_baselines["fused"].below_frozen is False  # a tie is not a loss
    assert "i2t" not in comparison.vs_baselines  # no frozen cross-modal baseline exists


def test_a_missing_frozen_figure_is_not_a_flag() -> None:
    comparison = _compare(_result("x", {"image": 0.5, "fused": 0.1}, {"image": 0.4}))
    assert comparison.below_frozen == []
    assert comparison.vs_baselines["fused"].frozen is None
    assert comparison.vs_baselines["fused"].minus_frozen is None


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


def test_read_results_puts_val_first_and_skips_side_files(tmp_path: Path) -> None:
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    for name in ("external-b", "val", "heldout-a"):
        (eval_dir / f"{name}.json").write_text(json.dumps(_result(name, {}, {})))
    (eval_dir / "val.top5.json").write_text(json.dumps({"items": {}, "tasks": {}}))
    (eval_dir / "broken.json").write_text("{not json")
    assert [r.name for r in read_results(tmp_path)] == ["val", "external-b", "heldout-a"]
    assert read_results(tmp_path / "missing") == []


def _sign_test_loop(wins: int, losses: int) -> float:
    """Two-sided exact binomial test by summing every outcome as likely as or less likely than
    the observed one (the textbook definition; equal to doubling the tail for p = 1/2)."""
    n = wins + losses
    if n == 0:
        return 1.0
    from math import comb

    observed = comb(n, wins)
    return min(1.0, sum(comb(n, k) for k in range(n + 1) if comb(n, k) <= observed) / 2**n)


def test_sign_test_matches_the_textbook_definition() -> None:
    for wins in range(0, 12):
        for losses in range(0, 12):
            assert abs(sign_test(wins, losses) - _sign_test_loop(wins, losses)) < 1e-12
    assert sign_test(3, 3) == 1.0
    assert abs(sign_test(0, 5) - 2 / 32) < 1e-12


def test_sign_test_on_tens_of_thousands_of_differing_queries() -> None:
    # a large evaluation: 29,700 won, 30,300 lost. Summing math.comb afresh for every k took
    # minutes at this size; the answer agrees with the normal approximation (continuity
    # corrected), which is accurate to a fraction of a percent here
    wins, losses = 29_700, 30_300
    z = (abs(wins - losses) - 1) / math.sqrt(wins + losses)
    assert sign_test(wins, losses) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=0.02)
    assert sign_test(losses, wins) == sign_test(wins, losses)


def test_paired_counts_come_from_per_query_hits_whose_mean_is_recall() -> None:
    rng = np.random.default_rng(1)
    trained, frozen = rng.normal(size=(40, 9)), rng.normal(size=(40, 9))
    frozen[:5] = trained[:5]  # some queries rank identically
    trained[7, 3] = trained[7, 0]  # a tie
    correct = rng.integers(0, 9, size=40)
    t_hits, f_hits = hits_at_k(trained, correct, 1), hits_at_k(frozen, correct, 1)
    assert abs(t_hits.mean() - recall_at_k(trained, correct, 1)) < 1e-12
    paired = paired_comparison(t_hits, f_hits)
    wins = sum(1 for q in range(40) if t_hits[q] > f_hits[q])
    losses = sum(1 for q in range(40) if t_hits[q] < f_hits[q])
    assert paired == {
        "wins": wins,
        "losses": losses,
        "queries": 40,
        "p_value": sign_test(wins, losses),
    }


def _with_paired(result: dict, task: str, wins: int, losses: int) -> dict:
    frozen = result["baselines"]["frozen"][task]
    frozen["paired"] = {
        "wins": wins,
        "losses": losses,
        "queries": 1743,
        "p_value": sign_test(wins, losses),
    }
    return result


def test_a_lower_figure_within_chance_is_reported_apart_not_as_below() -> None:
    # 1 query won and 3 lost of 1743 (p 0.625): lower, but the gap may be chance
    result = _result("art4apps", {"text": 0.9925, "image": 0.80}, {"text": 0.9937, "image": 0.85})
    result = _with_paired(result, "text", 1, 3)
    result = _with_paired(result, "image", 10, 97)  # a real loss (p far below 0.05)
    comparison = _compare(result)
    assert comparison.below_frozen == ["image"]
    assert comparison.lower_within_chance == ["text"]
    text = comparison.vs_baselines["text"]
    assert (text.wins, text.losses, text.below_frozen) == (1, 3, False)
    assert text.lower_within_chance is True
    assert abs(text.p_value - 0.625) < 1e-12
