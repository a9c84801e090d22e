"""A training step (heads and fine-tune) creates every tensor on its batch's device."""

from __future__ import annotations

import pytest
import torch

from artsim.model.heads import ModelConfig
from artsim.model.towers import TinyImageTower
from artsim.training.config import TrainConfig
from artsim.training.finetune import FinetuneModule
from artsim.training.module import TripletModule


def _batch(image: torch.Tensor) -> dict[str, torch.Tensor]:
    labels = torch.arange(4).repeat_interleave(3)
    generator = torch.Generator().manual_seed(2)
    return {
        "image": image,
        "text": torch.randn(len(labels), 32, generator=generator),
        "label": labels,
        "has_text": torch.arange(len(labels)) % 3 != 0,
        "affinity": labels // 2,
    }


@pytest.mark.parametrize("hard_negatives", [None, "artist"])
def test_heads_step_follows_the_batch_device(foreign_default_device, hard_negatives):
    config = TrainConfig(data="x", hard_negatives=hard_negatives)
    module = TripletModule(ModelConfig("tiny", "tiny", 32, 32, embed_dim=8, hidden_dim=16), config)
    batch = _batch(torch.randn(12, 32, generator=torch.Generator().manual_seed(1)))
    reference = module.step_parts(batch, 0)["total"].detach()
    with foreign_default_device():
        parts = module.step_parts(batch, 0)
        parts["total"].backward()
    assert float(parts["total"].detach()) == pytest.approx(float(reference))
    assert all(p.grad is not None and p.grad.device.type == "cpu" for p in module.parameters())


def test_finetune_step_follows_the_batch_device(foreign_default_device):
    config = TrainConfig(data="x", finetune_blocks=1)
    tower = TinyImageTower(batch_norm=True)
    module = FinetuneModule(ModelConfig("tiny", "tiny", 32, 32, embed_dim=8), config, tower)
    module.train()
    batch = _batch(torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    with foreign_default_device():
        module.step_parts(batch, 0)["total"].backward()
    assert all(p.grad is not None for p in module.tower_parameters)
