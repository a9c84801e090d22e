"""What a report reads: a run folder and its evaluation files, never a live process.

Both come through :mod:`artsim.runfolder`. A missing or stale ``eval/val.json`` is not made here:
the report says so and how to make it (``artsim evaluate --run RUN --split val``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artsim import runfolder
from artsim.errors import UserError
from artsim.eval.result import EvalResult
from artsim.model.heads import model_id
from artsim.runfolder import SEED_DOCUMENT_FIGURES

__all__ = [
    "SEED_DOCUMENT_FIGURES",
    "Evaluation",
    "RunFolder",
    "finite",
    "load_evaluation",
    "load_run",
]


# the triplet parts of the loss, which training and validation both compute (weighted as in
# LossWeights); the parts only training's objective holds
COMPARABLE_PARTS = ("image", "text", "cross")
EXTRA_PARTS = ("koleo", "copy")


def finite(value: Any) -> bool:
    """A real, finite number (not a bool, not None, not NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class RunFolder:
    """What a finished (or interrupted) run left on disk."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    metrics: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return self.path.name

    def final(self) -> dict[str, Any]:
        """The last epoch's row (summary.json's ``final``, else the last metrics row)."""
        return dict(self.summary.get("final") or (self.metrics[-1] if self.metrics else {}))

    def best(self) -> dict[str, Any]:
        """The best epoch's row (summary.json's ``best``, else the lowest validation loss)."""
        if self.summary.get("best"):
            return dict(self.summary["best"])
        scored = [row for row in self.metrics if finite(row.get("val/loss"))]
        return dict(min(scored, key=lambda row: row["val/loss"])) if scored else {}

    def loss_weights(self) -> dict[str, float]:
        """The weight of each loss part in training's objective (the run's config; the
        defaults of :class:`~artsim.training.config.TrainConfig` for what it does not say)."""
        weights = {"image": 1.0, "text": 1.0, "cross": 1.0, "copy": 0.0, "koleo": 1.0}
        given = self.config.get("loss_weights")
        if isinstance(given, dict):
            weights.update({k: float(v) for k, v in given.items() if finite(v)})
        return weights

    def extra_training_parts(self, row: dict[str, Any]) -> list[str]:
        """Parts training's objective held in ``row`` that the validation loss does not compute
        (the KoLeo spreading term, the copy part): weighted above 0 and logged."""
        weights = self.loss_weights()
        return [
            part
            for part in EXTRA_PARTS
            if weights.get(part, 0.0) > 0 and finite(row.get(f"train/{part}_loss"))
        ]

    def comparable_loss(self, row: dict[str, Any], split: str) -> float | None:
        """The loss of ``split`` (``train`` or ``val``) in ``row`` over the parts both sides
        compute: the weighted image, text and cross-modal triplet losses, as ``val/loss`` is made
        (:func:`artsim.losses.seed_document_figures`); training's objective also holds the KoLeo
        and copy parts, which validation does not compute (KoLeo is negative: a training
        objective below zero). ``None`` when the row has no parts and the objective has more."""
        weights = self.loss_weights()
        parts = [
            weights[part] * row[f"{split}/{part}_loss"]
            for part in COMPARABLE_PARTS
            if finite(row.get(f"{split}/{part}_loss"))
        ]
        if parts:
            return float(sum(parts))
        whole = row.get(f"{split}/loss")
        if not finite(whole) or (split == "train" and self.extra_training_parts(row)):
            return None
        return float(whole)

    def figure(self, key: str, row: str = "final") -> Any:
        """A seed figure: summary-level keys (epochs_completed, final_lr) or a metrics key."""
        if key == "epochs_completed":
            return self.summary.get("epochs_completed", len(self.metrics) or None)
        if key == "final_lr":
            value = self.summary.get("final_lr")
            return value if value is not None else self.final().get("lr")
        return (self.final() if row == "final" else self.best()).get(key)


def load_run(run_dir: str | Path) -> RunFolder:
    """Read a run folder; a folder without summary.json or metrics.jsonl is a user error."""
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"run folder not found: {path}")
    summary = runfolder.read_summary(path)
    metrics = runfolder.read_metrics(path)
    if not summary and not metrics:
        raise UserError(f"{path}: not a run folder (no summary.json or metrics.jsonl)")
    return RunFolder(path, runfolder.read_config(path), summary, metrics)


@dataclass
class Evaluation:
    """The validation evaluation of a run: the result, its curves and top-5 lists."""

    result: EvalResult | None
    curves: dict[str, Any] = field(default_factory=dict)
    top5: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why there is no result


def load_evaluation(run: RunFolder, name: str = "val") -> Evaluation:
    """``eval/<name>.json`` and its side files, as they are on disk.

    Nothing is evaluated here: when the file is missing, or belongs to another model (a retrained
    run), the evaluation has no result and ``reason`` says how to make one.
    """
    result = runfolder.read_evaluation(run.path, name)
    current = model_id(run.path) if runfolder.has_model(run.path) else None
    split = f" --split {name}" if name in ("val", "train") else ""
    command = f"`artsim evaluate --run {run.path}{split}`"
    if not result:
        if current is None:
            return Evaluation(None, reason=f"{run.path} holds no model ({runfolder.MODEL_WEIGHTS})")
        path = runfolder.evaluation_path(run.path, name)
        return Evaluation(None, reason=f"{path} is missing: run {command} to make it")
    if current and result.get("model_id") != current:
        return Evaluation(
            None,
            reason=f"{runfolder.evaluation_path(run.path, name)} was made with model "
            f"{result.get('model_id')}, not the run's model {current}: run {command} again",
        )
    return Evaluation(
        EvalResult.from_dict(result),
        runfolder.read_evaluation(run.path, name, "curves"),
        runfolder.read_evaluation(run.path, name, "top5"),
    )
