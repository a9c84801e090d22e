"""What a calibration reports beside its thresholds (:mod:`artsim.index.calibrate`): the
look-alike originals, and how the calibration queries are graded.

A drawn original whose best match in another group reaches the image "derived" threshold is a
*look-alike*: the same picture held under two names, whose derivatives are rightly called derived
from the other (:func:`look_alikes`). :func:`grade_confusion` grades every calibration query as
the service would and counts the grades by what the query truly is.
"""

from __future__ import annotations

from artsim.errors import ImageError
from artsim.index.calibration_queries import Gallery, Queries, score_with, top1
from artsim.verdicts.grades import OpenSetCalibration, TaskCalibration, confusion

LOOK_ALIKES_LISTED = 20


def look_alikes(
    gallery: Gallery, embedder, drawn, image: TaskCalibration, rate: float, max_pixels: int
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
    _, away, backgrounds = top1(
        gallery.store,
        "image",
        vectors,
        [i.group for i in items],
        gallery.group_of,
        gallery.group_sizes,
        rank,
    )
    pairs = []
    for item, (hit, score), (_, background) in zip(items, away, backgrounds, strict=True):
        shift = image.shift(background)
        if hit is not None and shift is not None and score - shift >= threshold:
            pairs.append({"original": item.id, "look_alike": hit, "score": round(float(score), 6)})
    pairs.sort(key=lambda pair: -pair["score"])
    return {"checked": len(items), "found": len(pairs), "pairs": pairs[:LOOK_ALIKES_LISTED]}


def grade_confusion(
    calibration: OpenSetCalibration,
    gallery: Gallery,
    queries: Queries,
    top: dict[str, tuple],
    copy_part=None,
) -> dict:
    """Grades of the calibration queries as the service would give them (its task, the scores of
    its top-1), by what the query truly is: each derivative once as a match (whole index) and once
    as a distractor (its group left out). ``top``: per task, :attr:`artsim.index.calibration_fit.TaskFit.top`."""
    store, group_of = gallery.store, gallery.group_of
    items, image_vectors, text_vectors = queries.items, queries.image, queries.text
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
            image = score_with(store, "image", image_vectors[row], item_id)
            if image is not None:
                values["image"] = image
            if copy_part is not None:
                partial, weight = copy_part(image_vectors[row])
                copy = score_with(store, "image", partial, item_id)
                if copy is not None:
                    values["copy"] = copy / weight
            if items[row].text.strip():
                text = score_with(store, "text", text_vectors[row], item_id)
                if text is not None:
                    values["text"] = text
            if is_match:
                same = group_of.get(item_id) == items[row].group
                truth.append("derived" if same else "derived, another original first")
            else:
                truth.append("original not indexed")
            predicted.append(calibration.grade(task, float(score), values, background).verdict)
    return {"task": task, "counts": confusion(truth, predicted)}
