"""CLIP towers from a local open_clip weights file (``open_clip:ARCH:WEIGHTS``); optional."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from artsim.errors import UserError
from artsim.model.towers.base import ImageTower, TextTower, file_digest


@dataclass(frozen=True)
class _OpenClipSpec:
    architecture: str
    weights: str


def parse_open_clip(name: str) -> _OpenClipSpec:
    parts = name.split(":", 2)
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise UserError(f"open_clip tower must be named open_clip:ARCH:WEIGHTS_FILE, got {name!r}")
    if not os.path.exists(parts[2]):
        raise UserError(f"open_clip weights file not found: {parts[2]}")
    return _OpenClipSpec(parts[1], parts[2])


def _load_open_clip(spec: _OpenClipSpec):
    try:
        import open_clip
    except ImportError as error:
        raise UserError(
            "open_clip towers need `pip install artsim[clip]` (open_clip_torch)"
        ) from error
    model, _, preprocess = open_clip.create_model_and_transforms(
        spec.architecture, pretrained=spec.weights
    )
    model.eval()
    return open_clip, model, preprocess


class OpenClipImageTower(ImageTower):
    """A CLIP image tower from local weights: ``open_clip:ViT-B-32:/path/to/open_clip_model.safetensors``."""

    def __init__(self, name: str):
        super().__init__()
        spec = parse_open_clip(name)
        _, self.model, self._preprocess = _load_open_clip(spec)
        self.name = name
        self._file_version = f"open_clip-{spec.architecture}-{file_digest(spec.weights)[:16]}"
        self.dim = int(self.model.visual.output_dim)
        self.image_size = int(self.model.visual.image_size[0])

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self._preprocess(image.convert("RGB"))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)


class OpenClipTextTower(TextTower):
    """A CLIP text tower from local weights (same naming as :class:`OpenClipImageTower`)."""

    def __init__(self, name: str):
        super().__init__()
        spec = parse_open_clip(name)
        open_clip, self.model, _ = _load_open_clip(spec)
        self.tokenizer = open_clip.get_tokenizer(spec.architecture)
        self.name = name
        self.version = f"open_clip-{spec.architecture}-{file_digest(spec.weights)[:16]}"
        self.dim = int(self.model.text_projection.shape[1])

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        with torch.no_grad():
            return self.model.encode_text(self.tokenizer(list(texts))).float()
