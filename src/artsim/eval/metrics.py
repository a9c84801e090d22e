"""Retrieval and verification metrics on a query x gallery similarity matrix (numpy, vectorised).

Conventions, the same in every function here:

* ``similarity[q, g]`` is higher for more similar pairs (cosine similarity, or ``1 - Hamming/64``
  for perceptual hashes).
* ``correct[q]`` is the gallery index of the right answer of query ``q`` (its group's original).
* Ties are common with hashes (integer distances), so they are handled explicitly and never by
  array order: ``recall_at_k`` is the expected recall when tied items are ordered at random;
  ``mrr`` and ``average_precision`` place a tied item at the mean position of its tie (mid-rank),
  so that with one relevant item per query ``map == mrr``; triplet accuracy counts a tie as half.

Each function has a plain-loop twin in ``tests/eval/test_metrics.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Rows per block when a (pairs x gallery) comparison is needed: bounds memory on big galleries.
_BLOCK = 1024
# 0.1% is the verdict's default: a search compares a query with every original, so a per-pair
# false-positive rate of 1% would call several unrelated originals "derived" in a collection of
# hundreds. 1% and 5% are reported beside it.
FPR_TARGETS = (0.001, 0.01, 0.05)


def _as_arrays(similarity: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    similarity = np.asarray(similarity, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.int64)
    if similarity.ndim != 2:
        raise ValueError(f"similarity must be a matrix, got shape {similarity.shape}")
    if correct.shape != (similarity.shape[0],):
        raise ValueError(
            f"correct needs one index per query ({similarity.shape[0]}), got {correct.shape}"
        )
    if len(correct) and (correct.min() < 0 or correct.max() >= similarity.shape[1]):
        raise ValueError("correct holds an index outside the gallery")
    return similarity, correct


def tie_counts(similarity: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query: how many gallery items score strictly higher than the correct one, and how
    many others tie with it. Both are ``int`` arrays of length ``n_queries``."""
    similarity, correct = _as_arrays(similarity, correct)
    positive = similarity[np.arange(len(correct)), correct][:, None]
    higher = (similarity > positive).sum(axis=1)
    tied = (similarity == positive).sum(axis=1) - 1  # the correct item ties with itself
    return higher, tied


def recall_at_k(similarity: np.ndarray, correct: np.ndarray, k: int) -> float:
    """Share of queries whose correct item is among the ``k`` most similar (expected value when
    ties are broken at random).

    >>> recall_at_k(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), 1)
    0.5
    """
    hit = hits_at_k(similarity, correct, k)
    return float(hit.mean()) if len(hit) else float("nan")


def hits_at_k(similarity: np.ndarray, correct: np.ndarray, k: int) -> np.ndarray:
    """Per query, the chance that its correct item is among the ``k`` most similar (1 or 0
    without ties; ties broken at random). Its mean is :func:`recall_at_k`.

    >>> hits_at_k(np.array([[0.9, 0.1], [0.5, 0.5]]), np.array([0, 1]), 1).tolist()
    [1.0, 0.5]
    """
    higher, tied = tie_counts(similarity, correct)
    # the correct item lands uniformly on one of positions higher .. higher + tied (0-based)
    return np.clip((k - higher) / (tied + 1), 0.0, 1.0)


def mid_ranks(similarity: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """1-based rank of the correct item per query, ties at their mean position."""
    higher, tied = tie_counts(similarity, correct)
    return 1.0 + higher + tied / 2.0


def mrr(similarity: np.ndarray, correct: np.ndarray) -> float:
    """Mean reciprocal rank of the correct item (mid-rank for ties)."""
    ranks = mid_ranks(similarity, correct)
    return float((1.0 / ranks).mean()) if len(ranks) else float("nan")


def average_precision(similarity: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Average precision per query for a boolean relevance matrix (same shape as similarity).

    Precision at a relevant item uses mid-ranks for ties: its position is ``1 + higher +
    tied_others / 2`` and the relevant items at or above it ``1 + relevant_higher +
    relevant_tied_others / 2``. Queries with no relevant item get NaN.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    if similarity.shape != relevant.shape:
        raise ValueError(f"shapes differ: {similarity.shape} vs {relevant.shape}")
    queries, items = np.nonzero(relevant)
    precision = np.empty(len(queries))
    for start in range(0, len(queries), _BLOCK):
        q, g = queries[start : start + _BLOCK], items[start : start + _BLOCK]
        rows, row_relevant = similarity[q], relevant[q]
        score = similarity[q, g][:, None]
        higher, tied = rows > score, rows == score
        position = 1.0 + higher.sum(1) + (tied.sum(1) - 1) / 2.0
        hits = 1.0 + (higher & row_relevant).sum(1) + ((tied & row_relevant).sum(1) - 1) / 2.0
        precision[start : start + _BLOCK] = hits / position
    per_query = np.bincount(queries, weights=precision, minlength=similarity.shape[0])
    counts = relevant.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, per_query / np.maximum(counts, 1), np.nan)


def mean_average_precision(similarity: np.ndarray, relevant: np.ndarray) -> float:
    """mAP over the queries that have at least one relevant item."""
    values = average_precision(similarity, relevant)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def one_hot(correct: np.ndarray, n_gallery: int) -> np.ndarray:
    """The boolean relevance matrix of one correct item per query."""
    correct = np.asarray(correct, dtype=np.int64)
    relevant = np.zeros((len(correct), n_gallery), dtype=bool)
    relevant[np.arange(len(correct)), correct] = True
    return relevant


def random_negatives(
    n_gallery: int, correct: np.ndarray, seed: int = 0, relevant: np.ndarray | None = None
) -> np.ndarray:
    """One seeded, uniformly drawn negative gallery index per query (never a relevant one).

    Returns -1 for a query that has no negative (a gallery of its relevant items only).
    """
    correct = np.asarray(correct, dtype=np.int64)
    if relevant is None:
        relevant = one_hot(correct, n_gallery)
    rng = np.random.default_rng(seed)
    # a uniform random key per item, relevant items pushed out: the argmax is a uniform negative
    keys = rng.random((len(correct), n_gallery))
    keys[relevant] = -1.0
    chosen = keys.argmax(axis=1) if n_gallery else np.zeros(len(correct), dtype=np.int64)
    has_negative = (~relevant).any(axis=1) if n_gallery else np.zeros(len(correct), dtype=bool)
    return np.where(has_negative, chosen, -1)


def _pairwise_win(positive: np.ndarray, negative: np.ndarray) -> float:
    if len(positive) == 0:
        return float("nan")
    wins = (positive > negative).astype(np.float64) + 0.5 * (positive == negative)
    return float(wins.mean())


def triplet_accuracy(
    similarity: np.ndarray,
    correct: np.ndarray,
    seed: int = 0,
    relevant: np.ndarray | None = None,
) -> float:
    """Share of (query, correct, random negative) triplets ordered right: the seed's figure.

    One seeded random negative per query; a tie counts one half. Easy by construction: with a
    large gallery, a random negative is rarely a hard one.
    """
    similarity, correct = _as_arrays(similarity, correct)
    negatives = random_negatives(similarity.shape[1], correct, seed, relevant)
    keep = negatives >= 0
    rows = np.arange(len(correct))[keep]
    return _pairwise_win(similarity[rows, correct[keep]], similarity[rows, negatives[keep]])


def hard_triplet_accuracy(
    similarity: np.ndarray, correct: np.ndarray, relevant: np.ndarray | None = None
) -> float:
    """Like :func:`triplet_accuracy` with each query's most similar negative."""
    similarity, correct = _as_arrays(similarity, correct)
    if relevant is None:
        relevant = one_hot(correct, similarity.shape[1])
    keep = (~relevant).any(axis=1)
    if not keep.any():
        return float("nan")
    hardest = np.where(relevant, -np.inf, similarity).max(axis=1)
    positive = similarity[np.arange(len(correct)), correct]
    return _pairwise_win(positive[keep], hardest[keep])


# --- verification: is this pair (query, original) a derivation or not? ---------------------------


def verification_pairs(
    similarity: np.ndarray, correct: np.ndarray, relevant: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of positive pairs (query, its original) and negative pairs (query, other originals)."""
    similarity, correct = _as_arrays(similarity, correct)
    if relevant is None:
        relevant = one_hot(correct, similarity.shape[1])
    positive = similarity[np.arange(len(correct)), correct]
    negative = similarity[~relevant]
    return positive, negative


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank (like scipy's ``rankdata``)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(average, counts)
    return ranks


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve: P(positive score > negative score), ties counting one half."""
    positive = np.asarray(positive, dtype=np.float64)
    negative = np.asarray(negative, dtype=np.float64)
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    ranks = _average_ranks(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(positive: np.ndarray, negative: np.ndarray) -> dict[str, list[float]]:
    """False and true positive rates for every distinct threshold (``score >= t`` is positive),
    from (0, 0) to (1, 1)."""
    positive = np.asarray(positive, dtype=np.float64)
    negative = np.asarray(negative, dtype=np.float64)
    thresholds = np.unique(np.concatenate([positive, negative]))[::-1]
    if len(positive) == 0 or len(negative) == 0:
        return {"fpr": [], "tpr": [], "threshold": []}
    sorted_pos, sorted_neg = np.sort(positive), np.sort(negative)
    tp = len(positive) - np.searchsorted(sorted_pos, thresholds, side="left")
    fp = len(negative) - np.searchsorted(sorted_neg, thresholds, side="left")
    return {
        "fpr": [0.0, *(fp / len(negative)).tolist()],
        "tpr": [0.0, *(tp / len(positive)).tolist()],
        "threshold": [float("inf"), *thresholds.tolist()],
    }


def threshold_at_fpr(positive: np.ndarray, negative: np.ndarray, target: float) -> dict[str, float]:
    """The lowest threshold whose false-positive rate (``score >= threshold`` on negative pairs)
    is at most ``target``, with precision, recall and the FPR reached there.

    Precision counts pairs, so it depends on how many negatives there are per positive; recall is
    the share of derived works recognised. If no threshold reaches the target (ties at the top),
    the threshold sits just above every score: nothing is called derived.
    """
    positive = np.asarray(positive, dtype=np.float64)
    negative = np.asarray(negative, dtype=np.float64)
    nan = float("nan")
    if len(positive) == 0 or len(negative) == 0:
        return {"threshold": nan, "precision": nan, "recall": nan, "fpr": nan}
    candidates = np.unique(np.concatenate([positive, negative]))
    sorted_neg, sorted_pos = np.sort(negative), np.sort(positive)
    fp = len(negative) - np.searchsorted(sorted_neg, candidates, side="left")
    allowed = fp / len(negative) <= target + 1e-12
    if allowed.any():
        threshold = float(
            candidates[np.argmax(allowed)]
        )  # fp falls with t: first allowed is lowest
    else:
        threshold = float(np.nextafter(candidates[-1], np.inf))
    tp = int(len(positive) - np.searchsorted(sorted_pos, threshold, side="left"))
    false = int(len(negative) - np.searchsorted(sorted_neg, threshold, side="left"))
    return {
        "threshold": threshold,
        "precision": tp / (tp + false) if tp + false else nan,
        "recall": tp / len(positive),
        "fpr": false / len(negative),
    }


def score_histogram(
    values: np.ndarray, bins: int = 40, value_range: tuple[float, float] = (-1.0, 1.0)
) -> dict[str, list[float]]:
    """Counts of ``values`` in equal bins (for the report's positive/negative plots)."""
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64), bins, value_range)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


# --- evaluators: one interface (``__call__ -> dict``, ``name``, ``primary_metric``) --------------


class Evaluator:
    """Base of every evaluator: call it, get a flat dict of ``"<name>/<metric>"`` floats.

    >>> similarity = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    >>> correct = np.array([0, 1, 0, 1])  # the right gallery column of each query
    >>> evaluator = RetrievalEvaluator("image")
    >>> result = evaluator(similarity, correct)
    >>> evaluator.primary_metric, result[evaluator.primary_metric]
    ('image/recall@1', 0.75)
    """

    metric: str = ""

    def __init__(self, name: str):
        self.name = name

    @property
    def primary_metric(self) -> str:
        """The key that sums up this evaluator (already prefixed)."""
        return f"{self.name}/{self.metric}"

    def __call__(self, similarity: np.ndarray, correct: np.ndarray, **kwargs) -> dict[str, float]:
        raise NotImplementedError

    def _prefixed(self, values: dict[str, float]) -> dict[str, float]:
        return {f"{self.name}/{key}": value for key, value in values.items()}


class RetrievalEvaluator(Evaluator):
    """recall@k, MRR, mAP and triplet accuracies (random and hardest negative) of a retrieval."""

    metric = "recall@1"

    def __init__(self, name: str, ks: Sequence[int] = (1, 5, 10), seed: int = 0):
        super().__init__(name)
        self.ks, self.seed = tuple(ks), seed

    def __call__(
        self, similarity: np.ndarray, correct: np.ndarray, relevant: np.ndarray | None = None
    ) -> dict[str, float]:
        similarity, correct = _as_arrays(similarity, correct)
        if relevant is None:
            relevant = one_hot(correct, similarity.shape[1])
        values: dict[str, float] = {
            f"recall@{k}": recall_at_k(similarity, correct, k) for k in self.ks
        }
        values["mrr"] = mrr(similarity, correct)
        values["map"] = mean_average_precision(similarity, relevant)
        values["triplet_acc"] = triplet_accuracy(similarity, correct, self.seed, relevant)
        values["triplet_acc_hard"] = hard_triplet_accuracy(similarity, correct, relevant)
        values["n_queries"] = len(correct)
        return self._prefixed(values)


class VerificationEvaluator(Evaluator):
    """ROC-AUC of (query, original) pairs vs (query, other original) pairs, and thresholds at
    target false-positive rates."""

    metric = "roc_auc"

    def __init__(self, name: str, fpr_targets: Sequence[float] = FPR_TARGETS):
        super().__init__(name)
        self.fpr_targets = tuple(fpr_targets)

    def __call__(
        self, similarity: np.ndarray, correct: np.ndarray, relevant: np.ndarray | None = None
    ) -> dict[str, float]:
        positive, negative = verification_pairs(similarity, correct, relevant)
        values: dict[str, float] = {"roc_auc": roc_auc(positive, negative)}
        for target in self.fpr_targets:
            for key, value in threshold_at_fpr(positive, negative, target).items():
                values[f"at_fpr_{target:g}/{key}"] = value
        return self._prefixed(values)


def nest(flat: dict[str, float], prefix: str = "") -> dict:
    """``{"image/at_fpr_0.01/threshold": t}`` -> ``{"at_fpr_0.01": {"threshold": t}}`` with the
    evaluator's ``prefix`` (its name) removed; used to write the nested evaluation JSON."""
    nested: dict = {}
    for key, value in flat.items():
        if prefix:
            if not key.startswith(f"{prefix}/"):
                continue
            key = key[len(prefix) + 1 :]
        parts = key.split("/")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested
