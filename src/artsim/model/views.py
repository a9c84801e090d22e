"""Tower features of augmented views of originals, computed once and cached.

Self-supervised copy groups (issue 10) add ``K`` strong views
(:mod:`artsim.data.families.training.copyaug`) of every training original to its group. Running the
tower on fresh views every step is too costly on a CPU, so each view is drawn once from a seed fixed
by the original's content, the view's number and the run's seed, and its features are cached like
any image's, under a key made of those and
:data:`artsim.data.families.training.copyaug.AUGMENT_VERSION` (no view image is written to disk).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from artsim.data.families.training.copyaug import AUGMENT_VERSION, copy_view
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.model.features import FeatureCache, ProgressCallback, file_key, keep_computed
from artsim.model.towers import ImageTower, PairedImageTower


def view_key(image_key: str, index: int, seed: int) -> str:
    """The cache key of view ``index`` (drawn with ``seed``) of the image whose key is given."""
    text = f"{AUGMENT_VERSION}:{image_key}:{seed}:{index}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def view_rng(image_key: str, index: int, seed: int) -> np.random.Generator:
    """The generator that draws view ``index`` of that image: the same on every machine."""
    return np.random.default_rng([seed, index, int(image_key[:15], 16)])


@torch.no_grad()
def _features_of_views(tower: ImageTower, pictures: list, device) -> np.ndarray:
    """A batch of views through the tower: a paired tower (content + copy) runs each part on
    its own preprocessing, any other tower once on its pixels."""
    if isinstance(tower, PairedImageTower):
        return tower.features_of_images(pictures).float().cpu().numpy()
    pixels = torch.stack([tower.preprocess(picture) for picture in pictures])
    return tower(pixels.to(device)).float().cpu().numpy()


def compute_view_features(
    tower: ImageTower,
    paths: Sequence[str | Path],
    views: int,
    cache: FeatureCache | None = None,
    seed: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: ProgressCallback | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 4,
) -> np.ndarray:
    """Features of ``views`` views of each image: rows ``i * views + k`` are image ``i``'s view
    ``k``. Cached rows are read; only missing views are drawn and embedded."""
    image_keys = [file_key(path) for path in paths]
    jobs = [
        (i, k, view_key(key, k, seed)) for i, key in enumerate(image_keys) for k in range(views)
    ]
    missing = [job for job in jobs if not (cache is not None and job[2] in cache)]
    computed: dict[str, np.ndarray] = {}
    if missing:
        tower.to(device).eval()
        loaded: tuple[int, object] = (-1, None)  # an image's views are consecutive: load it once
        for start in range(0, len(missing), batch_size):
            batch = missing[start : start + batch_size]
            pictures = []
            for i, k, _ in batch:
                if loaded[0] != i:
                    loaded = (i, load_rgb(paths[i], max_pixels=max_pixels))
                view, _ = copy_view(loaded[1], view_rng(image_keys[i], k, seed))
                pictures.append(view)
            features = _features_of_views(tower, pictures, device)
            keep_computed([key for _, _, key in batch], features, computed, cache, progress)
    if progress:
        progress(len(jobs) - len(missing))
    if not jobs:
        return np.zeros((0, tower.dim), dtype=np.float32)
    cached = [key for _, _, key in jobs if key not in computed]
    if cached:
        computed.update(zip(cached, cache.get(cached), strict=True))
    return np.stack([computed[key] for _, _, key in jobs]).astype(np.float32)
