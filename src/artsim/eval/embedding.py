"""Every evaluated item embedded once (tower features and shared-space vectors), and the
perceptual-hash baseline's bits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artsim.data.manifest.items import Item
from artsim.data.pictures.images import load_rgb
from artsim.model.embedder import Embedder
from artsim.progress import Reporter, or_silent


@dataclass
class Embedded:
    """Every evaluated item embedded once: raw tower features and shared-space vectors.

    ``image_features`` are always the packaged (frozen) tower's (the frozen baseline reads
    them); ``tuned_image_features`` the fine-tuned tower's for a model that has one, else None.
    With a paired tower the last ``copy_dim`` image features are the copy descriptor's: the raw
    ``image`` space (the frozen baseline) is the content tower's alone, ``copy`` the copy
    descriptor's alone.
    """

    items: list[Item]
    image_features: np.ndarray
    text_features: np.ndarray
    image: np.ndarray
    text: np.ndarray
    fused: np.ndarray
    has_text: np.ndarray
    tuned_image_features: np.ndarray | None = None
    copy_dim: int = 0

    def space(self, name: str, raw: bool = False) -> np.ndarray:
        if raw:
            content_end = self.image_features.shape[1] - self.copy_dim
            return {
                "image": self.image_features[:, :content_end],
                "copy": self.image_features[:, content_end:],
                "text": self.text_features,
            }[name]
        return {"image": self.image, "text": self.text, "fused": self.fused}[name]


def embed_items(
    embedder: Embedder, items: Sequence[Item], max_pixels: int, reporter: Reporter | None = None
) -> Embedded:
    """Embed images and texts of ``items`` (cached tower features, then the run's heads)."""
    reporter = or_silent(reporter)
    paths = [str(item.image) for item in items]
    texts = [item.text if item.has_text else "" for item in items]
    image_features = embedder.image_features(
        paths, max_pixels, progress=reporter.task("embedding images", len(paths))
    )
    tuned = None
    if embedder.finetuned:
        tuned = embedder.tuned_image_features(
            paths, max_pixels, progress=reporter.task("fine-tuned tower", len(paths))
        )
    texts_task = reporter.task("embedding texts", len({text for text in texts if text}))
    text_features = embedder.text_features(texts, progress=texts_task)
    texts_task.complete()  # cached texts never report progress
    has_text = np.array([bool(text) for text in texts], dtype=bool)
    image = embedder.project_image_features(image_features, tuned)
    text = embedder.project_text_features(text_features, texts)
    return Embedded(
        items=list(items),
        image_features=image_features,
        text_features=text_features,
        image=image,
        text=text,
        fused=embedder.fuse(image, text, has_text),
        has_text=has_text,
        tuned_image_features=tuned,
        copy_dim=embedder.model.config.copy_feature_dim,
    )


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (tower features are not always)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def phash_bits(
    paths: Sequence[str | Path], max_pixels: int, reporter: Reporter | None = None
) -> np.ndarray:
    """64-bit perceptual hashes (``imagehash.phash``) as a 0/1 float matrix, one row per image."""
    import imagehash  # only the baseline needs it

    advance = or_silent(reporter).task("perceptual hashes", len(paths))
    rows = []
    for path in paths:
        rows.append(imagehash.phash(load_rgb(path, max_pixels=max_pixels)).hash.flatten())
        advance(1)
    return np.asarray(rows, dtype=np.float32).reshape(len(paths), -1)


def hamming_similarity(query_bits: np.ndarray, gallery_bits: np.ndarray) -> np.ndarray:
    """``1 - Hamming distance / bits`` for every (query, gallery) pair of 0/1 hash rows."""
    bits = query_bits.shape[1]
    distance = query_bits @ (1.0 - gallery_bits).T + (1.0 - query_bits) @ gallery_bits.T
    return 1.0 - distance / bits
