"""Calibrate verdicts on the indexed collection itself: ``artsim calibrate --index DIR``.

Thresholds measured on the training data's validation split do not transfer to another
collection (another style, another number of originals). This fits them where they are used:

1. Whole groups of the index are drawn (``sample`` of them, seeded).
2. Each drawn original gets one derivative made with the evaluation-only transform family
   (:mod:`artsim.data.heldout`, never used in training), with a prompt; two or three when the
   collection has fewer originals than ``sample`` (:func:`derivatives_per_original`: a
   291-original index gets 582 queries, not 291); each also gets a near-duplicate (resized,
   slightly cropped, re-encoded as JPEG) for the ``copy`` grade.
3. Every derivative is searched as the service searches (image, prompt, image + prompt) twice:
   against the whole index, where its original is (a *match* query), and against the index
   without its own group, where its original is not (a *distractor* query: leave one group out).
   The top-1 scores of the distractor queries against those of the match queries give the
   thresholds (:mod:`artsim.verdicts.grades`), the recall measured at each, and the probability
   table. For image and image + prompt searches the thresholds are also fitted on scores with the
   query's background taken off (its score at rank ``BACKGROUND_RANK`` of the same search), and
   those are kept where they recall more of these queries at the rate. By default the threshold
   for rate p is the distractor scores' quantile: p on average. With ``confidence`` (say 0.95)
   it lets through only as many distractors as keep the exact one-sided bound of the rate at or
   below p, so the rate holds with that confidence; measured, that costs much recall and did not
   remove the excess on art4apps (BENCHMARKS.md, Verdicts).

Leaving out only the query's own group keeps the gallery the size users search (all originals but
one group). Leaving half the drawn groups out of the gallery instead, as before, calibrated on a
gallery up to half the size: the best unrelated score grows with the gallery, so thresholds came
out too low and fresh distractor queries were called "derived" more often than the rate said
(8 of 150 on art4apps at the 1% rate; BENCHMARKS.md, Verdicts).

The drawn originals are also searched themselves, their own group left out: one whose best match in
another group reaches the image "derived" threshold is a *look-alike*, the same picture held
under two names (art4apps has "bike", "bicycle" and "pedal": one drawing recoloured). A derivative
of one is then rightly called derived from the other, and, leaving only its own group out, counts
as a distractor that raised the thresholds. They are listed so that a curator can put each work
in one group (BENCHMARKS.md, Verdicts).

The result is written into ``index.json`` under ``calibration``: how, on what, the thresholds, the
recall and false-verdict rate at each, the confusion counts of the grades on these queries, and
the look-alike originals found.
"""

from __future__ import annotations

import io
import math
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from artsim.data.heldout import derive_heldout_manifest
from artsim.data.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.data.items import Item
from artsim.data.manifest import Manifest, load_manifest
from artsim.defaults import DEFAULT_SAMPLE  # defined beside what `artsim ... --help` shows
from artsim.errors import ImageError, UserError
from artsim.index.catalog import ArtIndex, IndexInfo
from artsim.index.crops import QueryCrops, default_query_crops, embed_crops, search_with_crops
from artsim.index.query import copy_query
from artsim.model.embedder import Embedder
from artsim.verdicts.grades import (
    BACKGROUND_RANK,
    BACKGROUND_WEIGHT,
    NORMALISED_TASKS,
    PROBABILITY_DEPTH,
    RELATED_RATE,
    OpenSetCalibration,
    TaskCalibration,
    confusion,
    copy_threshold,
    fit_task,
)
from artsim.verdicts.openset import (
    DEFAULT_RATE,
    OPEN_SET_RATES,
    binomial_interval,
    open_set_threshold,
    reliability,
)

LOOK_ALIKES_LISTED = 20
# at most this many derivatives of one original, when the collection is smaller than the sample
MAX_DERIVATIVES_PER_ORIGINAL = 3
CALIBRATED_TASKS = ("image", "text", "fused")


def _originals(index: ArtIndex) -> list[Item]:
    records = index.store.get(index.store.ids())
    items = []
    for record in records.values():
        path = Path(record.image_path)
        if not path.is_file():
            continue
        items.append(
            Item(
                id=record.id,
                group=record.group,
                role="original",
                image=path,
                text=record.caption,
                lang=record.lang,
                artist=record.artist,
                title=record.title,
                source=record.source,
                metadata=dict(record.metadata),
            )
        )
    return sorted(items, key=lambda item: item.id)


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


def derivatives_per_original(sample: int, drawn_originals: int) -> int:
    """How many calibration derivatives each drawn original gets: enough to make about
    ``sample`` queries, at most ``MAX_DERIVATIVES_PER_ORIGINAL`` (each its own pattern).

    >>> derivatives_per_original(300, 1600), derivatives_per_original(300, 291)
    (1, 2)
    >>> derivatives_per_original(300, 43)
    3
    """
    if drawn_originals <= 0:
        return 1
    return max(1, min(MAX_DERIVATIVES_PER_ORIGINAL, math.ceil(sample / drawn_originals)))


def _draw_groups(originals: Sequence[Item], sample: int, seed: int) -> set[str]:
    """``sample`` groups of the index (all of them if it has fewer), seeded."""
    groups = sorted({item.group for item in originals})
    if len(groups) < 4:
        raise UserError(
            f"calibration needs at least 4 groups of originals in the index, it has {len(groups)}"
        )
    count = min(sample, len(groups))
    order = np.random.default_rng([seed, 11]).permutation(len(groups))[:count]
    return {groups[i] for i in order.tolist()}


def _top1(store, modality, vectors, query_groups, group_of, group_sizes, rank: int = 0):
    """Per query, the best (id, score) over the whole index (match) and over the index without
    the query's own group (distractor); with ``rank``, also the score at that rank of each of
    the two searches (the query's background, NaN when the index holds too few)."""
    return _ranked(store, modality, vectors, query_groups, group_of, group_sizes, rank)[:3]


def _ranked(
    store, modality, vectors, query_groups, group_of, group_sizes, rank=0, depth=1, crops=None
):
    """:func:`_top1`'s three lists, and per query the results at ranks 2 .. ``depth`` of both
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


def _cross_fitted_reliability(groups, scores, kept, shifts, fitted: TaskCalibration) -> dict:
    """The expected calibration error of the probabilities, measured on queries the tables
    were not fitted on: the queries are halved by group, the tables fitted on one half give the
    probabilities of the other half's results (ranks 1-10 of the match and the distractor
    search, even odds), and the halves swap. Beside it, the error of the best result's table
    read at every rank (how results below the first were stated before)."""
    match, correct, away, lower = scores
    found, away_found = kept
    fold = np.array([zlib.crc32(group.encode("utf-8")) % 2 for group in groups])
    stated, before, truth, weight = [], [], [], []
    n_match, n_away = max(int(found.sum()), 1), max(int(away_found.sum()), 1)
    for half in (0, 1):
        fit, test = fold != half, fold == half
        if not (found & fit).sum() or not (away_found & fit).sum():
            continue
        table = fit_task(
            (match - shifts[:, 0])[found & fit],
            correct[found & fit],
            (away - shifts[:, 1])[away_found & fit],
            rates=(),
            lower=_lower_ranks(lower, found & fit, away_found & fit, shifts),
        )
        for query in np.nonzero(test)[0]:
            ranked, away_ranked = lower[query]
            listed = []
            if found[query]:
                first = (match[query] - shifts[query, 0], bool(correct[query]))
                rest = [(s - shifts[query, 0], o) for s, o in ranked]
                listed.append(([first, *rest], 1.0))
            if away_found[query]:
                first = (away[query] - shifts[query, 1], False)
                rest = [(s - shifts[query, 1], False) for s in away_ranked]
                listed.append(([first, *rest], n_match / n_away))
            for results, share in listed:
                for place, (decision, is_original) in enumerate(results, start=1):
                    stated.append(table.probability_at(decision, place))
                    before.append(table.probability_at(decision, 1))
                    truth.append(is_original)
                    weight.append(share)
    if not stated or any(p is None for p in stated):
        return {}
    measured = reliability(stated, truth, weight)
    ranks_below = [k for k, p in enumerate(before) if p is not None]
    return {
        "how": "cross-fitted: queries halved by group, each half's results (ranks 1-10 of the "
        "match and the distractor search, even odds) stated by the tables fitted on the other",
        "results": len(stated),
        "ece": measured["ece"],
        "ece_best_result_table_everywhere": reliability(
            [before[k] for k in ranks_below],
            [truth[k] for k in ranks_below],
            [weight[k] for k in ranks_below],
        )["ece"],
        "bins": measured["bins"],
        "normalised": fitted.normalised,
    }


def _lower_ranks(lower, found, away_found, shifts=None):
    """The ``lower`` argument of :func:`fit_task` from :func:`_ranked`'s per-query lists:
    match scores, whether each is the original, distractor scores, each minus its search's
    shift (``shifts[q] = (match shift, distractor shift)``, background normalisation)."""
    scores, correct, away = [], [], []
    for query, (ranked, away_ranked) in enumerate(lower):
        match_shift, away_shift = shifts[query] if shifts is not None else (0.0, 0.0)
        if found[query]:
            scores += [score - match_shift for score, _ in ranked]
            correct += [is_original for _, is_original in ranked]
        if away_found[query]:
            away += [score - away_shift for score in away_ranked]
    return np.asarray(scores), np.asarray(correct, dtype=bool), np.asarray(away)


def _score_with(store, modality, vector, item_id: str) -> float | None:
    found = store.search(modality, vector[None], 1, [item_id])[0]
    return float(found.scores[0]) if found.ids else None


@dataclass
class _Queries:
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
class _Gallery:
    """The index searched, and which group each of its originals is in."""

    store: object
    group_of: dict[str, str]
    group_sizes: dict[str, int]


@dataclass
class _TaskFit:
    """One task fitted on the calibration queries, and what the rest of the calibration reads."""

    fitted: TaskCalibration
    top: tuple  # (rows, best, away, background) for the confusion counts
    figures: dict
    reliability: dict
    choice: dict | None
    distractor_scores: np.ndarray


def calibrate_index(
    index: ArtIndex,
    embedder: Embedder,
    *,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    rate: float = DEFAULT_RATE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    confidence: float | None = None,
    query_crops: bool = True,
) -> OpenSetCalibration:
    """Fit open-set thresholds on the index's own originals (see the module docstring) and
    record them in its ``index.json``; returns the calibration. ``confidence``: thresholds whose
    rates hold with it (an exact one-sided bound) instead of on average. ``query_crops``: score
    image queries with the model's default query crops (:mod:`artsim.index.crops`), as searches
    graded by this calibration then will; False scores the whole picture only."""
    started = time.perf_counter()
    index.check_model(embedder)
    originals = _originals(index)
    drawn_groups = _draw_groups(originals, sample, seed)
    drawn = [item for item in originals if item.group in drawn_groups]
    per_original = derivatives_per_original(sample, len(drawn))
    crops = default_query_crops(embedder) if query_crops else None
    queries = _embedded_queries(embedder, drawn, per_original, seed, max_pixels, crops)
    group_sizes: dict[str, int] = {}
    for item in originals:
        group_sizes[item.group] = group_sizes.get(item.group, 0) + 1
    gallery = _Gallery(index.store, {item.id: item.group for item in originals}, group_sizes)

    fits: dict[str, _TaskFit] = {}
    for task, vectors, keep in (
        ("image", queries.image, np.ones(len(queries.items), bool)),
        ("text", queries.text, queries.has_text),
        ("fused", queries.fused, queries.has_text),
    ):
        fit = _fit_task_on(gallery, queries, task, vectors, keep, rate, confidence)
        if fit is not None:
            fits[task] = fit
    tasks = {task: fit.fitted for task, fit in fits.items()}

    copy_part = copy_query(embedder)
    copies = _near_duplicate_scores(index, embedder, originals, drawn_groups, seed, max_pixels)
    copy = _copy_grade(gallery, queries, copies, copy_part, fits.get("image"))
    look_alikes = (
        _look_alikes(
            gallery.store,
            embedder,
            drawn,
            gallery.group_of,
            gallery.group_sizes,
            tasks["image"],
            rate,
            max_pixels,
        )
        if "image" in tasks
        else None
    )
    calibration = OpenSetCalibration(
        model_id=index.model_id,
        rate=rate,
        tasks=tasks,
        copy=copy,
        about={},
        query_crops=crops.to_json() if crops is not None else None,
    )
    confusion_counts = _confusion(
        calibration,
        gallery.store,
        queries.items,
        queries.image,
        queries.text,
        {task: fit.top for task, fit in fits.items()},
        gallery.group_of,
        copy_part,
    )
    about = {
        "how": _HOW
        + (
            f", with {confidence:.0%} confidence (exact one-sided bound)"
            if confidence
            else " (on average)"
        ),
        "on": {
            "originals_in_index": len(originals),
            "groups_drawn": len(drawn_groups),
            "derivatives_per_original": per_original,
            "match_queries": len(queries.items),
            "distractor_queries": len(queries.items),
            "near_duplicates": sum(score is not None for score in _grade_scores(copies, copy_part)),
            "sample": sample,
            "seed": seed,
            "confidence": confidence,
        },
        "rates": [*OPEN_SET_RATES, RELATED_RATE],
        "measured": {task: fit.figures for task, fit in fits.items()},
        "confusion": confusion_counts,
        "look_alikes": look_alikes,
        # per task: recall at the rate with plain and with background-normalised scores
        "background": {task: fit.choice for task, fit in fits.items() if fit.choice},
        # per task: are the stated probabilities right? cross-fitted on the calibration queries
        "reliability": {task: fit.reliability for task, fit in fits.items()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    calibration = replace(calibration, about=about)
    # under the write lock and from the file as it is now: keeps what writers put there meanwhile
    with index.write_lock():
        info = replace(IndexInfo.read(index.path), calibration=calibration.to_json())
        info.write(index.path)
    index.info = info
    return calibration


_HOW = (
    "open-set on this collection: one derivative (evaluation-only transform family) of "
    "each original of the drawn groups, searched against the whole index (a match) and "
    "against the index without its own group (a distractor: leave one group out); "
    "thresholds on the top-1 score so that at most the given share of distractor "
    "queries reach them"
)


def _embedded_queries(
    embedder: Embedder,
    drawn: Sequence[Item],
    per_original: int,
    seed: int,
    max_pixels: int,
    crops: QueryCrops | None,
) -> _Queries:
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
    return _Queries(items, image, text, fused, has_text, crops, crop_vectors)


def _fit_task_on(
    gallery: _Gallery,
    queries: _Queries,
    task: str,
    vectors: np.ndarray,
    keep: np.ndarray,
    rate: float,
    confidence: float | None,
) -> _TaskFit | None:
    """Fit one task's thresholds and probabilities on its calibration queries (``keep``): plain,
    and background-normalised where that recalls more at ``rate``. None when too few queries
    found anything (e.g. no caption anywhere: the task stays uncalibrated)."""
    rows = np.nonzero(keep)[0]
    if not len(rows):
        return None
    groups = [queries.groups[row] for row in rows]
    rank = BACKGROUND_RANK if task in NORMALISED_TASKS else 0
    scored_with_crops = (
        (queries.crop_vectors, queries.crops.margin)
        if task == "image" and queries.crops is not None
        else None
    )
    best, away, backgrounds, lower = _ranked(
        gallery.store,
        task,  # each task searches the store of its name
        vectors[rows],
        groups,
        gallery.group_of,
        gallery.group_sizes,
        rank,
        PROBABILITY_DEPTH,
        scored_with_crops,
    )
    match_scores = np.array([score for _, score in best], dtype=np.float64)
    distractor_scores = np.array([score for _, score in away], dtype=np.float64)
    background = np.array(backgrounds, dtype=np.float64).reshape(-1, 2)
    correct = np.array(
        [gallery.group_of.get(i) == g for (i, _), g in zip(best, groups, strict=True)], dtype=bool
    )
    found, away_found = ~np.isnan(match_scores), ~np.isnan(distractor_scores)
    if found.sum() < 2 or away_found.sum() < 2:
        return None
    fitted = fit_task(
        match_scores[found],
        correct[found],
        distractor_scores[away_found],
        confidence=confidence,
        lower=_lower_ranks(lower, found, away_found),
    )
    choice = None
    if rank and np.isfinite(background[found | away_found]).all():
        # decisions on score - weight * background (BACKGROUND_RANK, verdicts module), kept
        # where they find more at the rate: on a few dozen originals of one style the
        # background is as close as the original (flare, image + prompt: 0.86 -> 0.09)
        normalised = fit_task(
            (match_scores - BACKGROUND_WEIGHT * background[:, 0])[found],
            correct[found],
            (distractor_scores - BACKGROUND_WEIGHT * background[:, 1])[away_found],
            confidence=confidence,
            background_rank=rank,
            background_weight=BACKGROUND_WEIGHT,
            lower=_lower_ranks(lower, found, away_found, BACKGROUND_WEIGHT * background),
        )
        recalls = [_recall_at(c, rate) for c in (fitted, normalised)]
        choice = {
            "plain_recall": recalls[0],
            "normalised_recall": recalls[1],
            "normalised": recalls[1] > recalls[0],
        }
        if recalls[1] > recalls[0]:
            fitted = normalised
    if not fitted.normalised:
        background[:] = 0.0
    reliability = _cross_fitted_reliability(
        groups,
        (match_scores, correct, distractor_scores, lower),
        (found, away_found),
        fitted.background_weight * background if fitted.normalised else 0.0 * background,
        fitted,
    )
    figures = _interval_figures(
        fitted.thresholds,
        int(away_found.sum()),
        len({g for g, kept in zip(groups, away_found, strict=True) if kept}),
    )
    return _TaskFit(
        fitted, (rows, best, away, background), figures, reliability, choice, distractor_scores
    )


def _grade_scores(copies, copy_part) -> list[float | None]:
    """The score the copy grade reads of each near-duplicate: its copy score with a copy
    descriptor, else its image score."""
    return [copy if copy_part is not None else image for copy, image in copies]


def _copy_grade(
    gallery: _Gallery, queries: _Queries, copies, copy_part, image: _TaskFit | None
) -> dict | None:
    """The copy grade's threshold: what near-duplicates reach (on the copy score with a copy
    descriptor, else the image score), never below what unrelated works reach."""
    scores = [score for score in _grade_scores(copies, copy_part) if score is not None]
    if copy_part is not None:
        # floored by what the derivatives' best other-group copy scores reach
        partial = np.stack([copy_part(vector)[0] for vector in queries.image])
        _, away, _ = _top1(
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


def _recall_at(calibration: TaskCalibration, rate: float) -> float:
    return float(calibration.thresholds.get(f"{rate:g}", {}).get("recall", 0.0))


def _interval_figures(thresholds: dict, n_distractors: int, n_groups: int) -> dict:
    """Recall and false-verdict share per rate, with the 95% interval of the latter. The interval
    counts groups, not queries: the derivatives of one original are correlated, so several per
    group would make it too narrow."""
    units = max(1, min(n_distractors, n_groups))
    out = {}
    for rate, values in thresholds.items():
        false = round(values["false_rate"] * units)
        low, high = binomial_interval(false, units)
        out[rate] = {
            "threshold": values["threshold"],
            "recall": values["recall"],
            "false_rate": values["false_rate"],
            "false_rate_interval": [low, high],
        }
    return out


def _look_alikes(
    store, embedder, drawn, group_of, group_sizes, image: TaskCalibration, rate, max_pixels
) -> dict:
    """Drawn originals whose best image match outside their own group reaches the image
    "derived" threshold at ``rate``, as a search of that original would decide it: how many
    were checked, how many were found, and the closest pairs."""
    threshold = image.threshold(rate)
    items = list(drawn)
    if threshold is None or not items:
        return {"checked": 0, "found": 0, "pairs": []}
    try:
        vectors = embedder.embed_images([item.image for item in items], max_pixels=max_pixels)
    except ImageError as error:  # an original unreadable since it was indexed
        return {"checked": 0, "found": 0, "pairs": [], "error": str(error)}
    rank = image.background_rank if image.normalised else 0
    # whole pictures only (query crops would cost five more embeddings per original): close
    # to what a search with crops decides, never the pairs only a crop would find
    _, away, backgrounds = _top1(
        store, "image", vectors, [i.group for i in items], group_of, group_sizes, rank
    )
    pairs = []
    for item, (hit, score), (_, background) in zip(items, away, backgrounds, strict=True):
        shift = image.shift(background)
        if hit is not None and shift is not None and score - shift >= threshold:
            pairs.append({"original": item.id, "look_alike": hit, "score": round(float(score), 6)})
    pairs.sort(key=lambda pair: -pair["score"])
    return {"checked": len(items), "found": len(pairs), "pairs": pairs[:LOOK_ALIKES_LISTED]}


def _near_duplicate_scores(
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
        image = _score_with(index.store, "image", vector, item_id)
        copy = None
        if copy_part is not None:
            partial, weight = copy_part(vector)
            raw = _score_with(index.store, "image", partial, item_id)
            copy = None if raw is None else raw / weight
        scores.append((copy, image))
    return scores


def _confusion(
    calibration, store, queries, image_vectors, text_vectors, top, group_of, copy_part=None
):
    """Grades of the calibration queries as the service would give them (its task, the scores of
    its top-1), by what the query truly is: each derivative once as a match (whole index) and once
    as a distractor (its group left out)."""
    truth, predicted = [], []
    task = "fused" if "fused" in top else "image"
    if task not in top:
        return {}
    rows, best, away, backgrounds = top[task]
    for row, match, distractor, (match_background, away_background) in zip(
        rows.tolist(), best, away, backgrounds.tolist(), strict=True
    ):
        for (item_id, score), is_match, background in (
            (match, True, match_background),
            (distractor, False, away_background),
        ):
            if item_id is None:
                continue
            values = {task: float(score)}
            image = _score_with(store, "image", image_vectors[row], item_id)
            if image is not None:
                values["image"] = image
            if copy_part is not None:
                partial, weight = copy_part(image_vectors[row])
                copy = _score_with(store, "image", partial, item_id)
                if copy is not None:
                    values["copy"] = copy / weight
            if queries[row].text.strip():
                text = _score_with(store, "text", text_vectors[row], item_id)
                if text is not None:
                    values["text"] = text
            if is_match:
                same = group_of.get(item_id) == queries[row].group
                truth.append("derived" if same else "derived, another original first")
            else:
                truth.append("original not indexed")
            predicted.append(calibration.grade(task, float(score), values, background).verdict)
    return {"task": task, "counts": confusion(truth, predicted)}
