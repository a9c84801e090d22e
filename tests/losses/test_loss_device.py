"""The losses create every tensor on their inputs' device (what a CUDA run needs)."""

from __future__ import annotations

import pytest
import torch

from artsim.losses import (
    MultimodalTripletLoss,
    TripletMarginLoss,
    create_miner,
    seed_document_figures,
)


def _batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(6).repeat_interleave(4)
    image = torch.randn(len(labels), 8, generator=generator, requires_grad=True)
    text = torch.randn(len(labels), 8, generator=generator, requires_grad=True)
    has_text = torch.ones(len(labels), dtype=torch.bool)
    has_text[::5] = False
    affinity = (labels[:, None] // 2) == (labels[None, :] // 2)
    return image, text, labels, has_text, affinity


def test_the_guard_catches_a_tensor_made_without_a_device(foreign_default_device):
    image, *_ = _batch()
    with foreign_default_device(), pytest.raises(RuntimeError, match="device"):
        torch.stack([image.sum(), torch.tensor(1.0)])


@pytest.mark.parametrize("miner", ["random", "semihard", "hard"])
def test_multimodal_loss_and_its_gradient_stay_on_the_inputs_device(miner, foreign_default_device):
    image, text, labels, has_text, affinity = _batch()
    criterion = MultimodalTripletLoss(TripletMarginLoss(0.2, create_miner(miner)))
    torch.manual_seed(0)
    expected = criterion(image, text, labels, has_text, affinity)
    with foreign_default_device():
        torch.manual_seed(0)
        parts = criterion(image, text, labels, has_text, affinity)
        parts["total"].backward()
    assert all(value.device.type == "cpu" for value in parts.values())
    assert float(parts["total"].detach()) == pytest.approx(float(expected["total"].detach()))
    assert float(parts["triplet_acc"]) == pytest.approx(float(expected["triplet_acc"]))
    assert image.grad is not None and image.grad.device.type == "cpu"


def test_seed_figures_stay_on_the_inputs_device(foreign_default_device):
    image, text, labels, has_text, _ = _batch()
    expected = seed_document_figures(image, text, labels, has_text)
    with foreign_default_device():
        figures = seed_document_figures(image, text, labels, has_text)
    assert figures == pytest.approx(expected, nan_ok=True)
