"""The ``copy`` grade's threshold, fitted on near-duplicates of the drawn originals
(:mod:`artsim.index.calibrate`).

Each drawn original gets a copy that survives almost unchanged (:func:`near_duplicate`); the
grade's threshold is what these reach against their original, on the copy score with a copy
descriptor (else the image score), never below what unrelated works reach.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from artsim.data.pictures.images import load_rgb
from artsim.errors import ImageError
from artsim.index.calibration_fit import TaskFit
from artsim.index.calibration_queries import Gallery, Queries, score_with, top1
from artsim.index.query import copy_query
from artsim.verdicts.grades import copy_threshold
from artsim.verdicts.openset import OPEN_SET_RATES, open_set_threshold


def near_duplicate(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A copy that survives almost unchanged: cropped by at most 4%, resized to 60-95%, saved as
    JPEG at quality 70-90."""
    width, height = picture.size
    dx, dy = (int(width * rng.uniform(0, 0.04)), int(height * rng.uniform(0, 0.04)))
    cropped = picture.crop((dx, dy, width - int(width * rng.uniform(0, 0.04)), height - dy))
    scale = rng.uniform(0.6, 0.95)
    size = (max(8, int(cropped.width * scale)), max(8, int(cropped.height * scale)))
    buffer = io.BytesIO()
    cropped.resize(size, Image.Resampling.BILINEAR).save(
        buffer, format="JPEG", quality=int(rng.integers(70, 91))
    )
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def near_duplicate_scores(
    index, embedder, originals, matches, seed, max_pixels
) -> list[tuple[float | None, float | None]]:
    """Per near-duplicate of a drawn original: (its copy score, its image score) against that
    original (the copy score None without a copy descriptor)."""
    rng = np.random.default_rng([seed, 13])
    pictures, ids = [], []
    for item in originals:
        if item.group not in matches:
            continue
        try:
            pictures.append(near_duplicate(load_rgb(item.image, max_pixels), rng))
        except ImageError:
            continue
        ids.append(item.id)
    if not pictures:
        return []
    vectors = embedder.embed_pil(pictures)
    copy_part = copy_query(embedder)
    scores = []
    for vector, item_id in zip(vectors, ids, strict=True):
        image = score_with(index.store, "image", vector, item_id)
        copy = None
        if copy_part is not None:
            partial, weight = copy_part(vector)
            raw = score_with(index.store, "image", partial, item_id)
            copy = None if raw is None else raw / weight
        scores.append((copy, image))
    return scores


def grade_scores(copies, copy_part) -> list[float | None]:
    """The score the copy grade reads of each near-duplicate: its copy score with a copy
    descriptor, else its image score."""
    return [copy if copy_part is not None else image for copy, image in copies]


def copy_grade(
    gallery: Gallery, queries: Queries, copies, copy_part, image: TaskFit | None
) -> dict | None:
    """The copy grade's threshold: what near-duplicates reach (on the copy score with a copy
    descriptor, else the image score), never below what unrelated works reach."""
    scores = [score for score in grade_scores(copies, copy_part) if score is not None]
    if copy_part is not None:
        # floored by what the derivatives' best other-group copy scores reach
        partial = np.stack([copy_part(vector)[0] for vector in queries.image])
        _, away, _ = top1(
            gallery.store, "image", partial, queries.groups, gallery.group_of, gallery.group_sizes
        )
        away_copy = np.array([score for _, score in away], dtype=np.float64) / copy_part.weight
        away_copy = away_copy[~np.isnan(away_copy)]
        floor = open_set_threshold(away_copy, min(OPEN_SET_RATES)) if len(away_copy) else None
        return copy_threshold(scores, floor, on_copy_score=True)
    # a copy is never called on less than what the strictest rate lets through, in plain scores
    floor = None
    if image is not None:
        distractors = image.distractor_scores
        floor = open_set_threshold(distractors[~np.isnan(distractors)], min(OPEN_SET_RATES))
    return copy_threshold(scores, floor)
