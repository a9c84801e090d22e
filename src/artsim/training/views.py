"""Copy groups for every training original: cached augmented views added to its group.

With ``copy_views`` K > 0 each training original gets K extra items, one per strong view
(:mod:`artsim.model.views`), in its own group and with its artist and metadata but no text, so
the image losses (triplets, and the ``copy`` / ``koleo`` parts) learn invariances from every
original, not only from the derivatives the corpus gives. They join the training side of the
heads stage and of the leave-one-source-out folds (role ``view``: never a query when the
blend is scored on a left-out source); validation, whitening (fitted on originals) and the
fine-tune stage see only the manifest's items.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from artsim.data.manifest.items import VIEW_ROLE, Item
from artsim.model.features import FeatureCache
from artsim.model.towers import create_image_tower
from artsim.model.views import compute_view_features
from artsim.progress import Reporter
from artsim.training.config import TrainConfig

VIEW_SUFFIX = "~view"


def view_items(originals: list[Item], views: int) -> list[Item]:
    """K items per original (id ``ORIGINAL~viewK``): same group, artist and metadata, no text."""
    return [
        replace(item, id=f"{item.id}{VIEW_SUFFIX}{k}", role=VIEW_ROLE, text="", lang="")
        for item in originals
        for k in range(views)
    ]


def copy_views(
    config: TrainConfig, train_items: list[Item], text_dim: int, reporter: Reporter
) -> tuple[list[Item], np.ndarray, np.ndarray]:
    """The view items of the training originals with their image and (zero) text features;
    empty when ``config.copy_views`` is 0."""
    originals = [item for item in train_items if item.is_original]
    views = config.copy_views
    if views <= 0 or not originals:
        return [], np.zeros((0, 0), np.float32), np.zeros((0, text_dim), np.float32)
    tower = create_image_tower(config.image_tower)
    image = compute_view_features(
        tower,
        [item.image for item in originals],
        views,
        FeatureCache(config.cache_dir, tower.version),
        seed=config.seed,
        max_pixels=config.max_pixels,
        progress=reporter.task(f"copy views ({views} per original)", len(originals) * views),
    )
    items = view_items(originals, views)
    return items, image, np.zeros((len(items), text_dim), np.float32)
