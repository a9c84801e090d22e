"""Query crops: an original's image score is the best of the whole query and its crops.

A generated work that holds only part of an original (an inset, a collage, a border) is where
one descriptor of the whole picture fails. So an image query is also embedded as its crops
(:data:`artsim.data.pictures.crops.QUERY_CROP_WINDOWS`: a 2 x 2 grid and the centre), and an
original's image score is ``max(whole, best crop - margin)``: a crop counts only where it beats
the whole picture by ``margin``, so a query that matches as a whole is scored as before. Measured
on three sets (BENCHMARKS.md, "Query crops"): with a margin of 0.06 image recall@1 gains without
losing on any pattern, and the score passing 1% of unrelated queries is unchanged.

The calibration of an index records the crops it was fitted with (:class:`QueryCrops`), and
searches and pair scores graded by it embed the same: thresholds are only valid for the scoring
they were fitted on.

>>> QueryCrops.from_json(DEFAULT_QUERY_CROPS.to_json()) == DEFAULT_QUERY_CROPS
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from artsim.data.pictures.crops import QUERY_CROP_WINDOWS, crops
from artsim.index.store import Hits, VectorStore
from artsim.model.embedder import Embedder

DEFAULT_CROP_MARGIN = 0.06
# crops embedded per forward pass: bounds the memory of a calibration's thousands of crops
CROP_BATCH = 32


@dataclass(frozen=True)
class QueryCrops:
    """Which crops of an image query are embedded (``windows``, fractions of the picture) and
    by how much one must beat the whole picture to count (``margin``, in image-score units)."""

    windows: tuple[tuple[float, float, float, float], ...] = QUERY_CROP_WINDOWS
    margin: float = DEFAULT_CROP_MARGIN

    def to_json(self) -> dict:
        return {"windows": [list(w) for w in self.windows], "margin": self.margin}

    @classmethod
    def from_json(cls, raw: dict | None) -> QueryCrops | None:
        """Read :meth:`to_json`'s output (``None`` stays ``None``: a whole-picture scoring);
        raises ``KeyError``/``TypeError``/``ValueError`` when it is not that."""
        if raw is None:
            return None
        windows = tuple(tuple(float(v) for v in w) for w in raw["windows"])
        if any(len(w) != 4 for w in windows):
            raise ValueError("a query-crop window has four fractions")
        return cls(windows=windows, margin=float(raw["margin"]))  # type: ignore[arg-type]


DEFAULT_QUERY_CROPS = QueryCrops()


def default_query_crops(embedder: Embedder) -> QueryCrops | None:
    """The crops a new calibration of this model fits with: :data:`DEFAULT_QUERY_CROPS` for a
    model with a copy descriptor (where the margin was measured), none for the others."""
    return DEFAULT_QUERY_CROPS if embedder.model.part_weights() else None


def embed_crops(
    embedder: Embedder, pictures: Sequence[Image.Image], query_crops: QueryCrops
) -> list[np.ndarray]:
    """Per picture, the image vectors of its crops (``crops x dim``; none for a tiny picture)."""
    pieces = [crops(picture.convert("RGB"), query_crops.windows) for picture in pictures]
    flat = [piece for some in pieces for piece in some]
    vectors = np.zeros((0, embedder.dim), dtype=np.float32)
    if flat:
        vectors = np.vstack(
            [
                embedder.embed_pil(flat[start : start + CROP_BATCH])
                for start in range(0, len(flat), CROP_BATCH)
            ]
        )
    out, start = [], 0
    for some in pieces:
        out.append(vectors[start : start + len(some)])
        start += len(some)
    return out


def best_of_crops(whole: np.ndarray, crop_scores: np.ndarray, margin: float) -> np.ndarray:
    """``max(whole, best crop - margin)`` per original: ``whole`` is ``(n,)``, ``crop_scores``
    ``(crops, n)`` (no rows: the whole scores)."""
    if not len(crop_scores):
        return whole
    return np.maximum(whole, crop_scores.max(axis=0) - margin)


def search_with_crops(
    store: VectorStore,
    whole: np.ndarray,
    crop_vectors: Sequence[np.ndarray],
    k: int,
    margin: float,
) -> list[Hits]:
    """Per query row of ``whole`` (with its ``crop_vectors``), the ``k`` originals of the image
    store with the best :func:`best_of_crops` scores, best first. Exact when the store's search
    is: an original in the combined top ``k`` is in the top ``k`` of the vector that gives its
    score, so the union of the top ``k`` of the whole and of each crop holds them all, and they
    are scored exactly among that union."""
    whole = np.atleast_2d(whole)
    stacked = [
        np.vstack([row[None], views]) for row, views in zip(whole, crop_vectors, strict=True)
    ]
    firsts = store.search("image", np.vstack(stacked), k) if stacked else []
    results, start = [], 0
    for vectors in stacked:
        candidates = list(
            dict.fromkeys(i for hits in firsts[start : start + len(vectors)] for i in hits.ids)
        )
        start += len(vectors)
        if not candidates:
            results.append(Hits([], []))
            continue
        exact = [
            hits.as_dict() for hits in store.search("image", vectors, len(candidates), candidates)
        ]
        ids = [i for i in candidates if i in exact[0]]
        table = np.array([[row.get(i, -np.inf) for i in ids] for row in exact])
        scores = best_of_crops(table[0], table[1:], margin)
        order = np.argsort(-scores, kind="stable")[:k]
        results.append(Hits([ids[i] for i in order], [float(scores[i]) for i in order]))
    return results
