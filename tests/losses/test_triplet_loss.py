"""Miners, TripletMarginLoss, MultimodalTripletLoss and seed_document_figures against plain Python loops.

Every reference below walks all (anchor, positive) pairs one at a time and computes cosine
distances with ``math``, so a vectorised shortcut in ``artsim.losses`` cannot hide behind itself.
"""

from __future__ import annotations

import math

import pytest
import torch

from artsim.losses import (
    HardMiner,
    LossWeights,
    MultimodalTripletLoss,
    RandomMiner,
    SemiHardMiner,
    TripletMarginLoss,
    cosine_distance_matrix,
    create_miner,
    seed_document_figures,
)
from artsim.triplets import sample_fixed_triplets

MARGIN = 0.2


# --------------------------------------------------------------------------- plain references


def loop_cosine_distance(u, v) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    norm_u = math.sqrt(sum(a * a for a in u))
    norm_v = math.sqrt(sum(b * b for b in v))
    return 1.0 - dot / (norm_u * norm_v)


def loop_distances(anchors: torch.Tensor, references: torch.Tensor) -> list[list[float]]:
    a, r = anchors.tolist(), references.tolist()
    return [[loop_cosine_distance(u, v) for v in r] for u in a]


def loop_mine(distances, labels, ref_labels, same_set, kind, allowed=None):
    """All (anchor, positive) pairs with the negative a plain loop picks.

    ``allowed[a][n]`` (optional) narrows the negatives of anchor ``a`` where it allows any.
    """
    triplets = []
    for a, label in enumerate(labels):
        negatives = [n for n, other in enumerate(ref_labels) if other != label]
        if allowed is not None:
            narrowed = [n for n in negatives if allowed[a][n]]
            negatives = narrowed or negatives
        for p, other in enumerate(ref_labels):
            if other != label or (same_set and p == a) or not negatives:
                continue
            if kind == "hard":
                candidates = negatives
            else:  # semihard: the closest negative farther than the positive, else the hardest
                farther = [n for n in negatives if distances[a][n] > distances[a][p]]
                candidates = farther or negatives
            best = candidates[0]
            for n in candidates:
                if distances[a][n] < distances[a][best]:
                    best = n
            triplets.append((a, p, best))
    return triplets


def loop_loss(distances, triplets, margin=MARGIN) -> float:
    if not triplets:
        return 0.0
    hinge = [max(0.0, distances[a][p] - distances[a][n] + margin) for a, p, n in triplets]
    return sum(hinge) / len(hinge)


def random_case(seed, n=10, m=None, dim=5, groups=3):
    """Random embeddings and labels; ``m`` set gives a second (reference) set."""
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, groups, (n,), generator=generator)
    if m is None:
        return embeddings, labels, None, None
    references = torch.randn(m, dim, generator=generator, dtype=torch.float64)
    ref_labels = torch.randint(0, groups, (m,), generator=generator)
    return embeddings, labels, references, ref_labels


def masks(labels, ref_labels, same_set):
    same = labels[:, None] == ref_labels[None, :]
    positive = same.clone()
    if same_set:
        positive.fill_diagonal_(False)
    return positive, ~same


def as_triplets(batch) -> list[tuple[int, int, int]]:
    return list(
        zip(batch.anchors.tolist(), batch.positives.tolist(), batch.negatives.tolist(), strict=True)
    )


# --------------------------------------------------------------------------- distances and miners


@pytest.mark.parametrize("seed", range(3))
def test_cosine_distance_matrix_matches_loop(seed):
    a, _, b, _ = random_case(seed, n=4, m=6)
    expected = torch.tensor(loop_distances(a, b), dtype=torch.float64)
    torch.testing.assert_close(cosine_distance_matrix(a, b), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", ["hard", "semihard"])
@pytest.mark.parametrize("same_set", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_deterministic_miners_match_loop(kind, same_set, seed):
    anchors, labels, refs, ref_labels = random_case(seed, n=9, m=None if same_set else 11)
    refs, ref_labels = (anchors, labels) if same_set else (refs, ref_labels)
    distances = cosine_distance_matrix(anchors, refs)
    positive, negative = masks(labels, ref_labels, same_set)
    miner = HardMiner() if kind == "hard" else SemiHardMiner()
    mined = as_triplets(miner(distances, positive, negative))
    expected = loop_mine(
        loop_distances(anchors, refs), labels.tolist(), ref_labels.tolist(), same_set, kind
    )
    assert sorted(mined) == sorted(expected)


def test_semihard_takes_farther_negative_and_falls_back_to_hardest():
    # anchor 0 (label 0), positive 1; negatives 2, 3, 4 at chosen distances
    distances = torch.tensor(
        [
            [0.0, 0.5, 0.3, 0.9, 0.7],
            [0.5, 0.0, 0.85, 0.6, 0.95],
            [0.3, 0.8, 0.0, 0.1, 0.1],
            [0.9, 0.8, 0.1, 0.0, 0.1],
            [0.7, 0.8, 0.1, 0.1, 0.0],
        ]
    )
    labels = torch.tensor([0, 0, 1, 1, 1])
    positive, negative = masks(labels, labels, True)
    by_pair = {(a, p): n for a, p, n in as_triplets(SemiHardMiner()(distances, positive, negative))}
    assert by_pair[(0, 1)] == 4  # 0.7 is the closest negative beyond the positive's 0.5
    # anchor 1: every negative is farther than the positive (0.5): the closest of them
    assert by_pair[(1, 0)] == 3
    # anchor 2 (label 1) with positive 3 at 0.1: negatives 0 (0.3), 1 (0.8) -> 0
    assert by_pair[(2, 3)] == 0
    hard = {(a, p): n for a, p, n in as_triplets(HardMiner()(distances, positive, negative))}
    assert hard[(0, 1)] == 2  # the hardest negative, even though it is closer than the positive


def test_semihard_with_no_farther_negative_takes_hardest():
    distances = torch.tensor(
        [[0.0, 0.9, 0.2, 0.4], [0.9, 0.0, 0.5, 0.6], [0.2, 0.5, 0.0, 0.3], [0.4, 0.6, 0.3, 0.0]]
    )
    labels = torch.tensor([0, 0, 1, 1])
    positive, negative = masks(labels, labels, True)
    by_pair = {(a, p): n for a, p, n in as_triplets(SemiHardMiner()(distances, positive, negative))}
    assert by_pair[(0, 1)] == 2  # both negatives (0.2, 0.4) are nearer than the positive (0.9)


@pytest.mark.parametrize("same_set", [True, False])
def test_random_miner_pairs_and_valid_negatives(same_set):
    anchors, labels, refs, ref_labels = random_case(3, n=9, m=None if same_set else 7)
    refs, ref_labels = (anchors, labels) if same_set else (refs, ref_labels)
    distances = cosine_distance_matrix(anchors, refs)
    positive, negative = masks(labels, ref_labels, same_set)
    mined = as_triplets(
        RandomMiner()(distances, positive, negative, torch.Generator().manual_seed(0))
    )
    expected_pairs = {
        (a, p) for a, p, _ in loop_mine(distances.tolist(), labels.tolist(),
                                        ref_labels.tolist(), same_set, "hard")
    }  # fmt: skip
    assert {(a, p) for a, p, _ in mined} == expected_pairs
    assert len(mined) == len(expected_pairs)
    for a, _, n in mined:
        assert labels[a] != ref_labels[n]


def test_random_miner_is_seeded_and_covers_every_negative_evenly():
    labels = torch.tensor([0, 0, 1, 2, 3, 4])  # anchor 0 has 4 negatives
    distances = torch.rand(6, 6, generator=torch.Generator().manual_seed(1))
    positive, negative = masks(labels, labels, True)
    draws = []
    for seed in range(2):
        generator = torch.Generator().manual_seed(seed)
        draws.append([RandomMiner()(distances, positive, negative, generator) for _ in range(400)])
    again = RandomMiner()(distances, positive, negative, torch.Generator().manual_seed(0))
    assert torch.equal(again.negatives, draws[0][0].negatives)
    chosen = [int(batch.negatives[0]) for batch in draws[0] + draws[1]]  # pair (0, 1)
    counts = {n: chosen.count(n) for n in range(6)}
    assert counts[0] == counts[1] == 0
    for n in (2, 3, 4, 5):  # 800 draws over 4 negatives: about 200 each
        assert 140 < counts[n] < 260, counts


def test_create_miner_names():
    assert isinstance(create_miner("hard"), HardMiner)
    assert isinstance(create_miner("semihard"), SemiHardMiner)
    assert isinstance(create_miner("random"), RandomMiner)
    with pytest.raises(ValueError, match="random"):
        create_miner("hardest")


# --------------------------------------------------------------------------- TripletMarginLoss


def loop_accuracy(distances, triplets) -> float:
    return sum(distances[a][p] < distances[a][n] for a, p, n in triplets) / len(triplets)


@pytest.mark.parametrize("kind", ["hard", "semihard"])
@pytest.mark.parametrize("same_set", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_triplet_margin_loss_matches_loop(kind, same_set, seed):
    anchors, labels, refs, ref_labels = random_case(seed, n=8, m=None if same_set else 10)
    margin = 0.3
    loss_fn = TripletMarginLoss(margin=margin, miner=create_miner(kind))
    loss, accuracy, count = loss_fn(
        anchors, labels, refs, ref_labels, generator=torch.Generator().manual_seed(seed)
    )
    refs, ref_labels = (anchors, labels) if same_set else (refs, ref_labels)
    distances = loop_distances(anchors, refs)
    triplets = loop_mine(distances, labels.tolist(), ref_labels.tolist(), same_set, kind)
    assert count == len(triplets)
    assert float(loss) == pytest.approx(loop_loss(distances, triplets, margin), abs=1e-9)
    # accuracy: one random negative per pair (hard/semihard miners draw nothing from the
    # generator, so the accuracy's RandomMiner gets the generator fresh)
    positive, negative = masks(labels, ref_labels, same_set)
    measured = RandomMiner()(
        cosine_distance_matrix(anchors, refs), positive, negative,
        torch.Generator().manual_seed(seed),
    )  # fmt: skip
    assert float(accuracy) == pytest.approx(loop_accuracy(distances, as_triplets(measured)))


@pytest.mark.parametrize("seed", range(4))
def test_triplet_margin_loss_with_random_miner_matches_loop(seed):
    anchors, labels, _, _ = random_case(seed, n=9)
    loss, _, count = TripletMarginLoss(miner=RandomMiner())(
        anchors, labels, generator=torch.Generator().manual_seed(seed)
    )
    positive, negative = masks(labels, labels, True)
    # the loss's miner draws first from the generator: replay that draw
    mined = RandomMiner()(
        cosine_distance_matrix(anchors, anchors), positive, negative,
        torch.Generator().manual_seed(seed),
    )  # fmt: skip
    distances = loop_distances(anchors, anchors)
    assert count == len(as_triplets(mined))
    assert float(loss) == pytest.approx(loop_loss(distances, as_triplets(mined)), abs=1e-9)


@pytest.mark.parametrize("kind", ["hard", "semihard"])
@pytest.mark.parametrize("same_set", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_hard_negative_mask_narrows_only_where_anchor_has_one(kind, same_set, seed):
    anchors, labels, refs, ref_labels = random_case(seed, n=9, m=None if same_set else 8)
    n_refs = len(anchors) if same_set else len(refs)
    generator = torch.Generator().manual_seed(100 + seed)
    hard_mask = torch.rand(len(anchors), n_refs, generator=generator) < 0.3
    hard_mask[0] = False  # anchor 0 has no such negative: it keeps all of its own
    loss, accuracy, count = TripletMarginLoss(miner=create_miner(kind))(
        anchors, labels, refs, ref_labels, hard_negative_mask=hard_mask,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    refs, ref_labels = (anchors, labels) if same_set else (refs, ref_labels)
    distances = loop_distances(anchors, refs)
    allowed = hard_mask.tolist()
    triplets = loop_mine(distances, labels.tolist(), ref_labels.tolist(), same_set, kind, allowed)
    assert count == len(triplets)
    assert float(loss) == pytest.approx(loop_loss(distances, triplets), abs=1e-9)
    # the accuracy figure stays the seed's: random negatives among all, not the narrowed ones
    positive, negative = masks(labels, ref_labels, same_set)
    measured = RandomMiner()(
        cosine_distance_matrix(anchors, refs), positive, negative,
        torch.Generator().manual_seed(seed),
    )  # fmt: skip
    assert float(accuracy) == pytest.approx(loop_accuracy(distances, as_triplets(measured)))


def test_hard_negative_mask_steers_the_chosen_negative():
    # anchor 0 (label 0) with positive 1; negative 2 is the hardest, 3 is marked as "same artist"
    embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.4], [1.0, 0.1], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 2])
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, 3] = True
    distances = cosine_distance_matrix(embeddings, embeddings)
    plain, _, _ = TripletMarginLoss(miner=HardMiner())(embeddings, labels)
    narrowed, _, _ = TripletMarginLoss(miner=HardMiner())(
        embeddings, labels, hard_negative_mask=mask
    )
    # pair (0, 1) moves from negative 2 to negative 3; pair (1, 0) keeps its hardest (2)
    d = distances.tolist()
    hinge = lambda a, p, n: max(0.0, d[a][p] - d[a][n] + MARGIN)  # noqa: E731
    assert float(plain) == pytest.approx((hinge(0, 1, 2) + hinge(1, 0, 2)) / 2)
    assert float(narrowed) == pytest.approx((hinge(0, 1, 3) + hinge(1, 0, 2)) / 2)
    assert float(narrowed) != pytest.approx(float(plain))


@pytest.mark.parametrize(
    "labels",
    [torch.tensor([0, 1, 2, 3]), torch.tensor([5, 5, 5, 5])],
    ids=["no-positives", "no-negatives"],
)
def test_no_triplets_give_zero_loss_with_a_grad_path(labels):
    embeddings = torch.randn(4, 3, requires_grad=True)
    loss, accuracy, count = TripletMarginLoss()(embeddings, labels)
    assert count == 0
    assert float(loss.detach()) == 0.0 and float(accuracy) == 0.0
    assert loss.requires_grad
    loss.backward()
    assert embeddings.grad is not None
    assert torch.count_nonzero(embeddings.grad) == 0


def test_cross_set_without_shared_labels_gives_zero_loss_with_a_grad_path():
    images = torch.randn(3, 4, requires_grad=True)
    texts = torch.randn(2, 4, requires_grad=True)
    loss, _, count = TripletMarginLoss()(
        images, torch.tensor([0, 1, 2]), texts, torch.tensor([7, 8])
    )
    assert count == 0 and float(loss.detach()) == 0.0
    loss.backward()
    assert images.grad is not None


@pytest.mark.parametrize("same_set", [True, False])
def test_gradients_match_the_loop_loss(same_set):
    anchors, labels, refs, ref_labels = random_case(11, n=8, m=None if same_set else 9)
    anchors.requires_grad_(True)
    if refs is not None:
        refs.requires_grad_(True)
    loss, _, count = TripletMarginLoss(margin=0.5, miner=HardMiner())(
        anchors, labels, refs, ref_labels
    )
    assert count > 0 and float(loss.detach()) > 0
    loss.backward()
    got = [anchors.grad.clone()] + ([] if same_set else [refs.grad.clone()])
    assert any(torch.count_nonzero(g) > 0 for g in got)

    # the same triplets, loss written per triplet with autograd
    anchors_2 = anchors.detach().clone().requires_grad_(True)
    refs_2 = anchors_2 if same_set else refs.detach().clone().requires_grad_(True)
    references_labels = labels if same_set else ref_labels
    triplets = loop_mine(
        loop_distances(anchors_2.detach(), refs_2.detach()), labels.tolist(),
        references_labels.tolist(), same_set, "hard",
    )  # fmt: skip

    def distance(u, v):
        return 1.0 - torch.dot(u, v) / (u.norm() * v.norm())

    terms = [
        torch.relu(distance(anchors_2[a], refs_2[p]) - distance(anchors_2[a], refs_2[n]) + 0.5)
        for a, p, n in triplets
    ]
    torch.stack(terms).mean().backward()
    expected = [anchors_2.grad] + ([] if same_set else [refs_2.grad])
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-10, rtol=1e-7)


# --------------------------------------------------------------------------- MultimodalTripletLoss


def multimodal_case(seed, n=12, dim=6):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    texts = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 4, (n,), generator=generator)
    has_text = torch.rand(n, generator=generator) < 0.7
    has_text[:2] = torch.tensor([True, False])
    affinity = torch.rand(n, n, generator=generator) < 0.4
    return images, texts, labels, has_text, affinity


@pytest.mark.parametrize("with_affinity", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_multimodal_families_equal_four_direct_calls(seed, with_affinity):
    images, texts, labels, has_text, affinity = multimodal_case(seed)
    affinity = affinity if with_affinity else None
    base = TripletMarginLoss(margin=0.25, miner=SemiHardMiner())
    weights = LossWeights(image=0.7, text=1.3, cross=2.1)
    out = MultimodalTripletLoss(base, weights)(
        images, texts, labels, has_text, affinity, torch.Generator().manual_seed(seed)
    )

    keep = has_text.nonzero().squeeze(1)  # items that have a text
    only_texts, text_labels = texts[keep], labels[keep]

    def sub(rows, cols):
        if affinity is None:
            return None
        rows = torch.arange(len(labels)) if rows is None else rows
        cols = torch.arange(len(labels)) if cols is None else cols
        return affinity[rows][:, cols]

    generator = torch.Generator().manual_seed(seed)  # same draws, same order as the module
    direct = {
        "image": base(images, labels, None, None, sub(None, None), generator),
        "text": base(only_texts, text_labels, None, None, sub(keep, keep), generator),
        "i2t": base(images, labels, only_texts, text_labels, sub(None, keep), generator),
        "t2i": base(only_texts, text_labels, images, labels, sub(keep, None), generator),
    }
    for family, (loss, accuracy, count) in direct.items():
        assert float(out[family]) == pytest.approx(float(loss), abs=1e-12), family
        assert float(out[f"{family}_acc"]) == pytest.approx(float(accuracy)), family
        assert int(out[f"{family}_n"]) == count, family

    cross = (float(direct["i2t"][0]) + float(direct["t2i"][0])) / 2
    assert float(out["cross"]) == pytest.approx(cross)
    expected_total = 0.7 * float(direct["image"][0]) + 1.3 * float(direct["text"][0]) + 2.1 * cross
    assert float(out["total"]) == pytest.approx(expected_total)
    counts = {f: direct[f][2] for f in direct}
    pooled = sum(counts[f] * float(direct[f][1]) for f in direct) / sum(counts.values())
    assert float(out["triplet_acc"]) == pytest.approx(pooled)
    cross_n = counts["i2t"] + counts["t2i"]
    cross_acc = (
        counts["i2t"] * float(direct["i2t"][1]) + counts["t2i"] * float(direct["t2i"][1])
    ) / cross_n
    assert float(out["cross_acc"]) == pytest.approx(cross_acc)


def test_multimodal_total_backpropagates_to_both_modalities():
    images, texts, labels, has_text, _ = multimodal_case(5)
    images.requires_grad_(True)
    texts.requires_grad_(True)
    out = MultimodalTripletLoss(TripletMarginLoss(margin=1.0, miner=HardMiner()))(
        images, texts, labels, has_text
    )
    out["total"].backward()
    assert torch.count_nonzero(images.grad) > 0
    assert torch.count_nonzero(texts.grad[has_text]) > 0
    # an item without text has no text vector in any family
    assert torch.count_nonzero(texts.grad[~has_text]) == 0


def test_multimodal_without_any_text_still_has_an_image_loss():
    images, texts, labels, _, _ = multimodal_case(2)
    images.requires_grad_(True)
    has_text = torch.zeros(len(labels), dtype=torch.bool)
    out = MultimodalTripletLoss(TripletMarginLoss(margin=1.0))(images, texts, labels, has_text)
    out["total"].backward()
    values = {key: float(value.detach()) for key, value in out.items()}
    for family in ("text", "i2t", "t2i"):
        assert values[family] == 0.0 and values[f"{family}_n"] == 0
    assert values["total"] == pytest.approx(values["image"]) and values["image"] > 0
    assert torch.count_nonzero(images.grad) > 0


# --------------------------------------------------------------------------- seed_document_figures


def loop_seed_figures(images, texts, labels, has_text, margin, seed, weights):
    keep = [i for i, flag in enumerate(has_text.tolist()) if flag]
    text_rows = texts[keep]
    text_labels = labels[keep]
    families = {
        "image": (images, labels, images, None),
        "text": (text_rows, text_labels, text_rows, None),
        "i2t": (images, labels, text_rows, text_labels),
        "t2i": (text_rows, text_labels, images, labels),
    }
    figures, counts = {}, {}
    for offset, (family, (anchors, anchor_labels, refs, ref_labels)) in enumerate(families.items()):
        a_idx, p_idx, n_idx = sample_fixed_triplets(anchor_labels, ref_labels, seed=seed + offset)
        counts[family] = len(a_idx)
        losses, hits = [], []
        for a, p, n in zip(a_idx.tolist(), p_idx.tolist(), n_idx.tolist(), strict=True):
            d_ap = loop_cosine_distance(anchors[a].tolist(), refs[p].tolist())
            d_an = loop_cosine_distance(anchors[a].tolist(), refs[n].tolist())
            losses.append(max(0.0, d_ap - d_an + margin))
            hits.append(d_ap < d_an)
        figures[f"{family}_loss"] = sum(losses) / len(losses) if losses else math.nan
        figures[f"{family}_acc"] = sum(hits) / len(hits) if hits else math.nan

    def pooled(names, key):
        total = sum(counts[f] for f in names)
        if total == 0:
            return math.nan
        return sum(counts[f] * figures[f"{f}_{key}"] for f in names if counts[f]) / total

    figures["cross_loss"] = pooled(("i2t", "t2i"), "loss")
    figures["cross_acc"] = pooled(("i2t", "t2i"), "acc")
    figures["triplet_acc"] = pooled(("image", "text", "i2t", "t2i"), "acc")
    parts = [
        (weights.image, figures["image_loss"]),
        (weights.text, figures["text_loss"]),
        (weights.cross, figures["cross_loss"]),
    ]
    figures["loss"] = sum(w * v for w, v in parts if not math.isnan(v))
    return figures


def assert_figures_equal(got, expected):
    assert set(got) == set(expected)
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.parametrize("seed", range(4))
def test_seed_figures_match_loop_over_fixed_triplets(seed):
    images, texts, labels, has_text, _ = multimodal_case(seed, n=14)
    weights = LossWeights(image=1.0, text=0.5, cross=2.0)
    got = seed_document_figures(
        images, texts, labels, has_text, margin=0.3, seed=seed, weights=weights
    )
    expected = loop_seed_figures(images, texts, labels, has_text, 0.3, seed, weights)
    assert_figures_equal(got, expected)


def test_seed_figures_are_identical_for_the_same_seed():
    images, texts, labels, has_text, _ = multimodal_case(7, n=16)
    first = seed_document_figures(images, texts, labels, has_text, seed=3)
    second = seed_document_figures(
        images.clone(), texts.clone(), labels.clone(), has_text.clone(), seed=3
    )
    assert first == second
    other = seed_document_figures(images, texts, labels, has_text, seed=4)
    assert other != first  # other triplets


def test_seed_figures_nan_parts_drop_out_of_loss():
    images, texts, labels, _, _ = multimodal_case(1, n=10)
    has_text = torch.zeros(len(labels), dtype=torch.bool)
    figures = seed_document_figures(
        images, texts, labels, has_text, weights=LossWeights(2.0, 1.0, 1.0)
    )
    for key in ("text_loss", "text_acc", "i2t_loss", "t2i_loss", "cross_loss", "cross_acc"):
        assert math.isnan(figures[key]), key
    assert not math.isnan(figures["loss"])
    assert figures["loss"] == pytest.approx(2.0 * figures["image_loss"])
    assert figures["triplet_acc"] == pytest.approx(figures["image_acc"])
