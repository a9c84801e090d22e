"""Every vectorised metric against a plain-loop version on small random inputs (with ties)."""

from __future__ import annotations

import numpy as np
import pytest

from artsim.eval.metrics import (
    RetrievalEvaluator,
    VerificationEvaluator,
    average_precision,
    hard_triplet_accuracy,
    mean_average_precision,
    mrr,
    nest,
    one_hot,
    random_negatives,
    recall_at_k,
    roc_auc,
    roc_curve,
    threshold_at_fpr,
    triplet_accuracy,
    verification_pairs,
)


def random_case(seed: int, queries: int = 7, gallery: int = 9, ties: bool = True):
    rng = np.random.default_rng(seed)
    similarity = rng.random((queries, gallery))
    if ties:  # one decimal: many ties, like Hamming similarities of hashes
        similarity = np.round(similarity, 1)
    correct = rng.integers(0, gallery, queries)
    return similarity, correct


def loop_counts(similarity, correct, q):
    positive = similarity[q][correct[q]]
    higher = sum(1 for j in range(len(similarity[q])) if similarity[q][j] > positive)
    tied = sum(
        1 for j in range(len(similarity[q])) if j != correct[q] and similarity[q][j] == positive
    )
    return higher, tied


def loop_recall(similarity, correct, k):
    total = 0.0
    for q in range(len(correct)):
        higher, tied = loop_counts(similarity, correct, q)
        positions = range(higher, higher + tied + 1)
        total += sum(1 for p in positions if p < k) / len(positions)
    return total / len(correct)


def loop_mrr(similarity, correct):
    total = 0.0
    for q in range(len(correct)):
        higher, tied = loop_counts(similarity, correct, q)
        total += 1.0 / (1 + higher + tied / 2)
    return total / len(correct)


def loop_average_precision(similarity, relevant):
    out = []
    for q in range(len(similarity)):
        precisions = []
        for r in range(len(similarity[q])):
            if not relevant[q][r]:
                continue
            s = similarity[q][r]
            position, hits = 1.0, 1.0
            for j in range(len(similarity[q])):
                if j == r:
                    continue
                if similarity[q][j] > s:
                    position += 1
                    hits += relevant[q][j]
                elif similarity[q][j] == s:
                    position += 0.5
                    hits += 0.5 * relevant[q][j]
            precisions.append(hits / position)
        out.append(sum(precisions) / len(precisions) if precisions else float("nan"))
    return np.array(out)


def classic_average_precision(scores, relevant):
    """Textbook AP on a strict ranking (no ties)."""
    order = sorted(range(len(scores)), key=lambda j: -scores[j])
    hits, total = 0, 0.0
    for position, j in enumerate(order, start=1):
        if relevant[j]:
            hits += 1
            total += hits / position
    return total / max(1, sum(relevant))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 3, 5, 20])
def test_recall_at_k_matches_loop(seed, k):
    similarity, correct = random_case(seed)
    assert recall_at_k(similarity, correct, k) == pytest.approx(loop_recall(similarity, correct, k))


@pytest.mark.parametrize("seed", range(6))
def test_mrr_and_map_match_loop(seed):
    similarity, correct = random_case(seed)
    assert mrr(similarity, correct) == pytest.approx(loop_mrr(similarity, correct))
    relevant = one_hot(correct, similarity.shape[1])
    # one relevant item per query: mAP is MRR
    assert mean_average_precision(similarity, relevant) == pytest.approx(mrr(similarity, correct))


@pytest.mark.parametrize("seed", range(6))
def test_average_precision_with_several_relevant_matches_loop(seed):
    similarity, _ = random_case(seed, queries=6, gallery=10)
    rng = np.random.default_rng(100 + seed)
    relevant = rng.random(similarity.shape) < 0.3
    relevant[0] = False  # a query without relevant items is NaN, and left out of mAP
    expected = loop_average_precision(similarity, relevant)
    got = average_precision(similarity, relevant)
    np.testing.assert_allclose(got, expected, equal_nan=True)
    assert mean_average_precision(similarity, relevant) == pytest.approx(np.nanmean(expected))


@pytest.mark.parametrize("seed", range(4))
def test_average_precision_without_ties_is_the_textbook_one(seed):
    similarity, _ = random_case(seed, ties=False)
    relevant = np.random.default_rng(seed).random(similarity.shape) < 0.4
    relevant[:, 0] = True
    got = average_precision(similarity, relevant)
    for q in range(len(similarity)):
        assert got[q] == pytest.approx(classic_average_precision(similarity[q], relevant[q]))


def test_recall_counts_an_all_tied_gallery_as_chance():
    similarity = np.zeros((4, 10))
    assert recall_at_k(similarity, np.arange(4), 1) == pytest.approx(0.1)
    assert recall_at_k(similarity, np.arange(4), 5) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(6))
def test_triplet_accuracies_match_loop(seed):
    similarity, correct = random_case(seed)
    negatives = random_negatives(similarity.shape[1], correct, seed=3)
    assert all(negatives[q] != correct[q] for q in range(len(correct)))
    wins = 0.0
    for q in range(len(correct)):
        positive, negative = similarity[q][correct[q]], similarity[q][negatives[q]]
        wins += 1.0 if positive > negative else 0.5 if positive == negative else 0.0
    assert triplet_accuracy(similarity, correct, seed=3) == pytest.approx(wins / len(correct))

    wins = 0.0
    for q in range(len(correct)):
        positive = similarity[q][correct[q]]
        hardest = max(similarity[q][j] for j in range(similarity.shape[1]) if j != correct[q])
        wins += 1.0 if positive > hardest else 0.5 if positive == hardest else 0.0
    assert hard_triplet_accuracy(similarity, correct) == pytest.approx(wins / len(correct))


def test_random_negatives_are_seeded_and_cover_the_gallery():
    correct = np.zeros(2000, dtype=np.int64)
    first = random_negatives(5, correct, seed=1)
    assert np.array_equal(first, random_negatives(5, correct, seed=1))
    assert set(first.tolist()) == {1, 2, 3, 4}
    assert (random_negatives(1, np.zeros(3, dtype=np.int64)) == -1).all()


@pytest.mark.parametrize("seed", range(6))
def test_roc_auc_matches_pair_loop_and_curve_area(seed):
    similarity, correct = random_case(seed)
    positive, negative = verification_pairs(similarity, correct)
    assert len(negative) == similarity.size - len(correct)
    wins = 0.0
    for p in positive:
        for n in negative:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    expected = wins / (len(positive) * len(negative))
    assert roc_auc(positive, negative) == pytest.approx(expected)
    curve = roc_curve(positive, negative)
    assert curve["fpr"][0] == 0.0 and curve["fpr"][-1] == pytest.approx(1.0)
    assert curve["tpr"][-1] == pytest.approx(1.0)
    assert np.trapezoid(curve["tpr"], curve["fpr"]) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.3])
def test_threshold_at_fpr_matches_loop(seed, target):
    similarity, correct = random_case(seed, queries=12, gallery=15)
    positive, negative = verification_pairs(similarity, correct)
    got = threshold_at_fpr(positive, negative, target)
    best = None
    for t in sorted(set(positive.tolist()) | set(negative.tolist())):
        fpr = sum(1 for n in negative if n >= t) / len(negative)
        if fpr <= target:
            best = t
            break
    if best is None:
        assert got["recall"] == 0.0 and got["fpr"] == 0.0
        assert got["threshold"] > max(positive.max(), negative.max())
        return
    tp = sum(1 for p in positive if p >= best)
    fp = sum(1 for n in negative if n >= best)
    assert got["threshold"] == pytest.approx(best)
    assert got["recall"] == pytest.approx(tp / len(positive))
    assert got["fpr"] == pytest.approx(fp / len(negative))
    assert got["fpr"] <= target + 1e-12
    if tp + fp:
        assert got["precision"] == pytest.approx(tp / (tp + fp))


def test_evaluators_share_one_interface():
    similarity, correct = random_case(0)
    for evaluator in (RetrievalEvaluator("image"), VerificationEvaluator("image")):
        result = evaluator(similarity, correct)
        assert all(key.startswith("image/") for key in result)
        assert evaluator.primary_metric in result
    nested = nest(VerificationEvaluator("t2i")(similarity, correct), "t2i")
    assert set(nested) == {"roc_auc", "at_fpr_0.001", "at_fpr_0.01", "at_fpr_0.05"}
    assert set(nested["at_fpr_0.01"]) == {"threshold", "precision", "recall", "fpr"}


def test_perfect_retrieval_scores_one():
    similarity = np.eye(5) + 0.01
    result = nest(RetrievalEvaluator("x")(similarity, np.arange(5)), "x")
    for key in ("recall@1", "mrr", "map", "triplet_acc", "triplet_acc_hard"):
        assert result[key] == pytest.approx(1.0)
    assert result["n_queries"] == 5
