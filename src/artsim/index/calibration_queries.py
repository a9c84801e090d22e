"""The calibration's queries (:mod:`artsim.index.calibrate`): made, embedded, and searched.

:func:`embed_queries` derives the drawn originals with the evaluation-only transform family and
embeds the derivatives as searches embed them. :func:`ranked` searches each query twice, against
the whole index (a *match*: its original is there) and against the index without the query's
own group (a *distractor*: leave one group out); :func:`lower_ranks` turns the results below the
first into what :func:`artsim.verdicts.grades.fit_task` reads.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artsim.data.families.heldout.derive import derive_heldout_manifest
from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import Manifest, load_manifest
from artsim.data.pictures.images import load_rgb
from artsim.index.crops import QueryCrops, embed_crops, search_with_crops
from artsim.model.embedder import Embedder


@dataclass
class Queries:
    """The calibration's derivatives, embedded: one row per derivative of a drawn original."""

    items: list[Item]
    image: np.ndarray
    text: np.ndarray
    fused: np.ndarray
    has_text: np.ndarray
    crops: QueryCrops | None = None
    crop_vectors: list[np.ndarray] | None = None

    @property
    def groups(self) -> list[str]:
        return [item.group for item in self.items]


@dataclass
class Gallery:
    """The index searched, and which group each of its originals is in."""

    store: object
    group_of: dict[str, str]
    group_sizes: dict[str, int]

    @classmethod
    def of(cls, store, originals: Sequence[Item]) -> Gallery:
        """The gallery of ``store``, which holds ``originals``."""
        group_sizes: dict[str, int] = {}
        for item in originals:
            group_sizes[item.group] = group_sizes.get(item.group, 0) + 1
        return cls(store, {item.id: item.group for item in originals}, group_sizes)


def embed_queries(
    embedder: Embedder,
    drawn: Sequence[Item],
    per_original: int,
    seed: int,
    max_pixels: int,
    crops: QueryCrops | None,
) -> Queries:
    """Derivatives of the drawn originals (evaluation-only family), embedded as searches embed
    them: image (and its crops), prompt, image + prompt."""
    with tempfile.TemporaryDirectory(prefix="artsim-calibrate-") as folder:
        manifest = Manifest(path=Path(folder) / "originals.csv", items=list(drawn))
        derived_path = derive_heldout_manifest(
            manifest, Path(folder) / "derived", per_original=per_original, seed=seed
        )
        items = load_manifest(derived_path, check_images=False).generated()
        image = embedder.embed_images([q.image for q in items], max_pixels=max_pixels)
        crop_vectors = (
            embed_crops(embedder, [load_rgb(q.image, max_pixels) for q in items], crops)
            if crops is not None
            else None
        )
    texts = [q.text for q in items]
    has_text = np.array([bool(t.strip()) for t in texts])
    text = embedder.embed_texts([t or " " for t in texts])
    fused = embedder.fuse(image, text, has_text)
    return Queries(items, image, text, fused, has_text, crops, crop_vectors)


def top1(store, modality, vectors, query_groups, group_of, group_sizes, rank: int = 0):
    """Per query, the best (id, score) over the whole index (match) and over the index without
    the query's own group (distractor); with ``rank``, also the score at that rank of each of
    the two searches (the query's background, NaN when the index holds too few)."""
    return ranked(store, modality, vectors, query_groups, group_of, group_sizes, rank)[:3]


def ranked(
    store, modality, vectors, query_groups, group_of, group_sizes, rank=0, depth=1, crops=None
):
    """:func:`top1`'s three lists, and per query the results at ranks 2 .. ``depth`` of both
    searches: ``(match: [(score, is its original)], distractor: [score])``. ``crops``: per
    query its crop vectors and the margin, for image searches scored with query crops."""
    k = max(group_sizes.values(), default=0) + max(rank, depth, 1)
    if crops is None:
        hits = store.search(modality, vectors, k)
    else:
        hits = search_with_crops(store, vectors, crops[0], k, crops[1])
    matches, distractors, backgrounds, lower = [], [], [], []
    for hit, group in zip(hits, query_groups, strict=True):
        pairs = list(zip(hit.ids, hit.scores, strict=True))
        away = [(i, s) for i, s in pairs if group_of.get(i) != group]
        matches.append(pairs[0] if pairs else (None, float("nan")))
        distractors.append(away[0] if away else (None, float("nan")))
        backgrounds.append(
            (
                float(pairs[rank - 1][1]) if rank and len(pairs) >= rank else float("nan"),
                float(away[rank - 1][1]) if rank and len(away) >= rank else float("nan"),
            )
        )
        lower.append(
            (
                [(float(s), group_of.get(i) == group) for i, s in pairs[1:depth]],
                [float(s) for _, s in away[1:depth]],
            )
        )
    return matches, distractors, backgrounds, lower


def lower_ranks(lower, found, away_found, shifts=None):
    """The ``lower`` argument of :func:`~artsim.verdicts.grades.fit_task` from :func:`ranked`'s per-query lists:
    match scores, whether each is the original, distractor scores, each minus its search's
    shift (``shifts[q] = (match shift, distractor shift)``, background normalisation)."""
    scores, correct, away = [], [], []
    for query, (ranked_scores, away_ranked) in enumerate(lower):
        match_shift, away_shift = shifts[query] if shifts is not None else (0.0, 0.0)
        if found[query]:
            scores += [score - match_shift for score, _ in ranked_scores]
            correct += [is_original for _, is_original in ranked_scores]
        if away_found[query]:
            away += [score - away_shift for score in away_ranked]
    return np.asarray(scores), np.asarray(correct, dtype=bool), np.asarray(away)


def score_with(store, modality, vector, item_id: str) -> float | None:
    """The score of one vector against one original of ``store`` (None when it is not there)."""
    found = store.search(modality, vector[None], 1, [item_id])[0]
    return float(found.scores[0]) if found.ids else None
