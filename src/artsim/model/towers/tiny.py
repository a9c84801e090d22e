"""Small random towers for tests: they save, load, fine-tune and version like the real ones."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import nn

from artsim.model.towers.base import ImageTower, TextTower, state_digest


class TinyImageTower(ImageTower):
    """A small random CNN with a fixed seed: fast and deterministic, for tests and smoke runs."""

    def __init__(
        self, dim: int = 32, image_size: int = 32, seed: int = 0, batch_norm: bool = False
    ):
        super().__init__()
        self.name, self.dim, self.image_size = "tiny-bn" if batch_norm else "tiny", dim, image_size
        generator = torch.Generator().manual_seed(seed)
        # batch_norm: a tower shaped like the real ones (running statistics, a 0-dim counter)
        self.blocks = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            *([nn.BatchNorm2d(16)] if batch_norm else []),
            nn.ReLU(),
            nn.Conv2d(16, dim // 2, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        with torch.no_grad():
            for name, parameter in self.named_parameters():
                if ".1." in f".{name}" and batch_norm:
                    continue  # batch norm keeps its unit scale and zero shift
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.blocks(pixels)
        # mean and max pooling together keep colour and shape information in few dimensions
        return torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)

    def finetune_parameters(self, last_blocks: int) -> list[nn.Parameter]:
        layers = [m for m in self.blocks if isinstance(m, nn.Conv2d)]
        return [p for layer in layers[-last_blocks:] for p in layer.parameters()]


class TinyTextTower(TextTower):
    """Hashed character trigrams through a fixed random projection: deterministic, no weights."""

    def __init__(self, dim: int = 32, buckets: int = 2048, seed: int = 0):
        super().__init__()
        self.name, self.dim, self.buckets = "tiny", dim, buckets
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(buckets, dim, generator=generator))

    def _bucket(self, gram: str) -> int:
        return (
            int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=4).digest(), "little")
            % self.buckets
        )

    def token_count(self, text: str) -> int:
        """One trigram per character, plus the two of the padding."""
        return len(text) + 2

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        counts = torch.zeros(len(texts), self.buckets, device=self.projection.device)
        for row, text in enumerate(texts):
            padded = f"  {text.lower()}  "
            for start in range(len(padded) - 2):
                counts[row, self._bucket(padded[start : start + 3])] += 1.0
        counts = counts / counts.sum(dim=1, keepdim=True).clamp_min(1.0)
        return counts @ self.projection

    @property
    def version(self) -> str:
        return f"tiny-text-{state_digest(self)[:16]}"
