"""The run folder: the one reader and writer of the files a training run leaves.

A run folder holds ``config.yaml`` (the resolved options), ``split.csv`` (``id,split``),
``problems.txt`` (rows skipped), ``metrics.jsonl`` (one row per epoch), ``summary.json``,
``model.safetensors`` + ``model.json`` (the model and its card), ``checkpoints/`` (resume state),
``calibration.json`` (decision thresholds measured on the run's validation split) and ``eval/``
(``<name>.json`` results, ``<name>.top5.json`` and ``<name>.curves.json`` side files).

Every other module reads and writes these files through the functions here, so their formats
live in one place. This module sits at the bottom of the package (of artsim it imports only
:mod:`artsim.errors`): training, evaluation, reports, the index and the service all use it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from artsim.errors import DataError, UserError

CONFIG_FILE = "config.yaml"
CHANGES_FILE = "changes.log"  # one line per resume that changed options
SPLIT_FILE = "split.csv"
DATA_FILE = "data.json"  # what the run trains on: the manifest's fingerprint, per item digests
PROBLEMS_FILE = "problems.txt"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CALIBRATION_FILE = "calibration.json"
MODEL_WEIGHTS = "model.safetensors"
MODEL_CARD = "model.json"
CHECKPOINTS_DIR = "checkpoints"
EVAL_DIR = "eval"
SPLITS = ("train", "val", "calib")
# The calibration part: groups taken out of validation so that the verdict's thresholds are set on
# data that chose nothing (validation picks the epoch and the checkpoint).
CALIB = "calib"

# The seed's figures of a run: summary-level keys, then the keys of a metrics row. Reports,
# comparisons, sweeps and the `train` command's table all show these, in this order.
SEED_DOCUMENT_FIGURES = (
    "epochs_completed",
    "final_lr",
    "train/loss",
    "train/triplet_acc",
    "val/loss",
    "val/triplet_acc",
    "val/image_loss",
    "val/image_acc",
    "val/text_loss",
    "val/text_acc",
    "val/cross_loss",
    "val/cross_acc",
    "val/i2t_acc",
    "val/t2i_acc",
)


# --- plain files ---------------------------------------------------------------------------------


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


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """``with replacing(path) as temporary:`` write ``temporary`` (beside ``path``); when the
    block ends it is renamed over ``path``. If the block fails (a full disk) the temporary file
    is removed and ``path`` is left as it was.

    >>> with replacing(tmp_path / "run" / "summary.json") as temporary:
    ...     _ = temporary.write_text("{}")
    >>> sorted(path.name for path in (tmp_path / "run").iterdir())  # no temporary file is left
    ['summary.json']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    """Strict JSON (see :func:`clean_json`), indented, written atomically."""
    text = json.dumps(clean_json(data), indent=2, ensure_ascii=False) + "\n"
    return write_text_atomic(path, text)


def read_json(path: str | Path, *, missing_ok: bool = True) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` when the file is absent (unless ``missing_ok=False``).

    An unreadable file is a :class:`UserError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return {}
        raise UserError(f"{path}: file not found")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    return loaded if isinstance(loaded, dict) else {}


def read_json_lenient(path: str | Path) -> dict[str, Any]:
    """Like :func:`read_json`, but an unreadable file reads as ``{}`` (side files of reports)."""
    try:
        return read_json(path)
    except UserError:
        return {}


# --- config, summary, metrics --------------------------------------------------------------------


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """``RUN_DIR/config.yaml`` as a dict ({} when absent); ``run_dir`` may be the file itself."""
    path = Path(run_dir)
    if path.is_dir() or not path.suffix:
        path = path / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    return loaded if isinstance(loaded, dict) else {}


def write_config(values: Mapping[str, Any], path: str | Path) -> Path:
    """Write resolved options as ``config.yaml`` (sorted keys); ``path`` is a file or a run."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    path.write_text(yaml.safe_dump(dict(values), sort_keys=True), encoding="utf-8")
    return path


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """``RUN_DIR/summary.json`` as a dict ({} when absent)."""
    return read_json(Path(run_dir) / SUMMARY_FILE)


def _write_indented(path: Path, data: Mapping[str, Any]) -> Path:
    # strict JSON: a figure that does not exist (a stage without a score) is null, never Infinity
    path.write_text(json.dumps(clean_json(dict(data)), indent=2, allow_nan=False) + "\n", "utf-8")
    return path


def write_summary(run_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write ``RUN_DIR/summary.json``."""
    return _write_indented(Path(run_dir) / SUMMARY_FILE, summary)


def training_manifest(run_dir: str | Path) -> str | None:
    """The manifest the run was trained on, as recorded in summary.json or config.yaml."""
    return read_summary(run_dir).get("data") or read_config(run_dir).get("data") or None


# JSON has no NaN or infinity: a non-finite figure is written as one of these strings and read
# back as the float (a diverged epoch's loss is a fact worth keeping, not a missing value).
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its name in :data:`NON_FINITE`."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def dumps_row(row: Mapping[str, Any]) -> str:
    """One metrics row as strict JSON (never a bare ``NaN``)."""
    return json.dumps(json_safe(dict(row)), allow_nan=False)


def loads_row(line: str) -> dict[str, Any]:
    """One metrics row; the names of non-finite figures (and a bare ``NaN`` written by older
    versions) become floats again."""
    row = json.loads(line)
    if not isinstance(row, dict):
        raise json.JSONDecodeError("a metrics row is a JSON object", line, 0)
    return {
        key: NON_FINITE[value] if isinstance(value, str) and value in NON_FINITE else value
        for key, value in row.items()
    }


def metrics_path(run_dir: str | Path) -> Path:
    """Where a run's per-epoch rows live."""
    return Path(run_dir) / METRICS_FILE


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl`` (a file or a run folder); [] when absent. Non-finite figures
    come back as floats (:func:`loads_row`).

    Blank lines are skipped; a torn line (a crash mid-write) ends the list, since every row after
    it would belong to epochs the checkpoints do not have.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            rows.append(loads_row(line))
        except json.JSONDecodeError:
            break
    return rows


def write_metrics(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Replace a ``metrics.jsonl`` with ``rows`` (atomically)."""
    return write_text_atomic(path, "".join(dumps_row(row) + "\n" for row in rows))


def append_change(run_dir: str | Path, line: str) -> Path:
    """Add one line to ``RUN_DIR/changes.log`` (options changed by a resume)."""
    path = Path(run_dir) / CHANGES_FILE
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line.rstrip("\n") + "\n")
    return path


def append_metrics_row(path: str | Path, row: Mapping[str, Any]) -> None:
    """Append one row to a ``metrics.jsonl`` and sync it to disk; a row that cannot be
    written whole (a full disk) is cut off again, so the file keeps whole rows only."""
    with Path(path).open("ab") as handle:
        size = handle.tell()
        try:
            handle.write((dumps_row(row) + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                handle.truncate(size)
            raise


# --- split ---------------------------------------------------------------------------------------


def write_split(assignment: Mapping[str, str], path: str | Path) -> Path:
    """Write the assignment as a CSV with columns ``id,split``; returns the path."""
    path = Path(path)
    bad = [(item_id, split) for item_id, split in assignment.items() if split not in SPLITS]
    if bad:
        raise DataError(
            f"unknown split {bad[0][1]!r} for id {bad[0][0]!r} (expected train, val or calib)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "split"])
        writer.writerows(assignment.items())
    return path


def read_split_rows(path: str | Path) -> list[tuple[int, str, str]]:
    """``(row number, id, split)`` of an ``id,split`` CSV, values stripped, blank rows left out.

    Only the file is checked here (it exists, is UTF-8, has both columns); what the values must
    be depends on the caller: training checks them against its manifest
    (:func:`artsim.data.manifest.split.read_split`), evaluation matches ids leniently
    (:func:`read_split_ids`).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"split file not found: {path}") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the split file ({error.strerror or error})") from None
    # newline="": ids may hold newlines inside quotes, as write_split writes them
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = [name.strip() for name in reader.fieldnames or []]
    if "id" not in fields or "split" not in fields:
        raise DataError(
            f"{path}: a split file needs the columns id,split (found: {fields or 'none'})"
        )
    reader.fieldnames = fields
    rows = []
    for number, row in enumerate(reader, start=1):
        item_id = (row.get("id") or "").strip()
        split = (row.get("split") or "").strip()
        if item_id or split:
            rows.append((number, item_id, split))
    return rows


def read_split_ids(path: str | Path) -> dict[str, str]:
    """``{id: split}`` of a split file (or of ``RUN_DIR/split.csv``), without further checks.

    Lenient on purpose: an evaluation manifest may hold only a part of the training manifest,
    and the ids that match are what counts.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SPLIT_FILE
    return {item_id: split for _, item_id, split in read_split_rows(path) if item_id}


# --- calibration ---------------------------------------------------------------------------------


def write_calibration(run_dir: str | Path, calibration: Mapping[str, Any]) -> Path:
    """Write ``RUN_DIR/calibration.json`` (what evaluation measured on the run's calibration
    part; its ``open_set`` is read back by :mod:`artsim.verdicts.source`)."""
    return write_json(Path(run_dir) / CALIBRATION_FILE, dict(calibration))


def read_calibration(run_dir: str | Path) -> dict[str, Any]:
    """``RUN_DIR/calibration.json`` as a dict ({} when absent; UserError when unreadable)."""
    return read_json(Path(run_dir) / CALIBRATION_FILE)


# --- model card ----------------------------------------------------------------------------------


def write_data_record(
    run_dir: str | Path, data: str, fingerprint: str, items: Mapping[str, str]
) -> Path:
    """Write ``data.json``: the manifest a run trains on, its fingerprint and a digest per row
    id (so a resume can tell which rows changed)."""
    record = {"data": data, "fingerprint": fingerprint, "items": dict(items)}
    return write_text_atomic(Path(run_dir) / DATA_FILE, json.dumps(record, ensure_ascii=False))


def read_data_record(run_dir: str | Path) -> dict[str, Any]:
    """``data.json`` of a run (``{}`` for a run made before it was written)."""
    return read_json(Path(run_dir) / DATA_FILE)


def write_model_card(folder: str | Path, card: Mapping[str, Any]) -> Path:
    """Write ``model.json`` beside ``model.safetensors``."""
    return _write_indented(Path(folder) / MODEL_CARD, card)


def read_model_card(folder: str | Path) -> dict[str, Any]:
    """``model.json`` of a model folder ({} when absent)."""
    return read_json(Path(folder) / MODEL_CARD)


def has_model(folder: str | Path) -> bool:
    """Whether a folder holds model weights."""
    return (Path(folder) / MODEL_WEIGHTS).is_file()


# --- evaluation files ----------------------------------------------------------------------------


def evaluation_path(run_dir: str | Path, name: str, kind: str = "") -> Path:
    """``RUN_DIR/eval/<name>.json`` (``kind`` ``top5`` or ``curves`` for the side files)."""
    suffix = f".{kind}.json" if kind else ".json"
    return Path(run_dir) / EVAL_DIR / f"{name}{suffix}"


def write_evaluation(
    run_dir: str | Path,
    name: str,
    result: Mapping[str, Any],
    top5: Mapping[str, Any],
    curves: Mapping[str, Any],
) -> Path:
    """Write an evaluation result and its two side files under ``RUN_DIR/eval/``."""
    write_json(evaluation_path(run_dir, name, "top5"), top5)
    write_json(evaluation_path(run_dir, name, "curves"), curves)
    return write_json(evaluation_path(run_dir, name), result)


def read_evaluation(run_dir: str | Path, name: str, kind: str = "") -> dict[str, Any]:
    """An evaluation file (or side file) of a run; {} when absent or unreadable."""
    return read_json_lenient(evaluation_path(run_dir, name, kind))


def read_evaluations(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every evaluation result in ``RUN_DIR/eval`` (``<name>.json``, not the side files), the
    run's own validation first, then by name; unreadable files are skipped."""
    eval_dir = Path(run_dir) / EVAL_DIR
    results = []
    for path in sorted(eval_dir.glob("*.json")):
        if path.name.endswith((".top5.json", ".curves.json")):
            continue
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(result, dict) and "tasks" in result and "baselines" in result:
            results.append(result)
    return sorted(results, key=lambda r: (r.get("name") != "val", str(r.get("name"))))
