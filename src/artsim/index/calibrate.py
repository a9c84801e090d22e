"""Calibrate verdicts on the indexed collection itself: ``artsim calibrate --index DIR``.

Thresholds measured on the training data's validation split do not transfer to another
collection (another style, another number of originals). This fits them where they are used:

1. Whole groups of the index are drawn (``sample`` of them, seeded): half are *matches* (they
   stay in the gallery), half are *held out* (left out of the gallery while calibrating).
2. Each drawn original gets one derivative made with the evaluation-only transform family
   (:mod:`artsim.data.heldout`, never used in training), with a prompt; each match also gets a
   near-duplicate (resized, slightly cropped, re-encoded as JPEG) for the ``copy`` grade.
3. Every derivative is searched as the service searches (image, prompt, image + prompt) against
   the gallery without the held-out groups. The top-1 scores of held-out queries (whose original
   is not in the gallery) against those of match queries give the thresholds
   (:mod:`artsim.eval.verdicts`), the recall measured at each, and the probability table.

The result is written into ``index.json`` under ``calibration``: how, on what, the thresholds, the
recall and false-verdict rate at each, and the confusion counts of the grades on these queries.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from artsim.data.heldout import derive_heldout_manifest
from artsim.data.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.data.items import Item
from artsim.data.manifest import Manifest, load_manifest
from artsim.errors import ImageError, UserError
from artsim.eval.openset import DEFAULT_RATE, OPEN_SET_RATES, binomial_interval
from artsim.eval.verdicts import (
    RELATED_RATE,
    OpenSetCalibration,
    confusion,
    copy_threshold,
    fit_task,
)
from artsim.index.catalog import ArtIndex, IndexInfo
from artsim.model.embedder import Embedder

# Groups drawn by default: 150 distractor queries, so the 1% threshold lets at most one of them
# through (with 40, as at 80 groups, it is the highest distractor score and 3 of 150 fresh
# distractors reached it on the demo: BENCHMARKS.md, Verdicts). Measured: 7 s for 80 groups of
# the demo, 86 s for 290 groups of art4apps (2 shared cores, other jobs running).
DEFAULT_SAMPLE = 300
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


def _draw_groups(originals: Sequence[Item], sample: int, seed: int) -> tuple[set[str], set[str]]:
    groups = sorted({item.group for item in originals})
    if len(groups) < 4:
        raise UserError(
            f"calibration needs at least 4 groups of originals in the index, it has {len(groups)}"
        )
    count = min(sample, len(groups) // 2 * 2)
    order = np.random.default_rng([seed, 11]).permutation(len(groups))[:count]
    drawn = [groups[i] for i in order.tolist()]
    return set(drawn[: count // 2]), set(drawn[count // 2 :])


def _top1(store, modality, vectors, excluded: set[str], n_excluded: int):
    """Best id and score per query among the originals not excluded."""
    hits = store.search(modality, vectors, n_excluded + 1)
    out = []
    for hit in hits:
        best = next(
            ((i, s) for i, s in zip(hit.ids, hit.scores, strict=True) if i not in excluded),
            (None, float("nan")),
        )
        out.append(best)
    return out


def _score_with(store, modality, vector, item_id: str) -> float | None:
    found = store.search(modality, vector[None], 1, [item_id])[0]
    return float(found.scores[0]) if found.ids else None


def calibrate_index(
    index: ArtIndex,
    embedder: Embedder,
    *,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    rate: float = DEFAULT_RATE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> OpenSetCalibration:
    """Fit open-set thresholds on the index's own originals (see the module docstring) and
    record them in its ``index.json``; returns the calibration."""
    started = time.perf_counter()
    index.check_model(embedder)
    originals = _originals(index)
    matches, held_out = _draw_groups(originals, sample, seed)
    drawn = [item for item in originals if item.group in matches | held_out]
    excluded = {item.id for item in originals if item.group in held_out}
    store = index.store
    with tempfile.TemporaryDirectory(prefix="artsim-calibrate-") as folder:
        manifest = Manifest(path=Path(folder) / "originals.csv", items=drawn)
        derived_path = derive_heldout_manifest(
            manifest, Path(folder) / "derived", per_original=1, seed=seed
        )
        queries = load_manifest(derived_path, check_images=False).generated()
        image_vectors = embedder.embed_images([q.image for q in queries], max_pixels=max_pixels)
    texts = [q.text for q in queries]
    has_text = np.array([bool(t.strip()) for t in texts])
    text_vectors = embedder.embed_texts([t or " " for t in texts])
    fused = embedder.fuse(image_vectors, text_vectors, has_text)
    is_match = np.array([q.group in matches for q in queries])
    query_groups = [q.group for q in queries]
    group_of = {item.id: item.group for item in originals}

    tasks, figures, top = {}, {}, {}
    for task, modality, vectors, keep in (
        ("image", "image", image_vectors, np.ones(len(queries), bool)),
        ("text", "text", text_vectors, has_text),
        ("fused", "fused", fused, has_text),
    ):
        rows = np.nonzero(keep)[0]
        best = _top1(store, modality, vectors[rows], excluded, len(excluded)) if len(rows) else []
        scores = np.array([score for _, score in best], dtype=np.float64)
        correct = np.array(
            [group_of.get(i) == query_groups[row] for (i, _), row in zip(best, rows, strict=True)],
            dtype=bool,
        )
        found = ~np.isnan(scores)
        match_rows = is_match[rows] & found
        distractor_rows = ~is_match[rows] & found
        if match_rows.sum() < 2 or distractor_rows.sum() < 2:
            continue  # e.g. no caption anywhere: this task stays uncalibrated
        tasks[task] = fit_task(scores[match_rows], correct[match_rows], scores[distractor_rows])
        top[task] = (rows, best, scores)
        figures[task] = _interval_figures(tasks[task].thresholds, int(distractor_rows.sum()))

    copies = _near_duplicate_scores(index, embedder, originals, matches, seed, max_pixels)
    floor = tasks["image"].threshold(min(OPEN_SET_RATES)) if "image" in tasks else None
    calibration = OpenSetCalibration(
        model_id=index.model_id,
        rate=rate,
        tasks=tasks,
        copy=copy_threshold(copies, floor),
        about={},
    )
    confusion_counts = _confusion(
        calibration, store, queries, is_match, image_vectors, text_vectors, top, group_of
    )
    about = {
        "how": (
            "open-set on this collection: one derivative (evaluation-only transform family) of "
            "each original of the drawn groups; half the groups stay indexed (matches), half are "
            "left out of the gallery while calibrating (distractors); thresholds on the top-1 "
            "score so that at most the given share of distractor queries reach them"
        ),
        "on": {
            "originals_in_index": len(originals),
            "groups_drawn": len(matches) + len(held_out),
            "match_queries": int(is_match.sum()),
            "distractor_queries": int((~is_match).sum()),
            "near_duplicates": len(copies),
            "sample": sample,
            "seed": seed,
        },
        "rates": [*OPEN_SET_RATES, RELATED_RATE],
        "measured": figures,
        "confusion": confusion_counts,
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


def _interval_figures(thresholds: dict, n_distractors: int) -> dict:
    """Recall and false-verdict share per rate, with the 95% interval of the latter."""
    out = {}
    for rate, values in thresholds.items():
        false = round(values["false_rate"] * n_distractors)
        low, high = binomial_interval(false, n_distractors)
        out[rate] = {
            "threshold": values["threshold"],
            "recall": values["recall"],
            "false_rate": values["false_rate"],
            "false_rate_interval": [low, high],
        }
    return out


def _near_duplicate_scores(index, embedder, originals, matches, seed, max_pixels) -> list[float]:
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
    scores = [_score_with(index.store, "image", v, i) for v, i in zip(vectors, ids, strict=True)]
    return [s for s in scores if s is not None]


def _confusion(calibration, store, queries, is_match, image_vectors, text_vectors, top, group_of):
    """Grades of the calibration queries as the service would give them (its task, the scores of
    its top-1), by what the query truly is."""
    truth, predicted = [], []
    task = "fused" if "fused" in top else "image"
    if task not in top:
        return {}
    rows, best, _ = top[task]
    for row, (item_id, score) in zip(rows.tolist(), best, strict=True):
        if item_id is None:
            continue
        values = {task: float(score)}
        image = _score_with(store, "image", image_vectors[row], item_id)
        if image is not None:
            values["image"] = image
        if queries[row].text.strip():
            text = _score_with(store, "text", text_vectors[row], item_id)
            if text is not None:
                values["text"] = text
        if is_match[row]:
            same = group_of.get(item_id) == queries[row].group
            truth.append("derived" if same else "derived, another original first")
        else:
            truth.append("original not indexed")
        predicted.append(calibration.grade(task, float(score), values).verdict)
    return {"task": task, "counts": confusion(truth, predicted)}
