"""Inference: images and texts in, L2-normalised vectors of the shared space out.

Every user of a trained model (evaluation, the index, the service, ``artsim score``) goes through
:class:`Embedder`, so they all embed the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from artsim.data.manifest.items import text_problem
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS, check_picture
from artsim.errors import DataError
from artsim.model.blend import fuse
from artsim.model.features import FeatureCache, compute_image_features, compute_text_features
from artsim.model.heads import ArtSimModel, load_model
from artsim.model.towers import (
    ImageTower,
    TextTower,
    create_image_tower,
    create_text_tower,
    load_tower_weights,
)

# A token never spans more characters than this (e5's longest pieces are words of ~20): a cut
# to N tokens looks at no more than N times this many characters.
MAX_CHARS_PER_TOKEN = 32


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def fuse_embeddings(
    image: np.ndarray,
    text: np.ndarray,
    has_text: np.ndarray | None = None,
    image_weight: float = 0.5,
) -> np.ndarray:
    """Image and text vectors of the same items, weighted and renormalised; image alone where
    no text (see :func:`artsim.model.blend.fuse`)."""
    return fuse(image, text, has_text, image_weight)


class Embedder:
    """A trained model with its towers, ready to embed.

    A model trained with a fine-tune stage has two image towers: the packaged (frozen) one,
    whose features the whitened frozen part of the blend, the ConSE bridge and the frozen
    baseline read, and the fine-tuned one (``tuned_tower``), whose features the trained image
    head reads. Each has its own feature cache: the fine-tuned tower's never reads the frozen
    tower's rows as its own, nor the other way round. Such a model embeds an image through both.

    >>> embedder = Embedder.from_run("runs/demo")
    >>> embedder.embed_texts(["a red fox"]).shape == (1, embedder.dim)
    True
    """

    def __init__(
        self,
        model: ArtSimModel,
        image_tower: ImageTower,
        text_tower: TextTower,
        model_id: str,
        cache_dir: str | Path | None = None,
        device: str | None = None,
        card: dict | None = None,
        devices: int = 1,
        num_nodes: int = 1,
        tuned_tower: ImageTower | None = None,
    ):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # image features of uncached files on devices x num_nodes processes when above 1
        self.devices, self.num_nodes = devices, num_nodes
        self.model = model.to(self.device).eval()
        self.image_tower = image_tower.to(self.device).eval()
        self.text_tower = text_tower
        self.model_id = model_id
        self.card = card or {}
        self.tuned_tower = tuned_tower.to(self.device).eval() if tuned_tower is not None else None
        self.finetuned = tuned_tower is not None
        self.image_cache = (
            FeatureCache(cache_dir, image_tower.version) if cache_dir is not False else None
        )
        # A fine-tuned tower has other features than the packaged one: never share its cache.
        self.tuned_cache = (
            FeatureCache(cache_dir, f"{tuned_tower.version}+ft-{model_id}")
            if tuned_tower is not None and cache_dir is not False
            else None
        )
        self.text_cache = (
            FeatureCache(cache_dir, text_tower.version) if cache_dir is not False else None
        )

    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        cache_dir: str | Path | None = None,
        device: str | None = None,
        devices: int = 1,
        num_nodes: int = 1,
    ) -> Embedder:
        """Load ``model.safetensors`` + ``model.json`` from a run folder and build its towers."""
        model, card, tower_state = load_model(run_dir)
        image_tower = create_image_tower(model.config.image_tower)
        tuned_tower = None
        if tower_state:
            tuned_tower = create_image_tower(model.config.image_tower)
            # strict: a key mismatch must not silently leave the packaged weights in place
            load_tower_weights(tuned_tower, tower_state, str(Path(run_dir) / "model.safetensors"))
        text_tower = create_text_tower(model.config.text_tower)
        return cls(
            model,
            image_tower,
            text_tower,
            card["model_id"],
            cache_dir,
            device,
            card,
            devices=devices,
            num_nodes=num_nodes,
            tuned_tower=tuned_tower,
        )

    @property
    def dim(self) -> int:
        return self.model.output_dim

    def fuse(
        self, image: np.ndarray, text: np.ndarray, has_text: np.ndarray | None = None
    ) -> np.ndarray:
        """Fused vectors with the model's image/text weight (``fused_image_weight``); the ConSE
        bridge, if the model has one, is left out of them (it serves image <-> text search)."""
        image = self.model.without_bridge(image)
        return fuse_embeddings(image, text, has_text, self.model.config.fused_image_weight)

    def image_features(
        self,
        paths: Sequence[str | Path],
        max_pixels: int = DEFAULT_MAX_PIXELS,
        progress=None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Raw features of the packaged (frozen) image tower, cached (``batch_size`` None: 4 on
        CPU, 64 on a GPU); a fine-tuned model's head reads :meth:`tuned_image_features`."""
        return self._features(
            self.image_tower, self.image_cache, paths, max_pixels, progress, batch_size
        )

    def tuned_image_features(
        self,
        paths: Sequence[str | Path],
        max_pixels: int = DEFAULT_MAX_PIXELS,
        progress=None,
        batch_size: int | None = None,
    ) -> np.ndarray | None:
        """Raw features of the fine-tuned image tower (cached apart from the frozen tower's), or
        None for a model without a fine-tuned tower."""
        if self.tuned_tower is None:
            return None
        return self._features(
            self.tuned_tower, self.tuned_cache, paths, max_pixels, progress, batch_size
        )

    def _features(self, tower, cache, paths, max_pixels, progress, batch_size) -> np.ndarray:
        return compute_image_features(
            tower,
            paths,
            cache,
            batch_size=batch_size,
            max_pixels=max_pixels,
            progress=progress,
            device=self.device,
            devices=self.devices,
            num_nodes=self.num_nodes,
        )

    def text_features(
        self, texts: Sequence[str], progress=None, batch_size: int = 64
    ) -> np.ndarray:
        """Raw (frozen) tower features, cached; empty texts give zero rows."""
        return compute_text_features(
            self.text_tower, texts, self.text_cache, batch_size=batch_size, progress=progress
        )

    @torch.no_grad()
    def project_image_features(
        self, features: np.ndarray, tuned: np.ndarray | None = None
    ) -> np.ndarray:
        """Shared-space vectors from the frozen tower's ``features`` (and, for a model with a
        fine-tuned tower, its ``tuned`` features of the same images, which it needs)."""
        if self.tuned_tower is not None and tuned is None:
            raise ValueError(
                "this model's image head reads its fine-tuned tower: pass tuned= "
                "(Embedder.tuned_image_features) beside the frozen tower's features"
            )
        tensor = torch.from_numpy(np.asarray(features, dtype=np.float32)).to(self.device)
        tuned_tensor = (
            None
            if self.tuned_tower is None
            else torch.from_numpy(np.asarray(tuned, dtype=np.float32)).to(self.device)
        )
        return self.model.infer_image(tensor, tuned_tensor).cpu().numpy()

    @torch.no_grad()
    def project_text_features(
        self, features: np.ndarray, texts: Sequence[str] | None = None
    ) -> np.ndarray:
        tensor = torch.from_numpy(np.asarray(features, dtype=np.float32)).to(self.device)
        embedded = self.model.infer_text(tensor).cpu().numpy()
        if texts is not None:
            # no text, no text vector: a zero row says so to every consumer
            embedded[[not text.strip() for text in texts]] = 0.0
        return embedded

    def embed_images(
        self,
        paths: Sequence[str | Path],
        max_pixels: int = DEFAULT_MAX_PIXELS,
        progress=None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Shared-space vectors for image files (N x dim, unit length)."""
        features = self.image_features(paths, max_pixels, progress, batch_size)
        tuned = self.tuned_image_features(paths, max_pixels, None, batch_size)
        return self.project_image_features(features, tuned)

    @torch.no_grad()
    def embed_pil(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Shared-space vectors for images already in memory (uploads); not cached."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        for number, image in enumerate(images):
            check_picture(image, "image" if len(images) == 1 else f"image {number}")
        tuned = (
            None
            if self.tuned_tower is None
            else self.tuned_tower.features_of_images(images).float().cpu()
        )
        return self.project_image_features(
            self.image_tower.features_of_images(images).float().cpu().numpy(),
            None if tuned is None else tuned.numpy(),
        )

    def cut_to_tokens(self, text: str, max_tokens: int) -> tuple[str, dict | None]:
        """``text`` cut to its longest prefix the text tower reads in at most ``max_tokens``
        tokens, and what was cut (``given_chars``, ``used_chars``, ``used_tokens``; ``None``
        when nothing was). A tower that does not count tokens gets a cut of
        ``max_tokens * MAX_CHARS_PER_TOKEN`` characters, which bounds its work too.

        >>> embedder = Embedder.from_run("runs/demo")
        >>> text, cut = embedder.cut_to_tokens("a fox " * 1000, 512)
        >>> cut["given_chars"], cut["used_chars"] == len(text) < 6000, cut["used_tokens"] <= 512
        (6000, True, True)
        """
        problem = text_problem(text)
        if problem:
            raise DataError(f"text: {problem}")
        limit = max_tokens * MAX_CHARS_PER_TOKEN  # no token spans more characters
        cut = text[:limit]
        count = self.text_tower.token_count
        if count(cut) is None or count(cut) <= max_tokens:
            if len(cut) == len(text):
                return text, None
            used = count(cut)
            return cut, {"given_chars": len(text), "used_chars": len(cut), "used_tokens": used}
        low, high = 0, len(cut)  # the longest prefix within the budget lies in [low, high)
        while high - low > 1:
            middle = (low + high) // 2
            if count(cut[:middle]) <= max_tokens:
                low = middle
            else:
                high = middle
        return cut[:low], {
            "given_chars": len(text),
            "used_chars": low,
            "used_tokens": count(cut[:low]),
        }

    def embed_texts(self, texts: Sequence[str], progress=None, batch_size: int = 64) -> np.ndarray:
        """Shared-space vectors for texts; an empty text gives a zero row. A text that is not
        valid Unicode (a lone surrogate) is refused with a :class:`DataError` naming it."""
        for number, text in enumerate(texts):
            problem = text_problem(text)
            if problem:
                raise DataError(f"{'text' if len(texts) == 1 else f'text {number}'}: {problem}")
        return self.project_text_features(self.text_features(texts, progress, batch_size), texts)
