"""The copy groups' loss parts: multi-positive InfoNCE and KoLeo, against known answers and loops."""

from __future__ import annotations

import math

import pytest
import torch

from artsim.losses import (
    LossWeights,
    MultimodalTripletLoss,
    TripletMarginLoss,
    koleo_loss,
    multi_positive_info_nce,
)

SQUARE = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])


def loop_info_nce(vectors: torch.Tensor, labels: list[int], temperature: float) -> float:
    unit = [[x / math.sqrt(sum(y * y for y in v)) for x in v] for v in vectors.tolist()]
    cos = [[sum(a * b for a, b in zip(u, v, strict=True)) for v in unit] for u in unit]
    losses = []
    for i, label in enumerate(labels):
        positives = [j for j, other in enumerate(labels) if other == label and j != i]
        if not positives:
            continue
        denominator = sum(math.exp(cos[i][j] / temperature) for j in range(len(unit)) if j != i)
        per_positive = [
            -math.log(math.exp(cos[i][p] / temperature) / denominator) for p in positives
        ]
        losses.append(sum(per_positive) / len(per_positive))
    return sum(losses) / len(losses)


def test_koleo_of_a_square_is_minus_log_of_its_side():
    # four unit vectors at right angles: every nearest neighbour is sqrt(2) away
    assert float(koleo_loss(SQUARE)) == pytest.approx(-math.log(math.sqrt(2)), abs=1e-6)


def test_koleo_of_two_opposite_points_and_scale_invariance():
    vectors = torch.tensor([[3.0, 0.0], [-0.5, 0.0]])  # normalised first: distance 2
    assert float(koleo_loss(vectors)) == pytest.approx(-math.log(2.0), abs=1e-6)


def test_koleo_with_labels_skips_the_same_group():
    # 0 and 1 are the same picture (a copy) at distance 0.2; the others are far apart
    vectors = torch.tensor([[1.0, 0.0], [math.cos(0.2), math.sin(0.2)], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    # without labels the copy is everyone's nearest but for item 2
    plain = [2 * math.sin(0.1), 2 * math.sin(0.1), 2 * math.sin((math.pi - 0.2) / 2)]
    expected_plain = -sum(math.log(d) for d in plain) / 3
    assert float(koleo_loss(vectors)) == pytest.approx(expected_plain, abs=1e-5)
    grouped = [2.0, 2 * math.sin((math.pi - 0.2) / 2), 2 * math.sin((math.pi - 0.2) / 2)]
    expected_grouped = -sum(math.log(d) for d in grouped) / 3
    assert float(koleo_loss(vectors, labels)) == pytest.approx(expected_grouped, abs=1e-5)


def test_koleo_is_lower_for_spread_vectors():
    crowded = torch.tensor([[1.0, 0.0], [0.99, 0.1], [0.98, -0.1], [0.97, 0.2]])
    assert float(koleo_loss(SQUARE)) < float(koleo_loss(crowded))


def test_koleo_without_neighbours_is_zero_with_a_grad_path():
    vectors = torch.randn(3, 4, requires_grad=True)
    loss = koleo_loss(vectors, torch.tensor([5, 5, 5]))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert vectors.grad is not None


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.5])
def test_info_nce_matches_loop(seed, temperature):
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.randn(10, 5, generator=generator)
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]  # group 3 has no positive: not an anchor
    value = multi_positive_info_nce(vectors, torch.tensor(labels), temperature)
    assert float(value) == pytest.approx(loop_info_nce(vectors, labels, temperature), rel=1e-5)


def test_info_nce_is_lower_for_separated_groups_than_mixed():
    separated = torch.tensor([[1.0, 0.0], [0.99, 0.05], [-1.0, 0.0], [-0.99, 0.05]])
    labels = torch.tensor([0, 0, 1, 1])
    mixed = torch.tensor([labels_row for labels_row in separated[[0, 2, 1, 3]].tolist()])
    assert float(multi_positive_info_nce(separated, labels)) < float(
        multi_positive_info_nce(mixed, labels)
    )


def test_info_nce_of_two_perfect_pairs_has_a_closed_form():
    # each anchor: its copy at cos 1, the two others at cos -1 -> -log(e^{1/t} / (e^{1/t} + 2e^{-1/t}))
    vectors = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2 * math.exp(-1 / t)))
    value = multi_positive_info_nce(vectors, torch.tensor([0, 0, 1, 1]), t)
    assert float(value) == pytest.approx(expected, rel=1e-6)


def test_info_nce_without_positives_is_zero_with_a_grad_path():
    vectors = torch.randn(4, 3, requires_grad=True)
    loss = multi_positive_info_nce(vectors, torch.tensor([0, 1, 2, 3]))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert vectors.grad is not None


def test_gradients_are_finite_even_for_duplicates():
    # identical vectors (a copy met twice) must not give an infinite KoLeo or NaN gradient
    vectors = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], requires_grad=True)
    labels = torch.tensor([0, 1, 2, 2])
    total = multi_positive_info_nce(vectors, labels, 0.05) + koleo_loss(vectors)
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(vectors.grad).all()


def test_multimodal_loss_adds_the_weighted_copy_parts():
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(8, 6, generator=generator, requires_grad=True)
    texts = torch.randn(8, 6, generator=generator)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    has_text = torch.ones(8, dtype=torch.bool)
    plain = MultimodalTripletLoss(TripletMarginLoss(), LossWeights())
    weights = LossWeights(copy=0.5, koleo=0.2)
    with_copy = MultimodalTripletLoss(TripletMarginLoss(), weights, temperature=0.2)
    base = plain(images, texts, labels, has_text, generator=torch.Generator().manual_seed(0))
    out = with_copy(images, texts, labels, has_text, generator=torch.Generator().manual_seed(0))
    assert float(base["copy"]) == 0.0 and float(base["koleo"]) == 0.0  # off by default
    assert float(out["copy"]) == pytest.approx(
        float(multi_positive_info_nce(images, labels, 0.2)), rel=1e-6
    )
    assert float(out["koleo"]) == pytest.approx(float(koleo_loss(images, labels)), rel=1e-6)
    expected = float(base["total"]) + 0.5 * float(out["copy"]) + 0.2 * float(out["koleo"])
    assert float(out["total"]) == pytest.approx(expected, rel=1e-6)
    out["total"].backward()
    assert torch.isfinite(images.grad).all()


def test_training_the_copy_part_alone_separates_groups():
    # a few steps of plain gradient descent on the copy part pull copies together
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(6).repeat_interleave(3)
    vectors = torch.randn(18, 4, generator=generator, requires_grad=True)
    optimiser = torch.optim.SGD([vectors], lr=0.5)
    before = float(multi_positive_info_nce(vectors, labels))
    for _ in range(50):
        optimiser.zero_grad()
        loss = multi_positive_info_nce(vectors, labels)
        loss.backward()
        optimiser.step()
    assert float(multi_positive_info_nce(vectors, labels)) < before - 0.5
