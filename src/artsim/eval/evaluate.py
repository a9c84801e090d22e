"""Evaluating a trained run: how well it finds the original of each generated work.

Works on any manifest, including data the run never saw. Every ``generated`` item is a query,
the ``original`` items are the gallery, and the right answer is the query's group's original.
Five tasks (image, text, i2t, t2i, fused; :mod:`artsim.eval.tasks`), the seed's figures on the
same items, a verification view (is this pair a derivation?) with thresholds at fixed
false-positive rates, and two baselines (perceptual hash, frozen tower features) on the same
queries and gallery. Items are embedded once (:mod:`artsim.eval.embedding`).

Outputs (unless ``write=False``; written by :mod:`artsim.runfolder`): ``RUN_DIR/eval/<name>.json``
(the result), ``RUN_DIR/eval/<name>.top5.json`` (per-query top-5 for the report's gallery),
``RUN_DIR/eval/<name>.curves.json`` (score histograms and ROC points for the plots) and, only for
the run's own validation split, ``RUN_DIR/calibration.json`` (thresholds the search service uses).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artsim import runfolder
from artsim.data.images import DEFAULT_MAX_PIXELS
from artsim.data.items import Item
from artsim.data.manifest import Manifest, load_manifest
from artsim.errors import DataError, ImageError, UserError
from artsim.eval.embedding import embed_items, hamming_similarity, normalise_rows, phash_bits
from artsim.eval.generalisation import (
    baseline_comparison,
    frozen_fused_similarity,
    paired_comparison,
)
from artsim.eval.metrics import (
    FPR_TARGETS,
    hits_at_k,
    roc_curve,
    score_histogram,
    verification_pairs,
)
from artsim.eval.tasks import (
    TASK_SPECS,
    TASKS,
    TaskData,
    build_task,
    raw_text_similarity,
    retrieval_figures,
    task_similarity,
    thin_curve,
    top_k,
    verification_figures,
)
from artsim.losses import seed_document_figures
from artsim.model.embedder import Embedder
from artsim.progress import Reporter
from artsim.verdicts.grades import RELATED_RATE, OpenSetCalibration, confusion, fit_task
from artsim.verdicts.openset import OPEN_SET_RATES, cross_fit

__all__ = ["SPLITS", "TASKS", "evaluate_run"]

SPLITS = ("val", "train", "calib", "all")

SKIP_NO_ORIGINAL = "group has no original among the evaluated items"
FROZEN_REASON = (
    "the image and text towers have different feature spaces, so raw cross-modal similarities "
    "mean nothing; the frozen fused baseline averages the frozen image and text cosines"
)


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


def _select_items(
    manifest: Manifest,
    run_dir: Path,
    split: str | None,
    manifest_path: Path,
    trained_on: str | None,
) -> list[Item]:
    if split in (None, "all"):
        return list(manifest.items)
    split_path = run_dir / runfolder.SPLIT_FILE
    if not split_path.is_file():
        raise UserError(
            f"{run_dir}: no split.csv, so --split {split} cannot be used; try --split all"
        )
    assignment = runfolder.read_split_ids(split_path)
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


def _pattern_figures(
    task: str,
    similarity: np.ndarray,
    raw: np.ndarray,
    data: TaskData,
    items: Sequence[Item],
    seed: int,
) -> list[tuple[str, dict[str, Any]]]:
    """Trained and frozen recall@1 per derivation pattern (the ``pattern`` column that held-out
    manifests carry; chains count as ``combo``); empty when the queries carry no pattern."""
    names = [items[row].metadata.get("pattern", "").split(":")[0] for row in data.queries]
    out = []
    for pattern in sorted({name for name in names if name}):
        rows = np.nonzero(np.array(names) == pattern)[0]
        trained = retrieval_figures(task, similarity, data, seed, rows)
        frozen = retrieval_figures(task, raw, data, seed, rows)
        out.append(
            (
                pattern,
                {
                    "trained": trained["recall@1"],
                    "frozen": frozen["recall@1"],
                    "n_queries": len(rows),
                },
            )
        )
    return out


def evaluate_run(
    run_dir: str | Path,
    manifest_path: str | Path | None = None,
    *,
    split: str | None = None,
    seed: int = 0,
    name: str | None = None,
    cache_dir: str | Path | None = None,
    write: bool = True,
    reporter: Reporter | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Evaluate a run folder on a manifest; returns the result dict (see the module docstring).

    ``split`` is ``"val"`` or ``"train"`` (the run's ``split.csv`` ids; the manifest must be the
    training manifest) or ``None``/``"all"`` (every item). ``manifest_path`` defaults to the
    run's training manifest. ``reporter`` receives the embedding steps (nothing is shown
    without one).

    >>> result = evaluate_run("runs/demo", "data/demo/manifest.csv", split="val")  # doctest: +SKIP
    >>> result["tasks"]["fused"]["recall@1"]  # doctest: +SKIP
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"run folder not found: {run}")
    if split not in (None, *SPLITS):
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    config = runfolder.read_config(run)
    trained_on = runfolder.training_manifest(run)
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
        embedded = embed_items(embedder, items, max_pixels, reporter)
        bits = phash_bits([item.image for item in items], max_pixels, reporter)
    except ImageError as error:  # a file changed after the manifest was checked
        raise DataError(str(error)) from None

    result = _result_skeleton(name, run, embedder, manifest_path, manifest, split_name, seed)
    found = _Found()
    langs = sorted({items[row].lang or "unknown" for row in query_rows})
    for task, spec in TASK_SPECS.items():
        data = build_task(spec, embedded, query_rows)
        for reason, count in data.skipped.items():
            key = f"{task}: {reason}"
            skipped[key] = skipped.get(key, 0) + count
        similarity = task_similarity(spec, embedded, data)
        _task_figures(result, found, task, similarity, data, embedded, items, langs, seed)
        _task_baselines(result, task, spec, similarity, data, embedded, bits, items, seed)
    result["baselines"]["frozen"]["reason"] = FROZEN_REASON
    comparison = baseline_comparison(result)
    result["vs_baselines"] = comparison["tasks"]
    result["below_frozen"] = comparison["below_frozen"]
    result["lower_within_chance"] = comparison["lower_within_chance"]

    labels = {group: index for index, group in enumerate(sorted({i.group for i in items}))}
    figures = seed_document_figures(
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
    trained_fingerprint = runfolder.read_summary(run).get("data_fingerprint")
    same_data = trained_fingerprint in (None, result["data_fingerprint"])
    split_ids = runfolder.read_split_ids(run) if (run / runfolder.SPLIT_FILE).is_file() else {}
    has_calib = runfolder.CALIB in set(split_ids.values())
    # thresholds come from the calibration part, which chose nothing; a run without one (trained
    # before it existed, or with --calib-fraction 0) falls back to validation, and says so
    own_val = same_data and (split == "calib" or (split == "val" and not has_calib))
    open_set = OpenSetCalibration(
        model_id=embedder.model_id,
        tasks=found.open_tasks,
        about={
            "how": "open-set, cross-fitted (see pairs.open_set)",
            "on": f"the {split_name} part of {manifest_path}",
            "chose_nothing": split == "calib",
            "rates": [*OPEN_SET_RATES, RELATED_RATE],
        },
    )
    result["open_set_confusion"] = _calibration_confusion(open_set, found.crossfits)
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
    result["calibration"] = str(run / runfolder.CALIBRATION_FILE) if own_val and write else None
    result = runfolder.clean_json(result)

    if write:
        _write(run, name, result, items, found, open_set if own_val else None, split)
    return result


def _result_skeleton(name, run, embedder, manifest_path, manifest, split_name, seed) -> dict:
    """The evaluation's result before any figure: what was evaluated, and on which pairs."""
    return {
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


def _write(run, name, result, items, found: _Found, open_set, split) -> None:
    """The evaluation under ``RUN_DIR/eval/`` (with its top-5 lists and curves) and, when it
    was made on the run's own calibration part (``open_set`` given), ``calibration.json``."""
    items_by_id = {
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
    runfolder.write_evaluation(
        run, name, result, {"items": items_by_id, "tasks": found.top}, found.curves
    )
    if open_set is not None:
        runfolder.write_calibration(
            run,
            {
                "model_id": open_set.model_id,
                "source": f"{split} split of {result['manifest']}",
                "data_fingerprint": result["data_fingerprint"],
                "thresholds": found.thresholds,
                "default_fpr": 0.001,
                "pairs": result["pairs"],
                "open_set": open_set.to_json(),
            },
        )


@dataclass
class _Found:
    """What the task loop of :func:`evaluate_run` gathers beside the result: the verification
    thresholds, the open-set fits and their cross-fits, the top-5 lists and the curves."""

    thresholds: dict[str, dict[str, float | None]] = field(default_factory=dict)
    open_tasks: dict = field(default_factory=dict)
    crossfits: dict = field(default_factory=dict)
    top: dict[str, list] = field(default_factory=dict)
    curves: dict[str, dict] = field(default_factory=dict)


def _task_figures(result, found: _Found, task, similarity, data, embedded, items, langs, seed):
    """One task's retrieval (overall and per language), verification and open-set figures."""
    result["tasks"][task] = retrieval_figures(task, similarity, data, seed)
    verification = verification_figures(task, similarity, data)
    result["verification"][task] = verification
    found.thresholds[task] = {
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
    found.open_tasks[task] = fit_task(
        fitted.match_top1, fitted.match_correct, fitted.distractor_top1
    )
    result["open_set"][task] = {
        "thresholds": found.open_tasks[task].thresholds,
        "n_matches": found.open_tasks[task].n_matches,
        "n_distractors": found.open_tasks[task].n_distractors,
        **fitted.isc,
    }
    found.crossfits[task] = fitted
    found.top[task] = top_k(similarity, data, embedded)
    positive, negative = verification_pairs(similarity, data.correct, data.relevant)
    found.curves[task] = {
        "positive": score_histogram(positive),
        "negative": score_histogram(negative),
        "roc": thin_curve(roc_curve(positive, negative)),
        "roc_auc": verification["roc_auc"],
    }


def _task_baselines(result, task, spec, similarity, data, embedded, bits, items, seed):
    """One task's baselines on the same queries: the perceptual hash and the copy descriptor
    alone (image), the frozen towers (with the paired comparison and the per-pattern figures)."""
    gallery_groups = [items[row].group for row in data.gallery]
    if task == "image":
        hashed = hamming_similarity(bits[data.queries], bits[data.gallery])
        result["baselines"]["phash"]["image"] = {
            **retrieval_figures(task, hashed, data, seed),
            "open_set": _open_set_summary(hashed, data, gallery_groups),
        }
    if task == "image" and embedded.copy_dim:
        # the copy descriptor alone (raw cosine, e.g. SSCD), beside frozen content and hash
        copy = normalise_rows(embedded.space("copy", raw=True))
        copied = copy[data.queries] @ copy[data.gallery].T
        result["baselines"].setdefault("copy", {})["image"] = {
            **retrieval_figures(task, copied, data, seed),
            "open_set": _open_set_summary(copied, data, gallery_groups),
            "paired": paired_comparison(
                hits_at_k(similarity, data.correct, 1), hits_at_k(copied, data.correct, 1)
            ),
        }
    raw = None
    if task in ("image", "text"):
        raw = task_similarity(spec, embedded, data, raw=True)
    elif task == "fused":
        raw = frozen_fused_similarity(
            task_similarity(TASK_SPECS["image"], embedded, data, raw=True),
            raw_text_similarity(embedded, data),
            embedded.has_text[data.queries],
            embedded.has_text[data.gallery],
        )
    if raw is None:
        result["baselines"]["frozen"][task] = None
        return
    result["baselines"]["frozen"][task] = {
        **retrieval_figures(task, raw, data, seed),
        "open_set": _open_set_summary(raw, data, gallery_groups),
        "paired": paired_comparison(
            hits_at_k(similarity, data.correct, 1), hits_at_k(raw, data.correct, 1)
        ),
    }
    for pattern, figures in _pattern_figures(task, similarity, raw, data, items, seed):
        result.setdefault("by_pattern", {}).setdefault(pattern, {})[task] = figures
