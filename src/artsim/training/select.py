"""Choosing the blend of trained and frozen scores on data unlike the training data.

The in-corpus validation shares source, style and transforms with training and cannot see a head
that forgets what the frozen towers knew (issue 10). The blend weights are chosen instead on
*leave-one-source-out* folds: heads trained without one source are scored on that source's groups,
for every candidate weight. ``a = 0`` (frozen alone) is always a candidate, a weight above 0 is
taken only if it is not below frozen on any fold, and among the rest the weight closest to frozen
whose mean recall is within one standard error of the best is taken (the one-standard-error rule).
"Below frozen" on a fold means significantly below: lower, and a paired sign test on the fold's
queries rejects chance (one query lost among thousands is a near-tie flipped, not a loss): the folds
are clip art too, so a gain smaller than their noise is not worth moving away from the frozen towers
that generalise to other styles (BENCHMARKS.md, Generalisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from artsim.data.manifest.items import VIEW_ROLE, Item
from artsim.model.blend import fuse
from artsim.stats import SIGNIFICANCE, sign_test
from artsim.training.config import TEXT_BLEND_MAX

BLEND_GRID = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
# The smallest weight that keeps the trained heads' cross-modal search (image <-> text scores are
# sqrt(a_image * a_text) * trained, so a weight of 0 switches it off, while their ranking does not
# depend on the scale): preferred to 0 on a tie. At 0.01 the text ranking stays level with frozen
# where a trained text part of 0.05 lost (heads trained on Tux Paint alone, scored on Open Clip Art
# with held-out prompts: 1 query won and 8 lost at 0.05, 1 and 1 at 0.01; BENCHMARKS.md).
KEEP_CROSS = 0.01
# the cap of the trained text part the folds may choose (why: artsim.training.config)
FUSED_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# The copy descriptor's share c of the frozen image part (``ModelConfig.copy_weight``): chosen on
# the folds with the frozen towers alone, never significantly below the content descriptor alone
# (c = 0) nor the copy descriptor alone (c = 1) on a fold. Without folds: DEFAULT_COPY_WEIGHT.
COPY_GRID = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
DEFAULT_COPY_WEIGHT = 0.6


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class SelectionSet:
    """One fold: its items' trained embeddings and frozen descriptors (all unit length)."""

    name: str
    items: list[Item]
    trained_image: np.ndarray
    trained_text: np.ndarray
    frozen_image: np.ndarray
    frozen_text: np.ndarray
    # the whitened copy descriptor (a paired tower), weighed against frozen_image by copy_weight
    copy_image: np.ndarray | None = None
    copy_weight: float = 0.0

    def __post_init__(self) -> None:
        self.has_text = np.array([item.has_text for item in self.items], dtype=bool)
        originals = [row for row, item in enumerate(self.items) if item.is_original]
        position = {self.items[row].group: k for k, row in enumerate(originals)}
        queries = [
            row
            for row, item in enumerate(self.items)
            if not item.is_original and item.role != VIEW_ROLE and item.group in position
        ]
        self.gallery = np.asarray(originals, dtype=np.int64)
        self.queries = np.asarray(queries, dtype=np.int64)
        self.correct = np.asarray([position[self.items[r].group] for r in queries], np.int64)
        self.trained_text = np.where(self.has_text[:, None], self.trained_text, 0.0)
        self.frozen_text = np.where(self.has_text[:, None], self.frozen_text, 0.0)

    def vectors(self, image_blend: float, text_blend: float) -> tuple[np.ndarray, np.ndarray]:
        """The blended image and text vectors (layout of :mod:`artsim.model.blend`)."""
        n = len(self.items)
        frozen = self.frozen_image
        if self.copy_image is not None:
            c = self.copy_weight
            frozen = np.concatenate([np.sqrt(1.0 - c) * frozen, np.sqrt(c) * self.copy_image], 1)
        image = np.concatenate(
            [
                np.sqrt(image_blend) * self.trained_image,
                np.sqrt(1.0 - image_blend) * frozen,
                np.zeros((n, self.frozen_text.shape[1]), np.float32),
            ],
            axis=1,
        )
        text = np.concatenate(
            [
                np.sqrt(text_blend) * self.trained_text,
                np.zeros((n, frozen.shape[1]), np.float32),
                np.sqrt(1.0 - text_blend) * self.frozen_text,
            ],
            axis=1,
        )
        return image, text

    def query_count(self, need_text: bool = False) -> int:
        """How many queries :meth:`recall` scores for the task."""
        if not need_text:
            return len(self.queries)
        keep_gallery = self.has_text[self.gallery]
        return int((self.has_text[self.queries] & keep_gallery[self.correct]).sum())

    def hits(self, space: np.ndarray, need_text: bool = False) -> np.ndarray:
        """Per query, 1.0 where its original is the most similar (items without text left out
        when the task needs it)."""
        queries, correct, gallery = self.queries, self.correct, self.gallery
        if need_text:
            keep_gallery = self.has_text[gallery]
            remap = np.cumsum(keep_gallery) - 1
            keep = self.has_text[queries] & keep_gallery[correct]
            queries, correct = queries[keep], remap[correct[keep]]
            gallery = gallery[keep_gallery]
        if len(queries) == 0 or len(gallery) == 0:
            return np.zeros(0)
        similarity = space[queries] @ space[gallery].T
        return (similarity.argmax(axis=1) == correct).astype(float)

    def recall(self, space: np.ndarray, need_text: bool = False) -> float:
        """Recall@1 of the queries against the originals (NaN without queries)."""
        hits = self.hits(space, need_text)
        return float(hits.mean()) if len(hits) else float("nan")


def _standard_error(values: Sequence[float], counts: Sequence[int] | None) -> float:
    """Binomial standard error of the mean of per-fold recalls (0 without query counts)."""
    if not counts:
        return 0.0
    variance = sum(p * (1.0 - p) / max(n, 1) for p, n in zip(values, counts, strict=True))
    return float(np.sqrt(variance) / len(values))


def _choose(
    scores: dict[float, list[float]],
    counts: Sequence[int] | None = None,
    below: dict[float, list[bool]] | None = None,
) -> float:
    """The weight closest to frozen whose mean score is within one standard error of the best
    (``counts``: queries per fold; without them, the best mean), where :data:`KEEP_CROSS` counts
    as closer than 0. A weight below frozen (weight 0) on a fold is not taken: ``below`` says per
    weight and fold whether it is significantly below (a paired sign test); without it, any loss
    counts."""
    frozen = scores.get(0.0)
    allowed = {}
    for weight, values in scores.items():
        if any(np.isnan(values)):
            continue
        if below is not None:
            if any(below.get(weight, [])):
                continue
        elif frozen is not None and any(v < f for v, f in zip(values, frozen, strict=True)):
            continue
        allowed[weight] = float(np.mean(values))
    if not allowed:
        return 0.0
    best = max(allowed, key=lambda w: (allowed[w], -w))
    floor = allowed[best] - _standard_error(scores[best], counts) - 1e-9
    order = sorted(allowed, key=lambda w: (w != KEEP_CROSS, w))
    return next(w for w in order if allowed[w] >= floor)


def _significantly_below(hits: dict[float, list[np.ndarray]]) -> dict[float, list[bool]]:
    """Per weight and fold: lower than frozen (weight 0) on the same queries, and a paired sign
    test rejects chance (p < :data:`SIGNIFICANCE`)."""
    frozen = hits[0.0]
    return {
        weight: [
            bool(h.mean() < f.mean())
            and sign_test(int((h > f).sum()), int((h < f).sum())) < SIGNIFICANCE
            for h, f in zip(per_fold, frozen, strict=True)
        ]
        for weight, per_fold in hits.items()
    }


def _choose_on_folds(
    scores: dict[float, list[float]], counts: list[int], hits: dict[float, list[np.ndarray]]
) -> float:
    """:func:`_choose` on the folds that have queries for the task. A fold without (a source
    without captions, for the text task) says nothing about the weights; left in, its NaN
    scores would refuse every weight. With no such fold, :data:`KEEP_CROSS`, as for a corpus
    without folds."""
    keep = [fold for fold, count in enumerate(counts) if count > 0]
    if not keep:
        return KEEP_CROSS

    def kept(values: list) -> list:
        return [values[fold] for fold in keep]

    below = _significantly_below({w: kept(per_fold) for w, per_fold in hits.items()})
    return _choose({w: kept(v) for w, v in scores.items()}, kept(counts), below)


def select_copy_weight(sets: Sequence[SelectionSet]) -> dict:
    """The copy descriptor's share of the frozen image part, chosen on ``sets`` with the frozen
    towers alone (image blend 0): the best mean recall@1 over the folds (ties: closest to 0.5)
    among the weights never significantly below the content descriptor alone (c = 0) nor the copy
    descriptor alone (c = 1) on a fold (sign test). Sets the weight on every set; returns it with
    every candidate's recall per fold."""
    hits: dict[float, list[np.ndarray]] = {}
    for weight in COPY_GRID:
        hits[weight] = []
        for fold in sets:
            fold.copy_weight = weight
            hits[weight].append(fold.hits(fold.vectors(0.0, 0.0)[0]))
    counts = [fold.query_count() for fold in sets]
    keep = [k for k, count in enumerate(counts) if count > 0]
    allowed = {}
    for weight, per_fold in hits.items():
        below = False
        for reference in (0.0, 1.0):
            for k in keep:
                h, r = per_fold[k], hits[reference][k]
                wins, losses = int((h > r).sum()), int((h < r).sum())
                if h.mean() < r.mean() and sign_test(wins, losses) < SIGNIFICANCE:
                    below = True
        if not below and keep:
            allowed[weight] = float(np.mean([per_fold[k].mean() for k in keep]))
    chosen = (
        max(allowed, key=lambda w: (allowed[w], -abs(w - 0.5))) if allowed else DEFAULT_COPY_WEIGHT
    )
    for fold in sets:
        fold.copy_weight = chosen
    return {
        "copy_weight": chosen,
        "copy_rule": "best mean recall@1 of the frozen image part over the folds, never "
        "significantly below the content or the copy descriptor alone on a fold (sign test)",
        "copy_scores": {
            f"{w:g}": [float(h.mean()) if len(h) else float("nan") for h in per_fold]
            for w, per_fold in hits.items()
        },
    }


def select_blend(sets: Sequence[SelectionSet], text_max: float = TEXT_BLEND_MAX) -> dict:
    """Image and text blend weights, then the fused image weight, chosen on ``sets``; the text
    weight among the candidates up to ``text_max`` (:data:`TEXT_BLEND_MAX` says why).

    With a copy descriptor its share of the frozen image part is chosen first
    (:func:`select_copy_weight`) and returned as ``copy_weight``.

    Returns the chosen ``image_blend``, ``text_blend``, ``fused_image_weight`` and every
    candidate's recall@1 per fold (``scores``, the capped ones too), for the run's summary.
    """
    table: dict[str, dict[str, list[float]]] = {"image": {}, "text": {}, "fused": {}}
    copy = select_copy_weight(sets) if sets and sets[0].copy_image is not None else {}
    image_hits: dict[float, list[np.ndarray]] = {}
    text_hits: dict[float, list[np.ndarray]] = {}
    for weight in BLEND_GRID:
        image_hits[weight], text_hits[weight] = [], []
        for fold in sets:
            image, text = fold.vectors(weight, weight)
            image_hits[weight].append(fold.hits(image))
            text_hits[weight].append(fold.hits(text, need_text=True))

    def means(hits: dict[float, list[np.ndarray]]) -> dict[float, list[float]]:
        return {
            w: [float(h.mean()) if len(h) else float("nan") for h in per_fold]
            for w, per_fold in hits.items()
        }

    image_scores, text_scores = means(image_hits), means(text_hits)
    image_counts = [fold.query_count() for fold in sets]
    text_counts = [fold.query_count(need_text=True) for fold in sets]
    image_blend = _choose_on_folds(image_scores, image_counts, image_hits)
    allowed_text = [w for w in BLEND_GRID if w <= text_max + 1e-12]
    text_blend = min(
        text_max,
        _choose_on_folds(
            {w: text_scores[w] for w in allowed_text},
            text_counts,
            {w: text_hits[w] for w in allowed_text},
        ),
    )
    fused_weight, fused_scores = select_fused_weight(sets, image_blend, text_blend)
    for name, scores in (("image", image_scores), ("text", text_scores), ("fused", fused_scores)):
        table[name] = {f"{weight:g}": values for weight, values in scores.items()}
    return {
        "image_blend": image_blend,
        "text_blend": text_blend,
        "fused_image_weight": fused_weight,
        "folds": [fold.name for fold in sets],
        "fold_queries": {"image": image_counts, "text": text_counts},
        "rule": "closest to frozen within one standard error of the best mean, never "
        "significantly below frozen on a fold (sign test p < 0.05)",
        "text_blend_max": text_max,
        "scores": table,
        **copy,
    }


def select_fused_weight(
    sets: Sequence[SelectionSet], image_blend: float, text_blend: float
) -> tuple[float, dict[float, list[float]]]:
    """The fused image weight with the best mean recall@1 on ``sets`` (ties: closest to 0.5),
    and every candidate's recall per set. It only balances two scores of different spread (the
    whitened image cosine and the text cosine), so the run's own validation groups can choose it
    where there is no fold."""
    fused_scores: dict[float, list[float]] = {}
    for weight in FUSED_GRID:
        fused_scores[weight] = []
        for fold in sets:
            image, text = fold.vectors(image_blend, text_blend)
            fused_scores[weight].append(fold.recall(fuse(image, text, fold.has_text, weight)))
    means = {w: float(np.mean(v)) for w, v in fused_scores.items() if not np.isnan(v).any()}
    fused_weight = max(means, key=lambda w: (means[w], -abs(w - 0.5))) if means else 0.5
    return fused_weight, fused_scores


def group_sources(items: Sequence[Item]) -> dict[str, str]:
    """The source of every group: its original's package (or source) column."""
    sources: dict[str, str] = {}
    for item in items:
        if item.is_original:
            sources[item.group] = item.metadata.get("package") or item.source or "unknown"
    return sources
