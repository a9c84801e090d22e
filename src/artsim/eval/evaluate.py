"""Evaluating a trained run: how well it finds the original of each generated work.

Works on any manifest, including data the run never saw. Every ``generated`` item is a query,
the ``original`` items are the gallery, and the right answer is the query's group's original.
Five tasks (image, text, i2t, t2i, fused; :mod:`artsim.eval.tasks`), items embedded once
(:mod:`artsim.eval.embedding`), then four evaluators, each giving one typed part of the
:class:`~artsim.eval.result.EvalResult`: retrieval (:mod:`artsim.eval.retrieval`), verification
(is this pair a derivation? thresholds at fixed false-positive rates and open-set thresholds;
:mod:`artsim.eval.verification`), baselines (perceptual hash, frozen tower features, the copy
descriptor alone; :mod:`artsim.eval.baselines`) and generalisation (trained against frozen per
task and per derivation pattern; :mod:`artsim.eval.generalisation`), with the seed's figures on
the same items.

Outputs (unless ``write=False``; written by :mod:`artsim.runfolder`): ``RUN_DIR/eval/<name>.json``
(the result, :meth:`~artsim.eval.result.EvalResult.to_dict`), ``RUN_DIR/eval/<name>.top5.json``
(per-query top-5 for the report's gallery), ``RUN_DIR/eval/<name>.curves.json`` (score histograms
and ROC points for the plots) and, only for the run's own calibration part (its validation split
when it has none), ``RUN_DIR/calibration.json`` (thresholds the search service uses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from artsim import runfolder
from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import Manifest, load_manifest
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS
from artsim.errors import DataError, ImageError, UserError
from artsim.eval.baselines import evaluate_baselines
from artsim.eval.embedding import embed_items, phash_bits
from artsim.eval.generalisation import evaluate_generalisation
from artsim.eval.result import Counts, EvalResult, Pairs
from artsim.eval.retrieval import evaluate_retrieval, top5_lists
from artsim.eval.tasks import TASKS, EvalInputs, task_runs
from artsim.eval.verification import (
    evaluate_verification,
    fit_open_set,
    open_set_calibration,
    verification_curves,
)
from artsim.losses import seed_document_figures
from artsim.model.embedder import Embedder
from artsim.progress import Reporter
from artsim.verdicts.grades import RELATED_RATE, OpenSetCalibration
from artsim.verdicts.openset import OPEN_SET_RATES

__all__ = ["SPLITS", "TASKS", "EvalResult", "evaluate_run"]

SPLITS = ("val", "train", "calib", "all")

SKIP_NO_ORIGINAL = "group has no original among the evaluated items"


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


@dataclass
class _Source:
    """What an evaluation reads before measuring: the run's model and the items of the manifest
    (of the split asked for)."""

    run: Path
    config: dict[str, Any]
    trained_on: str | None
    manifest_path: Path
    manifest: Manifest
    embedder: Embedder
    items: list[Item]
    max_pixels: int


def _open_source(
    run: Path, manifest_path, split: str | None, cache_dir, device: str | None
) -> _Source:
    """The run's model and the items to evaluate; a mistake in the arguments is a UserError."""
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
    return _Source(run, config, trained_on, manifest_path, manifest, embedder, items, max_pixels)


def _query_rows(source: _Source, split_name: str) -> tuple[list[int], dict[str, int]]:
    """The generated items whose group's original is evaluated too, and how many are not."""
    items = source.items
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
            f"{source.manifest_path}: nothing to evaluate: no generated item ({split_name} split) "
            "has its group's original among the evaluated items"
        )
    return query_rows, skipped


def _inputs(
    source: _Source, query_rows: list[int], seed: int, reporter: Reporter | None
) -> tuple[EvalInputs, dict[str, int]]:
    """The items embedded once (and hashed), every task built on them; and the queries each
    task left out."""
    try:
        embedded = embed_items(source.embedder, source.items, source.max_pixels, reporter)
        bits = phash_bits([item.image for item in source.items], source.max_pixels, reporter)
    except ImageError as error:  # a file changed after the manifest was checked
        raise DataError(str(error)) from None
    tasks, skipped = task_runs(embedded, query_rows)
    return EvalInputs(source.items, embedded, bits, query_rows, tasks, seed), skipped


def _seed_figures(inputs: EvalInputs, config: dict[str, Any], seed: int) -> dict[str, float]:
    """The seed's triplet figures (losses and accuracies per modality) on the same items."""
    items, embedded = inputs.items, inputs.embedded
    labels = {group: index for index, group in enumerate(sorted({i.group for i in items}))}
    figures = seed_document_figures(
        torch.from_numpy(embedded.image),
        torch.from_numpy(embedded.text),
        torch.tensor([labels[item.group] for item in items], dtype=torch.long),
        torch.from_numpy(embedded.has_text),
        margin=float(config.get("margin", 0.2)),
        seed=seed,
    )
    return {key: float(value) for key, value in figures.items()}


def _calibration_plan(
    source: _Source, split: str | None, fingerprint: str
) -> tuple[bool, list[str]]:
    """Whether this evaluation sets the run's verdict thresholds (``calibration.json``), and the
    notes that say why not, or why on validation data."""
    # Ids like "g000-orig" recur across data sets: ids matching is not enough to call this the
    # run's own validation data, the content fingerprint must agree too (when the run recorded it).
    run = source.run
    trained_fingerprint = runfolder.read_summary(run).get("data_fingerprint")
    same_data = trained_fingerprint in (None, fingerprint)
    split_ids = runfolder.read_split_ids(run) if (run / runfolder.SPLIT_FILE).is_file() else {}
    has_calib = runfolder.CALIB in set(split_ids.values())
    # thresholds come from the calibration part, which chose nothing; a run without one (trained
    # before it existed, or with --calib-fraction 0) falls back to validation, and says so
    own_val = same_data and (split == "calib" or (split == "val" and not has_calib))
    notes = []
    if own_val and split == "val":
        notes.append(
            "the run has no calibration part (trained with --calib-fraction 0 or before it "
            "existed): thresholds are set on validation data, which also chose the checkpoint"
        )
    if split in ("val", "train", "calib") and not same_data:
        notes.append(
            f"{source.manifest_path} is not the data the run was trained on (fingerprint "
            f"{fingerprint}, trained on {trained_fingerprint}): items were matched "
            "to split.csv by id only, and no calibration was written"
        )
    return own_val, notes


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
) -> EvalResult:
    """Evaluate a run folder on a manifest; returns the :class:`EvalResult` (see the module
    docstring), equal to what its file holds.

    ``split`` is ``"val"``, ``"calib"`` or ``"train"`` (the run's ``split.csv`` ids; the manifest
    must be the training manifest) or ``None``/``"all"`` (every item). ``manifest_path`` defaults
    to the run's training manifest. ``reporter`` receives the embedding steps (nothing is shown
    without one).

    >>> result = evaluate_run("runs/demo", "data/demo/manifest.csv", split="val")
    >>> result.name, result.counts.queries > 0
    ('val', True)
    >>> EvalResult.from_dict(runfolder.read_evaluation("runs/demo", "val")) == result  # its file
    True
    """
    run, split_name = Path(run_dir), split or "all"
    source = _open_source(run, manifest_path, split, cache_dir, device)
    query_rows, skipped = _query_rows(source, split_name)
    inputs, task_skipped = _inputs(source, query_rows, seed, reporter)
    fingerprint = source.manifest.fingerprint()
    own_val, notes = _calibration_plan(source, split, fingerprint)
    fits = fit_open_set(inputs)
    about = {
        "how": "open-set, cross-fitted (see pairs.open_set)",
        "on": f"the {split_name} part of {source.manifest_path}",
        "chose_nothing": split == "calib",
        "rates": [*OPEN_SET_RATES, RELATED_RATE],
    }
    calibration = open_set_calibration(fits, source.embedder.model_id, about)
    retrieval, baselines = evaluate_retrieval(inputs), evaluate_baselines(inputs)
    result = EvalResult(
        name=name or _default_name(split, source.manifest_path, source.trained_on),
        run=str(run),
        model_id=source.embedder.model_id,
        manifest=str(source.manifest_path),
        data_fingerprint=fingerprint,
        split=split_name,
        seed=seed,
        retrieval=retrieval,
        verification=evaluate_verification(inputs, fits, calibration),
        baselines=baselines,
        generalisation=evaluate_generalisation(inputs, retrieval, baselines),
        seed_figures=_seed_figures(inputs, source.config, seed),
        counts=Counts(
            items=len(source.items),
            queries=len(query_rows),
            gallery=sum(item.is_original for item in source.items),
            skipped=skipped | task_skipped,
            problems=[p.format(str(source.manifest_path)) for p in source.manifest.problems],
        ),
        pairs=Pairs.on(split_name),
        notes=notes,
        calibration=str(run / runfolder.CALIBRATION_FILE) if own_val and write else None,
    )
    # strict JSON values (NaN -> None, numpy scalars -> Python): the result is what its file holds
    result = EvalResult.from_dict(runfolder.clean_json(result.to_dict()))
    if write:
        _write(run, result, inputs, calibration if own_val else None, split)
    return result


def _write(
    run: Path,
    result: EvalResult,
    inputs: EvalInputs,
    calibration: OpenSetCalibration | None,
    split: str | None,
) -> None:
    """The evaluation under ``RUN_DIR/eval/`` (with its top-5 lists and curves) and, when it
    was made on the run's own calibration part (``calibration`` given), ``calibration.json``."""
    items_by_id = {
        item.id: {
            "image": str(item.image),
            "text": item.text,
            "role": item.role,
            "group": item.group,
            "lang": item.lang,
            "title": item.title,
        }
        for item in inputs.items
    }
    runfolder.write_evaluation(
        run,
        result.name,
        result.to_dict(),
        {"items": items_by_id, "tasks": top5_lists(inputs)},
        verification_curves(inputs, result.verification),
    )
    if calibration is not None:
        runfolder.write_calibration(
            run,
            {
                "model_id": calibration.model_id,
                "source": f"{split} split of {result.manifest}",
                "data_fingerprint": result.data_fingerprint,
                "thresholds": result.verification.thresholds(),
                "default_fpr": 0.001,
                "pairs": result.pairs.to_dict() if result.pairs else None,
                "open_set": calibration.to_json(),
            },
        )
