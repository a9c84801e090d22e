"""Open-set figures against plain loops and hand-worked answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from artsim.verdicts.openset import (
    binomial_interval,
    fit_isotonic,
    isc_figures,
    isotonic_probability,
    micro_average_precision,
    open_set_threshold,
    open_set_thresholds,
    recall_at_precision,
)


def loop_micro_ap(scores, is_match, n_positives):
    """The ISC definition read literally: rank every prediction, worst-first within a tie, and
    add precision at each true one."""
    ranked = sorted(zip(scores, is_match, strict=True), key=lambda p: (-p[0], p[1]))
    found, total = 0, 0.0
    for position, (_, match) in enumerate(ranked, start=1):
        if match:
            found += 1
            total += found / position
    return total / n_positives


def loop_recall_at_precision(scores, is_match, n_positives, target):
    best = (0.0, math.nan)
    for threshold in sorted(set(scores), reverse=True):
        taken = [m for s, m in zip(scores, is_match, strict=True) if s >= threshold]
        precision = sum(taken) / len(taken)
        recall = sum(taken) / n_positives
        if precision >= target and recall > best[0]:
            best = (recall, threshold)
    return best


@pytest.mark.parametrize("seed", range(8))
def test_micro_ap_matches_the_loop_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    scores = rng.integers(0, 6, n) / 5.0  # few distinct values: many ties
    is_match = rng.random(n) < 0.4
    n_positives = int(is_match.sum()) + int(rng.integers(0, 4))  # some originals never found
    if n_positives == 0:
        n_positives = 1
    assert micro_average_precision(scores, is_match, n_positives) == pytest.approx(
        loop_micro_ap(scores.tolist(), is_match.tolist(), n_positives)
    )


def test_micro_ap_orders_ties_worst_first():
    # one true and one false prediction at the same score: the false one counts first
    assert micro_average_precision([0.5, 0.5], [True, False], 1) == pytest.approx(0.5)
    # a constant score over everything earns the base rate, not a perfect ranking
    assert micro_average_precision([1.0] * 4, [True, True, False, False], 2) == pytest.approx(
        (1 / 3 + 2 / 4) / 2
    )


def test_micro_ap_counts_distractor_predictions_and_missed_originals():
    # the distractor query's wrong top answer outranks the true one
    assert micro_average_precision([0.9, 0.8], [False, True], 1) == pytest.approx(0.5)
    # an original no prediction names halves the figure
    assert micro_average_precision([0.9], [True], 2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        micro_average_precision([0.9, 0.8], [True, True], 1)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("target", [0.5, 0.9, 0.95])
def test_recall_at_precision_matches_the_loop(seed, target):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 50))
    scores = (rng.integers(0, 10, n) / 9.0).tolist()
    is_match = (rng.random(n) < 0.6).tolist()
    n_positives = max(1, sum(is_match))
    got = recall_at_precision(scores, is_match, n_positives, target)
    recall, threshold = loop_recall_at_precision(scores, is_match, n_positives, target)
    assert got["recall"] == pytest.approx(recall)
    if recall > 0:
        assert got["threshold"] == pytest.approx(threshold)
        assert got["precision"] >= target


def test_isc_figures_keep_distractor_queries():
    similarity = np.array(
        [
            [0.9, 0.1, 0.2],  # original 0, found first
            [0.3, 0.2, 0.8],  # original 1, but 2 scores higher
            [0.1, 0.95, 0.0],  # distractor: its original is not in the gallery
        ]
    )
    relevant = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=bool)
    figures = isc_figures(similarity, relevant, k=1)
    # pooled top-1s: 0.95 (false), 0.9 (true), 0.8 (false); 2 originals to find
    assert figures["micro_ap"] == pytest.approx((1 / 2) / 2)
    assert figures["n_distractor_queries"] == 1
    assert figures["at_precision_0.9"]["recall"] == 0.0
    figures = isc_figures(similarity, relevant, k=3)
    scores = similarity.ravel().tolist()
    assert figures["micro_ap"] == pytest.approx(loop_micro_ap(scores, relevant.ravel(), 2))


def loop_open_set_threshold(values, rate):
    # the lowest candidate (a value or just above the top) whose reach is within the rate
    candidates = sorted({*values, max(values) + 1e-5})
    for candidate in candidates:
        if sum(v >= candidate for v in values) <= rate * len(values) + 1e-9:
            return candidate
    raise AssertionError


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("rate", [0.001, 0.01, 0.05, 0.2])
def test_open_set_threshold_matches_the_loop(seed, rate):
    rng = np.random.default_rng(seed)
    values = (rng.integers(0, 30, int(rng.integers(1, 120))) / 29.0).tolist()
    got = open_set_threshold(values, rate)
    assert got == pytest.approx(loop_open_set_threshold(values, rate))
    assert sum(v >= got for v in values) <= rate * len(values) + 1e-9


def test_open_set_thresholds_report_recall_and_wrong_originals():
    distractors = np.linspace(0.0, 0.99, 100)  # one in a hundred reaches 0.99
    match_top1 = np.array([0.995, 0.999, 0.5, 0.996])
    correct = np.array([True, True, True, False])
    figures = open_set_thresholds(match_top1, correct, distractors, rates=(0.01,))["0.01"]
    assert figures["threshold"] == pytest.approx(0.99)
    assert figures["false_rate"] == pytest.approx(0.01)
    assert figures["recall"] == pytest.approx(2 / 4)
    assert figures["wrong"] == pytest.approx(1 / 4)


def test_isotonic_is_monotone_and_smoothed():
    scores = [0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.9]
    labels = [0, 0, 1, 0, 0, 1, 1, 1]
    model = fit_isotonic(scores, labels)
    assert model["y"] == sorted(model["y"])
    assert all(0.0 < p < 1.0 for p in model["y"])
    low = isotonic_probability(model, 0.1)
    high = isotonic_probability(model, 0.95)
    assert low == pytest.approx(1 / 4)  # (0 + 1) / (2 + 2): the first two are false
    assert high == pytest.approx(4 / 5)  # (3 + 1) / (3 + 2): the last three are true
    # the violator (a true 0.3 before false 0.35, 0.4) is pooled: one block of 1 in 3
    assert isotonic_probability(model, 0.33) == pytest.approx(2 / 5)
    assert isotonic_probability({"x": [], "y": []}, 0.5) is None


def test_binomial_interval_known_values():
    low, high = binomial_interval(0, 100)
    assert low == 0.0 and high == pytest.approx(0.0362, abs=1e-4)  # 1 - 0.025 ** (1/100)
    low, high = binomial_interval(5, 10)
    assert low == pytest.approx(0.1871, abs=1e-4) and high == pytest.approx(0.8129, abs=1e-4)
    low, high = binomial_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 10), abs=1e-4)


def test_thresholds_with_confidence_let_through_only_what_the_bound_allows():
    # 300 distinct distractor scores: the plain 1% threshold lets 3 reach it (1% on average); at
    # 95% confidence none may (0 of 300 bounds the rate at 0.99%; 1 of 300 only at 1.57%)
    from artsim.verdicts.openset import binomial_interval, bounded_count, open_set_threshold

    scores = np.linspace(0.0, 1.0, 300)
    assert int((scores >= open_set_threshold(scores, 0.01)).sum()) == 3
    assert int((scores >= open_set_threshold(scores, 0.01, confidence=0.95)).sum()) == 0
    for rate in (0.01, 0.05, 0.25):
        allowed = int((scores >= open_set_threshold(scores, rate, confidence=0.95)).sum())
        assert allowed == bounded_count(300, rate, 0.95)
        # the largest count whose one-sided 95% upper bound is still within the rate
        assert allowed == 0 or binomial_interval(allowed, 300, 0.90)[1] <= rate
        assert binomial_interval(allowed + 1, 300, 0.90)[1] > rate
    assert bounded_count(300, 0.05, 0.95) == 8 and bounded_count(600, 0.01, 0.95) == 1
