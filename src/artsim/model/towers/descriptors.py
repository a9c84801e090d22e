"""Better descriptors from the same frozen EfficientNet-Lite0: GeM pooling, a mid-layer branch
and several input scales (issue 10, BENCHMARKS.md "Generalisation").

GeM (generalised mean) pooling, ``mean(x ** p) ** (1 / p)``, weighs the strong activations of a
feature map more than average pooling (p = 1) and less than max pooling (p -> inf); p = 3 is the
usual choice for instance retrieval. A mid-layer branch adds the 192-channel stage (shapes and
textures rather than ImageNet classes). Several scales average the descriptors of the image
resized to each size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from artsim.model.towers.base import pil_to_tensor
from artsim.model.towers.efficientnet import EfficientNetLite0Tower

MID_BLOCK = 14  # last block of the 192-channel stage (7x7 at 224 px)
MID_CHANNELS = 192


def gem(features: torch.Tensor, p: float = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """Generalised-mean pooling of a (B, C, H, W) map to (B, C); p = 1 is average pooling."""
    return features.clamp(min=eps).pow(p).mean(dim=(2, 3)).pow(1.0 / p)


class DescriptorTower(EfficientNetLite0Tower):
    """EfficientNet-Lite0 with GeM pooling, an optional mid-layer branch and several scales.

    The output is the mean over scales of the L2-normalised per-scale descriptor; with the
    mid-layer branch the per-scale descriptor is ``[final | mid_weight * mid]`` (each part
    normalised first).
    """

    def __init__(
        self,
        p: float = 3.0,
        scales: Sequence[int] = (224,),
        mid_weight: float = 0.0,
    ):
        super().__init__()
        if not scales or min(scales) < 32:
            raise ValueError("scales must be image sizes of at least 32 px")
        self.p, self.scales, self.mid_weight = float(p), tuple(int(s) for s in scales), mid_weight
        self.image_size = max(self.scales)
        self.dim = 1280 + (MID_CHANNELS if mid_weight > 0 else 0)
        scales_tag = "+".join(str(s) for s in self.scales)
        self.name = f"efficientnet-lite0-gem{self.p:g}-{scales_tag}" + (
            f"-mid{mid_weight:g}" if mid_weight > 0 else ""
        )
        self._file_version = f"{self._file_version}-{self.name}"

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return pil_to_tensor(image, self.image_size)

    def _one_scale(self, pixels: torch.Tensor) -> torch.Tensor:
        network = self.network
        x = network._swish(network._bn0(network._conv_stem(pixels)))
        mid = None
        for index, block in enumerate(network._blocks):
            x = block(x)
            if index == MID_BLOCK:
                mid = x
        x = network._swish(network._bn1(network._conv_head(x)))
        parts = [F.normalize(gem(x, self.p), dim=1)]
        if self.mid_weight > 0 and mid is not None:
            parts.append(self.mid_weight * F.normalize(gem(torch.relu(mid), self.p), dim=1))
        return torch.cat(parts, dim=1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        total = None
        for size in self.scales:
            scaled = pixels
            if size != pixels.shape[-1]:
                scaled = F.interpolate(
                    pixels, size=(size, size), mode="bilinear", antialias=True, align_corners=False
                )
            descriptor = self._one_scale(scaled)
            total = descriptor if total is None else total + descriptor
        return total / len(self.scales)


def gem_tower() -> DescriptorTower:
    """``efficientnet-lite0-gem``: GeM (p = 3) at 224 px."""
    return DescriptorTower(p=3.0)
