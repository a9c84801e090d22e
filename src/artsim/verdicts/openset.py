"""Open-set figures: what a search's top answer means when the original may not be indexed at all.

A per-pair false-positive rate (``metrics.threshold_at_fpr``) says how often ONE unrelated original
clears a threshold; a search compares the query with every original and reports the best, so a
query whose original is not in the index still has a top-1 that is compared with the threshold.
The figures here work on what a search returns:

* ``micro_average_precision``: the copy-detection figure of the ISC 2021 challenge. Every
  (query, reference, score) prediction of every query is pooled into one list ranked by score;
  queries without a true original ("distractors") keep their predictions, which can only be
  false; ties are ordered worst-first (false before true), so a constant score earns nothing.
* ``recall_at_precision``: on the same pooled list, the most true predictions found while
  precision stays at or above a target, and the threshold that does it.
* ``open_set_thresholds``: thresholds on the top-1 score such that at most a share ``rate`` of
  distractor queries get a top-1 at or above them, with the recall this keeps for the queries
  whose original is indexed (their top-1 being the original).
* ``fit_isotonic`` / ``isotonic_probability``: the calibrated probability that a top-1 result
  is the query's original, from its score (pool-adjacent-violators, no library needed).
* ``binomial_interval``: the exact (Clopper-Pearson) interval of a measured share.

Each has a plain-loop twin in ``tests/eval/test_openset.py``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The verdict's default: "derived" is given to at most 1% of queries whose original is not in the
# index. 0.1% and 5% are reported beside it.
OPEN_SET_RATES = (0.001, 0.01, 0.05)
DEFAULT_RATE = 0.01
PRECISION_TARGETS = (0.9, 0.95)
# "Just above" a score: more than the float32 rounding that separates the same cosine computed
# by two searches (an exhaustive one and one restricted to candidates), so a threshold set above
# a calibration query's score stays above it when the service recomputes that score.
ABOVE = 1e-5


def _pooled(scores, is_match) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    is_match = np.asarray(is_match, dtype=bool).ravel()
    if scores.shape != is_match.shape:
        raise ValueError(
            f"scores and is_match differ in length: {scores.shape} vs {is_match.shape}"
        )
    # best score first; within a tie the false predictions first (worst-first)
    order = np.lexsort((is_match, -scores))
    return scores[order], is_match[order]


def _check_positives(n_positives: int, is_match: np.ndarray) -> int:
    n_positives = int(n_positives)
    if n_positives < int(is_match.sum()):
        raise ValueError(
            f"n_positives ({n_positives}) is below the number of true predictions "
            f"({int(is_match.sum())})"
        )
    return n_positives


def micro_average_precision(scores, is_match, n_positives: int) -> float:
    """µAP of pooled predictions: ``sum_i precision@i * [prediction i is true] / n_positives``.

    ``n_positives`` is the number of (query, original) pairs there are to find, found or not
    (queries whose original is in the gallery); a true original no prediction names lowers µAP.

    >>> round(micro_average_precision([0.9, 0.8, 0.7], [True, False, True], n_positives=3), 4)
    0.5556
    """
    scores, is_match = _pooled(scores, is_match)
    n_positives = _check_positives(n_positives, is_match)
    if n_positives == 0:
        return float("nan")
    true_so_far = np.cumsum(is_match)
    precision = true_so_far / np.arange(1, len(is_match) + 1)
    return float(precision[is_match].sum() / n_positives)


def _curve(scores, is_match, n_positives: int):
    """Precision and recall at each distinct threshold (all predictions >= it), best first."""
    scores, is_match = _pooled(scores, is_match)
    n_positives = _check_positives(n_positives, is_match)
    true_so_far = np.cumsum(is_match)
    # the last position of each run of equal scores: a threshold takes a tie whole
    last = np.nonzero(np.r_[scores[1:] != scores[:-1], True])[0] if len(scores) else np.array([])
    last = last.astype(np.int64)
    tp = true_so_far[last] if len(last) else np.array([])
    precision = tp / (last + 1) if len(last) else np.array([])
    recall = tp / n_positives if n_positives else np.full(len(last), np.nan)
    return scores[last] if len(last) else np.array([]), precision, recall


def recall_at_precision(scores, is_match, n_positives: int, target: float) -> dict[str, float]:
    """The threshold with the highest recall whose precision is at least ``target``.

    Returns ``threshold``, ``recall``, ``precision`` there; recall 0 and threshold NaN when no
    threshold reaches the precision.

    >>> recall_at_precision([0.9, 0.8, 0.7], [True, False, True], 2, 0.9)["recall"]
    0.5
    """
    thresholds, precision, recall = _curve(scores, is_match, n_positives)
    ok = precision >= target - 1e-12
    if not ok.any() or n_positives == 0:
        return {"threshold": float("nan"), "recall": 0.0, "precision": float("nan")}
    best = int(np.argmax(np.where(ok, recall, -1.0)))
    return {
        "threshold": float(thresholds[best]),
        "recall": float(recall[best]),
        "precision": float(precision[best]),
    }


def top_predictions(similarity: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the gallery positions and scores of its ``k`` best originals (best first)."""
    similarity = np.asarray(similarity, dtype=np.float64)
    k = min(k, similarity.shape[1])
    if k == 0:
        empty = np.zeros((similarity.shape[0], 0))
        return empty.astype(np.int64), empty
    part = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(similarity, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def isc_from_predictions(scores, is_match, n_positives: int) -> dict[str, Any]:
    """µAP and recall at precision 0.90 / 0.95 (with thresholds) of pooled predictions."""
    out: dict[str, Any] = {"micro_ap": micro_average_precision(scores, is_match, n_positives)}
    for target in PRECISION_TARGETS:
        out[f"at_precision_{target:g}"] = recall_at_precision(scores, is_match, n_positives, target)
    return out


def isc_figures(similarity: np.ndarray, relevant: np.ndarray, k: int = 10) -> dict[str, Any]:
    """µAP and recall at precision 0.90 / 0.95 from a (queries x gallery) similarity matrix.

    ``relevant[q, g]`` marks the query's original(s); a query with none is a distractor. Each
    query contributes its ``k`` best originals as predictions, as an ISC submission does.
    """
    relevant = np.asarray(relevant, dtype=bool)
    positions, scores = top_predictions(similarity, k)
    is_match = np.take_along_axis(relevant, positions, axis=1)
    return {
        **isc_from_predictions(scores, is_match, int(relevant.sum())),
        "predictions_per_query": int(positions.shape[1]),
        "n_queries": int(relevant.shape[0]),
        "n_distractor_queries": int((~relevant.any(axis=1)).sum()),
    }


def gallery_halves(groups: Sequence[str]) -> np.ndarray:
    """0 or 1 per gallery item, by group: groups ordered by a stable hash (the same in every
    process) go alternately to each half, so the halves differ by at most one group."""
    names = sorted(set(groups), key=lambda g: hashlib.sha256(f"half\x00{g}".encode()).digest())
    half = {name: position % 2 for position, name in enumerate(names)}
    return np.array([half[group] for group in groups], dtype=np.int64)


@dataclass
class CrossFit:
    """Top-1 scores of queries against half a gallery: with their original there or not."""

    match_top1: np.ndarray
    match_correct: np.ndarray
    distractor_top1: np.ndarray
    isc: dict[str, Any]


def cross_fit(
    similarity: np.ndarray, relevant: np.ndarray, gallery_groups: Sequence[str], k: int = 10
) -> CrossFit:
    """Distractor queries out of a closed evaluation, by halving the gallery.

    The gallery's groups fall in two halves; against each half, the queries whose original is
    there are matches and all others are distractors (their original is in the other half). So
    every query counts once as a match and once as a distractor, against a gallery of about
    half the size. The ISC figures pool the ``k`` best predictions of every query in both halves.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    halves = gallery_halves(gallery_groups)
    match_top1, match_correct, distractor_top1 = [], [], []
    pooled_scores, pooled_match, n_positives = [], [], 0
    for half in (0, 1):
        columns = np.nonzero(halves == half)[0]
        if len(columns) == 0:
            continue
        sub, sub_relevant = similarity[:, columns], relevant[:, columns]
        has_original = sub_relevant.any(axis=1)
        best = sub.argmax(axis=1)
        top1 = sub[np.arange(len(sub)), best]
        match_top1.append(top1[has_original])
        match_correct.append(sub_relevant[np.arange(len(sub)), best][has_original])
        distractor_top1.append(top1[~has_original])
        positions, scores = top_predictions(sub, k)
        pooled_scores.append(scores.ravel())
        pooled_match.append(np.take_along_axis(sub_relevant, positions, axis=1).ravel())
        n_positives += int(sub_relevant.sum())
    join = lambda parts, dtype: np.concatenate(parts) if parts else np.array([], dtype)  # noqa: E731
    isc = isc_from_predictions(join(pooled_scores, float), join(pooled_match, bool), n_positives)
    return CrossFit(
        join(match_top1, float), join(match_correct, bool), join(distractor_top1, float), isc
    )


def bounded_count(n: int, rate: float, confidence: float) -> int:
    """The most of ``n`` distractors that may reach a threshold while the exact one-sided upper
    bound (at ``confidence``) of the rate they stand for stays at or below ``rate``; 0 when even
    none would not bound it that low (then the bound says how far it is).

    >>> bounded_count(300, 0.01, 0.95), bounded_count(300, 0.05, 0.95), bounded_count(50, 0.01, 0.95)
    (0, 8, 0)
    """
    allowed = math.floor(rate * n + 1e-9)
    two_sided = 2.0 * confidence - 1.0  # its upper end is the one-sided bound at ``confidence``
    while allowed > 0 and binomial_interval(allowed, n, two_sided)[1] > rate:
        allowed -= 1
    return allowed


def open_set_threshold(distractor_top1, rate: float, confidence: float | None = None) -> float:
    """The lowest threshold that at most ``rate`` of the distractor top-1 scores reach.

    With ``confidence`` (say 0.95), fewer may reach it: as many as keep the exact one-sided upper
    bound of the rate at or below ``rate`` (:func:`bounded_count`), so the rate holds for new
    distractors with that confidence, not only on average. When no threshold allows so few
    (ties at the top, or too few distractors), the threshold sits just above the highest one.
    """
    values = np.sort(np.asarray(distractor_top1, dtype=np.float64))
    if len(values) == 0:
        return float("nan")
    if confidence is None:
        allowed = math.floor(rate * len(values) + 1e-9)  # how many may reach the threshold
    else:
        allowed = bounded_count(len(values), rate, confidence)
    if allowed == 0:
        return float(values[-1]) + ABOVE
    candidate = values[len(values) - allowed]
    # everything tied with the candidate reaches it too: step above the tie if it is too many
    reached = len(values) - np.searchsorted(values, candidate, side="left")
    if reached > allowed:
        above = int(np.searchsorted(values, candidate, side="right"))
        if above == len(values):
            return float(candidate) + ABOVE
        return float(values[above])
    return float(candidate)


def open_set_thresholds(
    match_top1,
    match_correct,
    distractor_top1,
    rates: Sequence[float] = OPEN_SET_RATES,
    confidence: float | None = None,
) -> dict[str, dict[str, float]]:
    """Per rate: the threshold (:func:`open_set_threshold`, ``confidence`` passed on), the share
    of distractor queries reaching it (``false_rate``),
    and for queries whose original is indexed the share whose top-1 is their original and reaches
    it (``recall``) or is another original and reaches it (``wrong``).

    ``match_top1`` / ``match_correct``: top-1 score of each query with an indexed original and
    whether that top-1 is its original; ``distractor_top1``: top-1 score of each distractor.
    """
    match_top1 = np.asarray(match_top1, dtype=np.float64)
    match_correct = np.asarray(match_correct, dtype=bool)
    distractor_top1 = np.asarray(distractor_top1, dtype=np.float64)
    out = {}
    for rate in rates:
        threshold = open_set_threshold(distractor_top1, rate, confidence)
        reached = match_top1 >= threshold
        n = len(match_top1)
        out[f"{rate:g}"] = {
            "threshold": threshold,
            "false_rate": float((distractor_top1 >= threshold).mean())
            if len(distractor_top1)
            else float("nan"),
            "recall": float((reached & match_correct).sum() / n) if n else float("nan"),
            "wrong": float((reached & ~match_correct).sum() / n) if n else float("nan"),
        }
    return out


def fit_isotonic(scores, labels, weights=None) -> dict[str, list[float]]:
    """A non-decreasing step function from score to probability (pool adjacent violators).

    ``weights`` (default 1 each) count a row that many times. Each block's probability is
    smoothed towards 1/2 by one pseudo-count each way, so a block of three true answers says
    0.8, not certainty. Returns ``{"x": block upper scores, "y": probabilities}`` for
    :func:`isotonic_probability`.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    weights = np.ones_like(scores) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(scores) == 0:
        return {"x": [], "y": []}
    order = np.argsort(scores, kind="mergesort")
    scores, labels, weights = scores[order], labels[order], weights[order]
    # equal scores must share a block
    unique, first = np.unique(scores, return_index=True)
    sums = np.add.reduceat(labels * weights, first).tolist()
    counts = np.add.reduceat(weights, first).tolist()
    blocks: list[list[float]] = []  # [weighted true, weight, top score]
    for total, count, top in zip(sums, counts, unique.tolist(), strict=True):
        blocks.append([total, count, top])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            total, count, top = blocks.pop()
            blocks[-1] = [blocks[-1][0] + total, blocks[-1][1] + count, top]
    probabilities = np.maximum.accumulate([(s + 1.0) / (c + 2.0) for s, c, _ in blocks])
    return {"x": [block[2] for block in blocks], "y": probabilities.tolist()}


def reliability(probabilities, outcomes, weights=None, bins: int = 10) -> dict[str, Any]:
    """How well stated probabilities match what happened: the expected calibration error (the
    weighted mean, over ``bins`` equal-width bins of the stated probability, of
    |mean stated - share true|, each bin weighted by its share of the rows) and the bins
    themselves (a reliability diagram: ``{"low", "high", "weight", "stated", "observed"}``).

    >>> round(reliability([0.9, 0.1], [True, False])["ece"], 6)
    0.1
    """
    stated = np.asarray(probabilities, dtype=np.float64)
    happened = np.asarray(outcomes, dtype=np.float64)
    weights = np.ones_like(stated) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(weights.sum())
    if total <= 0:
        return {"ece": None, "n": 0, "bins": []}
    which = np.minimum((stated * bins).astype(int), bins - 1)
    rows, error = [], 0.0
    for b in range(bins):
        inside = which == b
        weight = float(weights[inside].sum())
        if weight <= 0:
            continue
        mean_stated = float((stated[inside] * weights[inside]).sum() / weight)
        observed = float((happened[inside] * weights[inside]).sum() / weight)
        error += weight / total * abs(mean_stated - observed)
        rows.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "weight": weight / total,
                "n": int(inside.sum()),
                "stated": mean_stated,
                "observed": observed,
            }
        )
    return {"ece": error, "n": len(stated), "bins": rows}


def isotonic_probability(model: dict[str, list[float]], score: float) -> float | None:
    """The probability :func:`fit_isotonic` gives ``score`` (None without a fitted model).

    A score falls in the first block whose upper score it does not exceed; above all blocks it
    takes the last one's probability.
    """
    x, y = model.get("x") or [], model.get("y") or []
    if not x:
        return None
    position = min(int(np.searchsorted(np.asarray(x), score, side="left")), len(y) - 1)
    return float(y[position])


def _binomial_cdf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    total = 0.0
    for i in range(k + 1):
        log_term = (
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * math.log(p)
            + (n - i) * math.log1p(-p)
        )
        total += math.exp(log_term)
    return min(total, 1.0)


def binomial_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a share ``successes / trials``.

    >>> low, high = binomial_interval(0, 100)
    >>> round(high, 4)
    0.0362
    """
    if trials <= 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - confidence) / 2.0

    def solve(predicate) -> float:
        low, high = 0.0, 1.0
        for _ in range(60):
            middle = (low + high) / 2.0
            if predicate(middle):
                low = middle
            else:
                high = middle
        return (low + high) / 2.0

    lower = 0.0
    if successes > 0:
        # the p where P(X >= successes) = alpha
        lower = solve(lambda p: 1.0 - _binomial_cdf(successes - 1, trials, p) < alpha)
    upper = 1.0
    if successes < trials:
        # the p where P(X <= successes) = alpha
        upper = solve(lambda p: _binomial_cdf(successes, trials, p) > alpha)
    return (lower, upper)
