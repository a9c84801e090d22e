"""``artsim evaluate``: how well a trained run finds the original of each generated work.

Works on any manifest, including data the run never saw. Every ``generated`` item is a query,
the ``original`` items are the gallery, and the right answer is the query's group's original.
Five tasks (image, text, i2t, t2i, fused), the seed's figures on the same items, a verification
view (is this pair a derivation?) with thresholds at fixed false-positive rates, and two
baselines (perceptual hash, frozen tower features) on the same queries and gallery.

Outputs (unless ``write=False``): ``RUN_DIR/eval/<name>.json`` (the result),
``RUN_DIR/eval/<name>.top5.json`` (per-query top-5 for the report's gallery),
``RUN_DIR/eval/<name>.curves.json`` (score histograms and ROC points for the plots) and, only for
the run's own validation split, ``RUN_DIR/calibration.json`` (thresholds the search service uses).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from artsim.commands import run_app
from artsim.data.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.data.items import Item
from artsim.data.manifest import Manifest, load_manifest
from artsim.errors import DataError, ImageError, UserError
from artsim.eval.generalisation import (
    baseline_comparison,
    frozen_fused_similarity,
)
from artsim.eval.metrics import (
    FPR_TARGETS,
    RetrievalEvaluator,
    VerificationEvaluator,
    nest,
    roc_curve,
    score_histogram,
    verification_pairs,
)
from artsim.eval.openset import OPEN_SET_RATES, cross_fit
from artsim.eval.verdicts import RELATED_RATE, OpenSetCalibration, confusion, fit_task
from artsim.losses import seed_figures
from artsim.model.embedder import Embedder, fuse_embeddings

TASKS = ("image", "text", "i2t", "t2i", "fused")
RETRIEVAL_METRICS = (
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr",
    "map",
    "triplet_acc",
    "triplet_acc_hard",
)
SPLITS = ("val", "train", "calib", "all")
TOP_K = 5
# ROC curves are thinned to this many points in the curves file: enough for a plot.
ROC_POINTS = 200

SKIP_NO_ORIGINAL = "group has no original among the evaluated items"
SKIP_QUERY_TEXT = "query has no text (left out of text, t2i)"
SKIP_ORIGINAL_TEXT = "original has no caption (left out of text, i2t)"
FROZEN_REASON = (
    "the image and text towers have different feature spaces, so raw cross-modal similarities "
    "mean nothing; the frozen fused baseline averages the frozen image and text cosines"
)


@dataclass(frozen=True)
class TaskSpec:
    """A retrieval task: which space the queries and the gallery are embedded in."""

    query_space: str  # "image", "text" or "fused"
    gallery_space: str
    query_needs_text: bool
    gallery_needs_text: bool


TASK_SPECS = {
    "image": TaskSpec("image", "image", False, False),
    "text": TaskSpec("text", "text", True, True),
    "i2t": TaskSpec("image", "text", False, True),
    "t2i": TaskSpec("text", "image", True, False),
    "fused": TaskSpec("fused", "fused", False, False),
}


# --- reading a run folder ------------------------------------------------------------------------


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """``RUN_DIR/config.yaml`` as a dict ({} when absent)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    return loaded if isinstance(loaded, dict) else {}


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """``RUN_DIR/summary.json`` as a dict ({} when absent)."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None


def training_manifest(run_dir: str | Path) -> str | None:
    """The manifest the run was trained on, as recorded in summary.json or config.yaml."""
    return read_summary(run_dir).get("data") or read_run_config(run_dir).get("data") or None


def _read_split_ids(path: Path) -> dict[str, str]:
    # Lenient on purpose (unlike data.split.read_split): an evaluation manifest may hold only a
    # part of the training manifest, and the ids that match are what counts.
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise DataError(f"{path}: cannot read the split file ({error})") from None
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or not {"id", "split"} <= {f.strip() for f in reader.fieldnames}:
        raise DataError(f"{path}: a split file needs the columns id,split")
    reader.fieldnames = [name.strip() for name in reader.fieldnames]
    return {
        (row.get("id") or "").strip(): (row.get("split") or "").strip()
        for row in reader
        if row.get("id")
    }


def _same_file(a: str | Path | None, b: str | Path | None) -> bool:
    if not a or not b:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _default_name(split: str | None, manifest_path: Path, trained_on: str | None) -> str:
    if split in ("val", "train", "calib"):
        return split
    if trained_on is None or _same_file(manifest_path, trained_on):
        return "all"
    stem = f"{manifest_path.parent.name}-{manifest_path.stem}".strip("-")
    return "external-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


# --- embedding -----------------------------------------------------------------------------------


@dataclass
class Embedded:
    """Every evaluated item embedded once: raw tower features and shared-space vectors."""

    items: list[Item]
    image_features: np.ndarray
    text_features: np.ndarray
    image: np.ndarray
    text: np.ndarray
    fused: np.ndarray
    has_text: np.ndarray

    def space(self, name: str, raw: bool = False) -> np.ndarray:
        if raw:
            return {"image": self.image_features, "text": self.text_features}[name]
        return {"image": self.image, "text": self.text, "fused": self.fused}[name]


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=True,
    )


def embed_items(
    embedder: Embedder, items: Sequence[Item], max_pixels: int, progress: Progress
) -> Embedded:
    """Embed images and texts of ``items`` (cached tower features, then the run's heads)."""
    paths = [str(item.image) for item in items]
    texts = [item.text if item.has_text else "" for item in items]
    images_task = progress.add_task("embedding images", total=len(paths))
    image_features = embedder.image_features(
        paths, max_pixels, progress=lambda n: progress.advance(images_task, n)
    )
    unique_texts = len({text for text in texts if text})
    texts_task = progress.add_task("embedding texts", total=unique_texts)
    text_features = embedder.text_features(
        texts, progress=lambda n: progress.advance(texts_task, n)
    )
    progress.update(texts_task, completed=unique_texts)  # cached texts never report progress
    has_text = np.array([bool(text) for text in texts], dtype=bool)
    image = embedder.project_image_features(image_features)
    text = embedder.project_text_features(text_features, texts)
    return Embedded(
        items=list(items),
        image_features=image_features,
        text_features=text_features,
        image=image,
        text=text,
        fused=fuse_embeddings(image, text, has_text),
        has_text=has_text,
    )


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def phash_bits(paths: Sequence[str | Path], max_pixels: int, progress: Progress) -> np.ndarray:
    """64-bit perceptual hashes (``imagehash.phash``) as a 0/1 float matrix, one row per image."""
    import imagehash  # only the baseline needs it

    task = progress.add_task("perceptual hashes", total=len(paths))
    rows = []
    for path in paths:
        rows.append(imagehash.phash(load_rgb(path, max_pixels=max_pixels)).hash.flatten())
        progress.advance(task)
    return np.asarray(rows, dtype=np.float32).reshape(len(paths), -1)


def hamming_similarity(query_bits: np.ndarray, gallery_bits: np.ndarray) -> np.ndarray:
    """``1 - Hamming distance / bits`` for every (query, gallery) pair of 0/1 hash rows."""
    bits = query_bits.shape[1]
    distance = query_bits @ (1.0 - gallery_bits).T + (1.0 - query_bits) @ gallery_bits.T
    return 1.0 - distance / bits


# --- one task ------------------------------------------------------------------------------------


@dataclass
class TaskData:
    """Queries and gallery of one task, as row numbers into :class:`Embedded`."""

    queries: np.ndarray
    gallery: np.ndarray
    correct: np.ndarray  # per query, the gallery position of its (first) original
    relevant: np.ndarray  # queries x gallery, True for the originals of the query's group
    skipped: dict[str, int]


def build_task(spec: TaskSpec, embedded: Embedded, query_rows: Sequence[int]) -> TaskData:
    """The queries and gallery of a task: items without the text a task needs drop out."""
    items, has_text = embedded.items, embedded.has_text
    gallery = [
        row
        for row, item in enumerate(items)
        if item.is_original and (has_text[row] or not spec.gallery_needs_text)
    ]
    position_by_group: dict[str, list[int]] = {}
    for position, row in enumerate(gallery):
        position_by_group.setdefault(items[row].group, []).append(position)
    skipped: dict[str, int] = {}
    kept = []
    for row in query_rows:
        if spec.query_needs_text and not has_text[row]:
            skipped[SKIP_QUERY_TEXT] = skipped.get(SKIP_QUERY_TEXT, 0) + 1
        elif items[row].group not in position_by_group:
            skipped[SKIP_ORIGINAL_TEXT] = skipped.get(SKIP_ORIGINAL_TEXT, 0) + 1
        else:
            kept.append(row)
    relevant = np.zeros((len(kept), len(gallery)), dtype=bool)
    correct = np.zeros(len(kept), dtype=np.int64)
    for index, row in enumerate(kept):
        positions = position_by_group[items[row].group]
        relevant[index, positions] = True
        correct[index] = positions[0]
    return TaskData(
        np.asarray(kept, dtype=np.int64), np.asarray(gallery, np.int64), correct, relevant, skipped
    )


def task_similarity(
    spec: TaskSpec, embedded: Embedded, data: TaskData, raw: bool = False
) -> np.ndarray:
    """Cosine similarity of the task's queries against its gallery."""
    queries = embedded.space(spec.query_space, raw)[data.queries]
    gallery = embedded.space(spec.gallery_space, raw)[data.gallery]
    if raw:  # tower features are not always unit length
        queries, gallery = _normalise(queries), _normalise(gallery)
    return np.asarray(queries, dtype=np.float64) @ np.asarray(gallery, dtype=np.float64).T


def _raw_text_similarity(embedded: Embedded, data: TaskData) -> np.ndarray:
    """Frozen text cosines of the task's queries and gallery (zero where a side has no text)."""
    features = _normalise(embedded.text_features) * embedded.has_text[:, None]
    queries = np.asarray(features[data.queries], dtype=np.float64)
    return queries @ np.asarray(features[data.gallery], dtype=np.float64).T


def retrieval_figures(
    name: str, similarity: np.ndarray, data: TaskData, seed: int, rows: np.ndarray | None = None
) -> dict[str, Any]:
    """The retrieval metrics of a task (optionally of a subset of its queries), unprefixed."""
    if rows is not None:
        similarity, correct, relevant = similarity[rows], data.correct[rows], data.relevant[rows]
    else:
        correct, relevant = data.correct, data.relevant
    if len(correct) == 0:
        return {**dict.fromkeys(RETRIEVAL_METRICS), "n_queries": 0}
    evaluator = RetrievalEvaluator(name, seed=seed)
    return nest(evaluator(similarity, correct, relevant), name)


def verification_figures(name: str, similarity: np.ndarray, data: TaskData) -> dict[str, Any]:
    """ROC-AUC and thresholds at the target false-positive rates, nested and unprefixed."""
    if len(data.correct) == 0:
        empty = {"threshold": None, "precision": None, "recall": None, "fpr": None}
        return {"roc_auc": None, **{f"at_fpr_{t:g}": dict(empty) for t in FPR_TARGETS}}
    return nest(VerificationEvaluator(name)(similarity, data.correct, data.relevant), name)


def _top_k(
    similarity: np.ndarray, data: TaskData, embedded: Embedded, k: int = TOP_K
) -> list[dict[str, Any]]:
    items = embedded.items
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    out = []
    for index, row in enumerate(data.queries):
        positive = similarity[index, data.correct[index]]
        rank = 1 + int((similarity[index] > positive).sum())
        out.append(
            {
                "query": items[row].id,
                "correct": [items[data.gallery[p]].id for p in np.nonzero(data.relevant[index])[0]],
                "rank": rank,
                "top": [
                    {
                        "id": items[data.gallery[p]].id,
                        "score": float(similarity[index, p]),
                        "hit": bool(data.relevant[index, p]),
                    }
                    for p in order[index]
                ],
            }
        )
    return out


def _thin(curve: dict[str, list[float]], points: int = ROC_POINTS) -> dict[str, list[float]]:
    n = len(curve["fpr"])
    if n <= points:
        keep = range(n)
    else:
        keep = sorted(set(np.linspace(0, n - 1, points).round().astype(int).tolist()))
    return {
        key: [values[i] if math.isfinite(values[i]) else None for i in keep]
        for key, values in curve.items()
    }


def clean_json(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, so the result is strict JSON."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(clean_json(data), indent=2, ensure_ascii=False) + "\n", "utf-8")
    temporary.replace(path)


def _open_set_summary(similarity: np.ndarray, data: TaskData, gallery_groups) -> dict[str, Any]:
    """µAP, recall at precision and the open-set thresholds of a baseline, cross-fitted."""
    fitted = cross_fit(similarity, data.relevant, gallery_groups)
    task = fit_task(fitted.match_top1, fitted.match_correct, fitted.distractor_top1)
    return {"thresholds": task.thresholds, **fitted.isc}


def _calibration_confusion(calibration: OpenSetCalibration, crossfits: dict) -> dict:
    """Verdicts on the calibration queries (their task score only), by kind of query."""
    out = {}
    for task, fitted in crossfits.items():
        truth, predicted = [], []
        for score, correct in zip(fitted.match_top1, fitted.match_correct, strict=True):
            truth.append("derived" if correct else "derived, wrong original first")
            predicted.append(calibration.grade(task, float(score), {task: float(score)}).verdict)
        for score in fitted.distractor_top1:
            truth.append("original not indexed")
            predicted.append(calibration.grade(task, float(score), {task: float(score)}).verdict)
        out[task] = confusion(truth, predicted)
    return out


# --- the whole evaluation ------------------------------------------------------------------------


def _select_items(
    manifest: Manifest,
    run_dir: Path,
    split: str | None,
    manifest_path: Path,
    trained_on: str | None,
) -> list[Item]:
    if split in (None, "all"):
        return list(manifest.items)
    split_path = run_dir / "split.csv"
    if not split_path.is_file():
        raise UserError(
            f"{run_dir}: no split.csv, so --split {split} cannot be used; try --split all"
        )
    assignment = _read_split_ids(split_path)
    matched = [item for item in manifest.items if item.id in assignment]
    if not matched:
        raise UserError(
            f"none of the ids in {manifest_path} appear in {split_path}: --split {split} works "
            f"only with the manifest the run was trained on ({trained_on or 'unknown'}); "
            "use --split all to evaluate other data"
        )
    selected = [item for item in matched if assignment[item.id] == split]
    if not selected:
        raise UserError(f"{split_path}: no item of {manifest_path} is on the {split} side")
    return selected


def evaluate_run(
    run_dir: str | Path,
    manifest_path: str | Path | None = None,
    *,
    split: str | None = None,
    seed: int = 0,
    name: str | None = None,
    cache_dir: str | Path | None = None,
    write: bool = True,
    progress: bool = True,
    device: str | None = None,
) -> dict[str, Any]:
    """Evaluate a run folder on a manifest; returns the result dict (see the module docstring).

    ``split`` is ``"val"`` or ``"train"`` (the run's ``split.csv`` ids; the manifest must be the
    training manifest) or ``None``/``"all"`` (every item). ``manifest_path`` defaults to the
    run's training manifest.

    >>> result = evaluate_run("runs/demo", "data/demo/manifest.csv", split="val")  # doctest: +SKIP
    >>> result["tasks"]["fused"]["recall@1"]  # doctest: +SKIP
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"run folder not found: {run}")
    if split not in (None, *SPLITS):
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    config = read_run_config(run)
    trained_on = training_manifest(run)
    if manifest_path is None:
        if not trained_on:
            raise UserError(f"{run}: the run does not name its training manifest; give --data")
        manifest_path = trained_on
    manifest_path = Path(manifest_path)
    max_pixels = int(config.get("max_pixels") or DEFAULT_MAX_PIXELS)
    embedder = Embedder.from_run(run, cache_dir=cache_dir or config.get("cache_dir"), device=device)
    manifest = load_manifest(manifest_path, max_pixels=max_pixels)
    if not manifest.items:
        raise DataError(f"{manifest_path}: no usable rows")
    items = _select_items(manifest, run, split, manifest_path, trained_on)
    split_name = split or "all"
    name = name or _default_name(split, manifest_path, trained_on)

    groups_with_original = {item.group for item in items if item.is_original}
    query_rows = [
        row
        for row, item in enumerate(items)
        if not item.is_original and item.group in groups_with_original
    ]
    n_generated = sum(not item.is_original for item in items)
    skipped: dict[str, int] = {}
    if n_generated - len(query_rows):
        skipped[SKIP_NO_ORIGINAL] = n_generated - len(query_rows)
    if not query_rows:
        raise UserError(
            f"{manifest_path}: nothing to evaluate: no generated item ({split_name} split) has "
            "its group's original among the evaluated items"
        )

    try:
        with _progress(progress) as bar:
            embedded = embed_items(embedder, items, max_pixels, bar)
            bits = phash_bits([item.image for item in items], max_pixels, bar)
    except ImageError as error:  # a file changed after the manifest was checked
        raise DataError(str(error)) from None

    result: dict[str, Any] = {
        "name": name,
        "run": str(run),
        "model_id": embedder.model_id,
        "manifest": str(manifest_path),
        "data_fingerprint": manifest.fingerprint(),
        "split": split_name,
        "seed": seed,
        "tasks": {},
        "by_lang": {},
        "verification": {},
        "open_set": {},
        "baselines": {"phash": {}, "frozen": {}},
        "notes": [],
        "pairs": {
            "tasks": f"each generated item of the {split_name} part against every original "
            "evaluated",
            "verification": f"(query, its original) against (query, other original) pairs of "
            f"the {split_name} part",
            "open_set": f"cross-fitted on the {split_name} part: originals halved by group; "
            "against each half, queries whose original is there are matches, all others "
            "distractors (their original is not in that half)",
        },
    }
    top: dict[str, list] = {}
    curves: dict[str, dict] = {}
    thresholds: dict[str, dict[str, float | None]] = {}
    open_tasks: dict = {}
    crossfits: dict = {}
    langs = sorted({items[row].lang or "unknown" for row in query_rows})
    for task, spec in TASK_SPECS.items():
        data = build_task(spec, embedded, query_rows)
        for reason, count in data.skipped.items():
            key = f"{task}: {reason}"
            skipped[key] = skipped.get(key, 0) + count
        similarity = task_similarity(spec, embedded, data)
        result["tasks"][task] = retrieval_figures(task, similarity, data, seed)
        verification = verification_figures(task, similarity, data)
        result["verification"][task] = verification
        thresholds[task] = {
            f"fpr_{t:g}": verification[f"at_fpr_{t:g}"]["threshold"] for t in FPR_TARGETS
        }
        query_langs = np.array([items[row].lang or "unknown" for row in data.queries])
        for lang in langs:
            rows = np.nonzero(query_langs == lang)[0]
            result["by_lang"].setdefault(lang, {})[task] = retrieval_figures(
                task, similarity, data, seed, rows
            )
        gallery_groups = [items[row].group for row in data.gallery]
        fitted = cross_fit(similarity, data.relevant, gallery_groups)
        open_tasks[task] = fit_task(fitted.match_top1, fitted.match_correct, fitted.distractor_top1)
        result["open_set"][task] = {
            "thresholds": open_tasks[task].thresholds,
            "n_matches": open_tasks[task].n_matches,
            "n_distractors": open_tasks[task].n_distractors,
            **fitted.isc,
        }
        crossfits[task] = fitted
        top[task] = _top_k(similarity, data, embedded)
        positive, negative = verification_pairs(similarity, data.correct, data.relevant)
        curves[task] = {
            "positive": score_histogram(positive),
            "negative": score_histogram(negative),
            "roc": _thin(roc_curve(positive, negative)),
            "roc_auc": verification["roc_auc"],
        }
        if task == "image":
            hashed = hamming_similarity(bits[data.queries], bits[data.gallery])
            result["baselines"]["phash"]["image"] = {
                **retrieval_figures(task, hashed, data, seed),
                "open_set": _open_set_summary(hashed, data, gallery_groups),
            }
        if task in ("image", "text"):
            raw = task_similarity(spec, embedded, data, raw=True)
            result["baselines"]["frozen"][task] = {
                **retrieval_figures(task, raw, data, seed),
                "open_set": _open_set_summary(raw, data, gallery_groups),
            }
        elif task == "fused":
            raw = frozen_fused_similarity(
                task_similarity(TASK_SPECS["image"], embedded, data, raw=True),
                _raw_text_similarity(embedded, data),
                embedded.has_text[data.queries],
                embedded.has_text[data.gallery],
            )
            result["baselines"]["frozen"][task] = {
                **retrieval_figures(task, raw, data, seed),
                "open_set": _open_set_summary(raw, data, gallery_groups),
            }
        else:
            result["baselines"]["frozen"][task] = None
    result["baselines"]["frozen"]["reason"] = FROZEN_REASON
    comparison = baseline_comparison(result)
    result["vs_baselines"] = comparison["tasks"]
    result["below_frozen"] = comparison["below_frozen"]

    labels = {group: index for index, group in enumerate(sorted({i.group for i in items}))}
    figures = seed_figures(
        torch.from_numpy(embedded.image),
        torch.from_numpy(embedded.text),
        torch.tensor([labels[item.group] for item in items], dtype=torch.long),
        torch.from_numpy(embedded.has_text),
        margin=float(config.get("margin", 0.2)),
        seed=seed,
    )
    result["seed_figures"] = {key: float(value) for key, value in figures.items()}
    result["counts"] = {
        "items": len(items),
        "queries": len(query_rows),
        "gallery": sum(item.is_original for item in items),
        "skipped": skipped,
        "problems": [problem.format(str(manifest_path)) for problem in manifest.problems],
    }
    # Ids like "g000-orig" recur across data sets: ids matching is not enough to call this the
    # run's own validation data, the content fingerprint must agree too (when the run recorded it).
    trained_fingerprint = read_summary(run).get("data_fingerprint")
    same_data = trained_fingerprint in (None, result["data_fingerprint"])
    has_calib = (
        "calib" in set(_read_split_ids(run / "split.csv").values())
        if (run / "split.csv").is_file()
        else False
    )
    # thresholds come from the calibration part, which chose nothing; a run without one (trained
    # before it existed, or with --calib-fraction 0) falls back to validation, and says so
    own_val = same_data and (split == "calib" or (split == "val" and not has_calib))
    open_set = OpenSetCalibration(
        model_id=embedder.model_id,
        tasks=open_tasks,
        about={
            "how": "open-set, cross-fitted (see pairs.open_set)",
            "on": f"the {split_name} part of {manifest_path}",
            "chose_nothing": split == "calib",
            "rates": [*OPEN_SET_RATES, RELATED_RATE],
        },
    )
    result["open_set_confusion"] = _calibration_confusion(open_set, crossfits)
    if own_val and split == "val":
        result["notes"].append(
            "the run has no calibration part (trained with --calib-fraction 0 or before it "
            "existed): thresholds are set on validation data, which also chose the checkpoint"
        )
    if split in ("val", "train", "calib") and not same_data:
        result["notes"].append(
            f"{manifest_path} is not the data the run was trained on (fingerprint "
            f"{result['data_fingerprint']}, trained on {trained_fingerprint}): items were matched "
            "to split.csv by id only, and no calibration was written"
        )
    result["calibration"] = str(run / "calibration.json") if own_val and write else None
    result = clean_json(result)

    if write:
        eval_dir = run / "eval"
        _write_json(eval_dir / f"{name}.json", result)
        index = {
            item.id: {
                "image": str(item.image),
                "text": item.text,
                "role": item.role,
                "group": item.group,
                "lang": item.lang,
                "title": item.title,
            }
            for item in items
        }
        _write_json(eval_dir / f"{name}.top5.json", {"items": index, "tasks": top})
        _write_json(eval_dir / f"{name}.curves.json", curves)
        if own_val:
            _write_json(
                run / "calibration.json",
                {
                    "model_id": embedder.model_id,
                    "source": f"{split} split of {manifest_path}",
                    "data_fingerprint": result["data_fingerprint"],
                    "thresholds": thresholds,
                    "default_fpr": 0.001,
                    "pairs": result["pairs"],
                    "open_set": open_set.to_json(),
                },
            )
    return result


# --- command line --------------------------------------------------------------------------------

console = Console(highlight=False, soft_wrap=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


def result_table(result: dict[str, Any]) -> Table:
    """A rich table of the tasks and baselines of an evaluation result."""
    table = Table(
        title=f"evaluation: {result['name']} ({result['counts']['queries']} queries, "
        f"{result['counts']['gallery']} originals)"
    )
    columns = ("recall@1", "recall@5", "mrr", "map", "triplet_acc", "triplet_acc_hard")
    # short headers: the table must fit an 80-column terminal
    headers = ("R@1", "R@5", "MRR", "mAP", "trip", "hard", "AUC", "n")
    table.caption = (
        "R@k recall@k, trip/hard triplet accuracy with a random/the hardest negative, "
        "AUC verification ROC-AUC"
    )
    table.add_column("task")
    for header in headers:
        table.add_column(header, justify="right")
    rows: list[tuple[str, dict | None, dict | None]] = [
        (task, result["tasks"][task], result["verification"][task]) for task in TASKS
    ]
    rows.append(("phash (image)", result["baselines"]["phash"].get("image"), None))
    for task in ("image", "text", "fused"):
        rows.append((f"frozen ({task})", result["baselines"]["frozen"].get(task), None))
    for label, figures, verification in rows:
        figures = figures or {}
        table.add_row(
            label,
            *[_fmt(figures.get(column)) for column in columns],
            _fmt((verification or {}).get("roc_auc")),
            _fmt(figures.get("n_queries")),
        )
    return table


def baseline_table(result: dict[str, Any]) -> Table:
    """Per task: trained vs frozen towers vs perceptual hash (recall@1), losses flagged."""
    table = Table(title="trained vs baselines (recall@1)")
    for header in ("task", "trained", "frozen", "phash", "trained-frozen", "flag"):
        table.add_column(header, justify="left" if header in ("task", "flag") else "right")
    for task, row in (result.get("vs_baselines") or {}).items():
        minus = row.get("minus_frozen")
        table.add_row(
            task,
            _fmt(row.get("trained")),
            _fmt(row.get("frozen")),
            _fmt(row.get("phash")),
            "–" if minus is None else f"{minus:+.3f}",
            "BELOW FROZEN" if row.get("below_frozen") else "",
        )
    return table


def evaluate_command(
    run: Annotated[Path, typer.Option("--run", help="run folder (model.safetensors + model.json)")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="manifest to evaluate on (default: the run's training data)"),
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="val or train (the run's split.csv ids) or all")
    ] = "all",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the result to this JSON file")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the random negatives")] = 0,
) -> int:
    """Retrieval, verification and baselines of a trained run on a manifest."""
    result = evaluate_run(run, data, split=split, seed=seed)
    console.print(result_table(result))
    console.print(baseline_table(result))
    if result.get("below_frozen"):
        console.print(
            f"[bold red]BELOW FROZEN:[/] the trained model is below the frozen towers on "
            f"{', '.join(result['below_frozen'])} (recall@1)",
            markup=True,
        )
    for reason, count in result["counts"]["skipped"].items():
        console.print(f"skipped {count}: {reason}")
    for note in result["notes"]:
        console.print(f"[yellow]note:[/] {note}", markup=True)
    if result["counts"]["problems"]:
        console.print(f"{len(result['counts']['problems'])} manifest problem(s), see the JSON")
    if json_out is not None:
        _write_json(json_out, result)
        console.print(f"wrote {json_out}")
    console.print(f"wrote {Path(run) / 'eval' / (result['name'] + '.json')}")
    if result.get("calibration"):
        console.print(f"wrote {result['calibration']}")
    return 0


app = typer.Typer(add_completion=False, help="Evaluate a trained run.")
app.command("evaluate")(evaluate_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``artsim evaluate ...`` in-process; returns the exit code."""
    return run_app(app, argv)
