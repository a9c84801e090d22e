"""What every tower is: :class:`ImageTower` and :class:`TextTower`, the paired content + copy
image tower, the preprocessing they share, and the digests that version their features."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from artsim.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def pil_to_tensor(
    image: Image.Image, size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD
) -> torch.Tensor:
    """Resize an RGB image to ``size``x``size`` (bicubic) and normalise it to a CHW tensor."""
    resized = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    array = np.asarray(resized, dtype=np.float32) / 255.0
    array = (array - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def state_digest(module: nn.Module) -> str:
    """sha256 of a module's weights (every tensor of its state dict, by sorted name)."""
    digest = hashlib.sha256()
    state = module.state_dict()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if tensor.numel():
            # reshape(-1): 0-dim tensors (batch norm's num_batches_tracked) have bytes too
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}
_FILE_DIGESTS_LOCK = threading.Lock()


def _digest_store() -> str:
    root = os.environ.get("ARTSIM_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "artsim"
    )
    return os.path.join(root, "file-digests.json")


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a weights file, remembered per (path, mtime, size) in memory and on disk.

    A tower's version comes from its weights' content, so changed weights under the same name
    never share cached features; the remembered digest keeps that cheap for large files.
    """
    real = os.path.realpath(path)
    info = os.stat(real)
    key = (real, info.st_mtime_ns, info.st_size)
    with _FILE_DIGESTS_LOCK:
        if key in _FILE_DIGESTS:
            return _FILE_DIGESTS[key]
        store_key = f"{real}|{info.st_mtime_ns}|{info.st_size}"
        store = _digest_store()
        try:
            with open(store, encoding="utf-8") as handle:
                known = json.load(handle)
        except (OSError, ValueError):
            known = {}
        if not isinstance(known, dict):
            known = {}
        if isinstance(known.get(store_key), str):
            _FILE_DIGESTS[key] = known[store_key]
            return known[store_key]
        digest = hashlib.sha256()
        with open(real, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _FILE_DIGESTS[key] = known[store_key] = digest.hexdigest()
        try:  # best effort: a read-only cache folder only costs the hash next time
            os.makedirs(os.path.dirname(store), exist_ok=True)
            temporary = f"{store}.{os.getpid()}.tmp"
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(known, handle)
            os.replace(temporary, store)
        except OSError:
            pass
        return _FILE_DIGESTS[key]


class ImageTower(nn.Module):
    """An image feature extractor: ``forward(pixels[B,3,S,S]) -> features[B, dim]``.

    ``version`` names the weights by their content (the feature cache is keyed by it): a tower
    loaded from a file uses the file's digest until other weights are loaded into it, then the
    digest of its state dict.
    """

    name: str = ""
    dim: int = 0
    image_size: int = 224
    _file_version: str | None = None

    @property
    def version(self) -> str:
        if self._file_version is not None:
            return self._file_version
        return f"{self.name}-{state_digest(self)[:16]}"

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load weights strictly by default; the version then follows the new weights."""
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._file_version = None
        return result

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return pil_to_tensor(image, self.image_size)

    def finetune_parameters(self, last_blocks: int) -> list[nn.Parameter]:
        """Parameters of the last ``last_blocks`` blocks, for the optional fine-tune stage."""
        raise UserError(f"image tower {self.name!r} does not support fine-tuning")

    @torch.no_grad()
    def features_of_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Features of pictures already in memory (uploads), on the tower's device."""
        device = next((b.device for b in [*self.parameters(), *self.buffers()]), None)
        pixels = torch.stack([self.preprocess(image) for image in images])
        return self(pixels if device is None else pixels.to(device))


class TextTower(nn.Module):
    """A text feature extractor: ``encode(texts) -> features[B, dim]`` (float32 tensor).

    ``version`` names the weights by content (a file digest, or the pinned package that ships
    them), like :class:`ImageTower`'s.
    """

    name: str = ""
    dim: int = 0
    version: str = ""

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def token_count(self, text: str) -> int | None:
        """How many tokens the tower reads for ``text`` (specials and prefix included), or
        ``None`` for a tower whose cost does not grow with tokens past a small bound."""
        return None


class PairedImageTower(ImageTower):
    """A content tower and a copy-detection tower side by side: features ``[content | copy]``.

    Named ``CONTENT+COPY`` (``efficientnet-lite0-gem+sscd``). Each part keeps its own feature
    cache (:func:`artsim.model.features.compute_image_features` computes the parts one by one),
    so the content features cached before a copy tower existed are read, not computed again.
    """

    def __init__(self, content: ImageTower, copy: ImageTower):
        super().__init__()
        if isinstance(content, PairedImageTower) or isinstance(copy, PairedImageTower):
            raise UserError("a paired image tower pairs two plain towers")
        self.content, self.copy = content, copy
        self.name = f"{content.name}+{copy.name}"
        self.dim = content.dim + copy.dim
        self.image_size = max(content.image_size, copy.image_size)

    @property
    def parts(self) -> tuple[ImageTower, ImageTower]:
        return (self.content, self.copy)

    @property
    def version(self) -> str:
        return f"{self.content.version}+{self.copy.version}"

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        raise TypeError("a paired tower preprocesses per part: use features_of_images")

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        raise TypeError("a paired tower runs per part: use features_of_images")

    @torch.no_grad()
    def features_of_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        parts = [part.features_of_images(images).float().cpu() for part in self.parts]
        return torch.cat(parts, dim=1)

    def finetune_parameters(self, last_blocks: int) -> list[nn.Parameter]:
        return self.content.finetune_parameters(last_blocks)


def load_tower_weights(tower: ImageTower, state: dict[str, torch.Tensor], source: str) -> None:
    """Load fine-tuned weights into ``tower`` strictly: every key present, every shape equal.

    Raises UserError with one line naming ``source`` and what differs; nothing is loaded then.
    """
    expected = tower.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(
        key for key in set(expected) & set(state) if expected[key].shape != state[key].shape
    )
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("reshaped", reshaped)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            problems.append(f"{len(keys)} {label} ({', '.join(keys[:3])}{more})")
    if problems:
        raise UserError(
            f"{source}: its fine-tuned image tower does not fit {tower.name!r}: "
            + "; ".join(problems)
        )
    tower.load_state_dict(state, strict=True)
