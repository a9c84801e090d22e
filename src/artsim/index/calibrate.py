"""Calibrate verdicts on the indexed collection itself: ``artsim calibrate --index DIR``.

Thresholds measured on the training data's validation split do not transfer to another
collection (another style, another number of originals). This fits them where they are used:

1. Whole groups of the index are drawn (``sample`` of them, seeded).
2. Each drawn original gets one derivative made with the evaluation-only transform family
   (:mod:`artsim.data.families.heldout.derive`, never used in training), with a prompt; two or three
   when the collection has fewer originals than ``sample`` (:func:`derivatives_per_original`: a
   291-original index gets 582 queries, not 291); each also gets a near-duplicate (resized, slightly
   cropped, re-encoded as JPEG) for the ``copy`` grade.
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

The work is split by concept: the queries and their two searches
(:mod:`artsim.index.calibration_queries`), each task's fit (:mod:`artsim.index.calibration_fit`),
the copy grade (:mod:`artsim.index.calibration_copy`), the look-alikes and the grades' confusion
counts (:mod:`artsim.index.calibration_review`); this module draws the sample and records the
result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from artsim.data.manifest.items import Item
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS
from artsim.defaults import DEFAULT_SAMPLE  # defined beside what `artsim ... --help` shows
from artsim.errors import UserError
from artsim.index.calibration_copy import copy_grade, grade_scores, near_duplicate_scores
from artsim.index.calibration_fit import fit_tasks
from artsim.index.calibration_queries import Gallery, embed_queries
from artsim.index.calibration_review import grade_confusion, look_alikes
from artsim.index.catalog import ArtIndex, IndexInfo
from artsim.index.crops import default_query_crops
from artsim.index.query import copy_query
from artsim.model.embedder import Embedder
from artsim.verdicts.grades import RELATED_RATE, OpenSetCalibration
from artsim.verdicts.openset import DEFAULT_RATE, OPEN_SET_RATES

# at most this many derivatives of one original, when the collection is smaller than the sample
MAX_DERIVATIVES_PER_ORIGINAL = 3


def _originals(index: ArtIndex) -> list[Item]:
    """The index's originals whose picture files are still there, as items, sorted by id."""
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
    queries = embed_queries(embedder, drawn, per_original, seed, max_pixels, crops)
    gallery = Gallery.of(index.store, originals)
    fits = fit_tasks(gallery, queries, rate, confidence)
    tasks = {task: fit.fitted for task, fit in fits.items()}

    copy_part = copy_query(embedder)
    copies = near_duplicate_scores(index, embedder, originals, drawn_groups, seed, max_pixels)
    copy = copy_grade(gallery, queries, copies, copy_part, fits.get("image"))
    alike = (
        look_alikes(gallery, embedder, drawn, tasks["image"], rate, max_pixels)
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
    top = {task: fit.top for task, fit in fits.items()}
    confusion_counts = grade_confusion(calibration, gallery, queries, top, copy_part)
    about = {
        "how": _how(confidence),
        "on": {
            "originals_in_index": len(originals),
            "groups_drawn": len(drawn_groups),
            "derivatives_per_original": per_original,
            "match_queries": len(queries.items),
            "distractor_queries": len(queries.items),
            "near_duplicates": sum(score is not None for score in grade_scores(copies, copy_part)),
            "sample": sample,
            "seed": seed,
            "confidence": confidence,
        },
        "rates": [*OPEN_SET_RATES, RELATED_RATE],
        "measured": {task: fit.figures for task, fit in fits.items()},
        "confusion": confusion_counts,
        "look_alikes": alike,
        # per task: recall at the rate with plain and with background-normalised scores
        "background": {task: fit.choice for task, fit in fits.items() if fit.choice},
        # per task: are the stated probabilities right? cross-fitted on the calibration queries
        "reliability": {task: fit.reliability for task, fit in fits.items()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    calibration = replace(calibration, about=about)
    _record(index, calibration)
    return calibration


def _record(index: ArtIndex, calibration: OpenSetCalibration) -> None:
    """Write ``calibration`` into the index's ``index.json``: under the write lock and over the
    file as it is now, which keeps what other writers put there meanwhile."""
    with index.write_lock():
        info = replace(IndexInfo.read(index.path), calibration=calibration.to_json())
        info.write(index.path)
    index.info = info


def _how(confidence: float | None) -> str:
    """The calibration's method in one line, as ``index.json`` records it."""
    return _HOW + (
        f", with {confidence:.0%} confidence (exact one-sided bound)"
        if confidence
        else " (on average)"
    )


_HOW = (
    "open-set on this collection: one derivative (evaluation-only transform family) of "
    "each original of the drawn groups, searched against the whole index (a match) and "
    "against the index without its own group (a distractor: leave one group out); "
    "thresholds on the top-1 score so that at most the given share of distractor "
    "queries reach them"
)
