"""GeM pooling and the descriptor tower (GeM, mid-layer branch, several scales)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from artsim.model.towers import EfficientNetLite0Tower, create_image_tower
from artsim.model.towers.descriptors import DescriptorTower, gem


def test_gem_with_p_one_is_average_pooling_and_grows_towards_max_pooling():
    x = torch.rand(2, 3, 5, 5)
    torch.testing.assert_close(gem(x, p=1.0), x.mean(dim=(2, 3)))
    assert torch.all(gem(x, p=3.0) >= gem(x, p=1.0) - 1e-6)
    assert torch.all(gem(x, p=50.0) <= x.amax(dim=(2, 3)) + 1e-6)
    torch.testing.assert_close(gem(x, p=200.0), x.amax(dim=(2, 3)), atol=0.05, rtol=0)


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    return torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))


def test_descriptor_tower_with_p_one_is_the_plain_tower_normalised(pixels):
    plain, tower = EfficientNetLite0Tower(), DescriptorTower(p=1.0, scales=(96,))
    with torch.no_grad():
        torch.testing.assert_close(tower(pixels), F.normalize(plain(pixels), dim=1))


def test_scales_and_the_mid_branch_shape_the_descriptor(pixels):
    tower = DescriptorTower(p=3.0, scales=(64, 96), mid_weight=0.5)
    assert tower.image_size == 96 and tower.dim == 1280 + 192
    with torch.no_grad():
        out = tower(pixels)
        one = DescriptorTower(p=3.0, scales=(64,), mid_weight=0.5)(pixels)
        other = DescriptorTower(p=3.0, scales=(96,), mid_weight=0.5)(pixels)
    assert out.shape == (2, tower.dim)
    torch.testing.assert_close(out, (one + other) / 2)
    assert tower.version != EfficientNetLite0Tower().version  # its own feature cache


def test_the_gem_tower_is_registered():
    tower = create_image_tower("efficientnet-lite0-gem")
    assert isinstance(tower, DescriptorTower) and tower.p == 3.0 and tower.scales == (224,)
