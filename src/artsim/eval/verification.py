"""The verification evaluator: is a (query, original) pair a derivation, and what does a
search's best result mean when the query's original may not be indexed at all?

Pair verification gives each task's ROC-AUC and thresholds at fixed false-positive rates. The
open-set view cross-fits distractor queries out of the closed evaluation (the originals halved
by group, :func:`artsim.verdicts.openset.cross_fit`): its thresholds on the best result's score
are what the verdicts use (:class:`~artsim.verdicts.grades.OpenSetCalibration`), and the
verdicts they give the same queries are counted by kind of query.
"""

from __future__ import annotations

from typing import Any

from artsim.eval.metrics import roc_curve, score_histogram, verification_pairs
from artsim.eval.result import VerificationResult
from artsim.eval.tasks import EvalInputs, thin_curve, verification_figures
from artsim.verdicts.grades import OpenSetCalibration, confusion, fit_task
from artsim.verdicts.openset import CrossFit, cross_fit

__all__ = [
    "calibration_confusion",
    "evaluate_verification",
    "fit_open_set",
    "open_set_calibration",
    "verification_curves",
]


def fit_open_set(inputs: EvalInputs) -> dict[str, CrossFit]:
    """Per task, the best results of the queries against each half of the gallery: with their
    original there (matches) or not (distractors), and the ISC figures of both."""
    return {
        task: cross_fit(run.similarity, run.data.relevant, inputs.gallery_groups(task))
        for task, run in inputs.tasks.items()
    }


def open_set_calibration(
    fits: dict[str, CrossFit], model_id: str, about: dict[str, Any]
) -> OpenSetCalibration:
    """The verdicts' thresholds and probabilities fitted on the cross-fitted queries."""
    tasks = {
        task: fit_task(fitted.match_top1, fitted.match_correct, fitted.distractor_top1)
        for task, fitted in fits.items()
    }
    return OpenSetCalibration(model_id=model_id, tasks=tasks, about=about)


def calibration_confusion(
    calibration: OpenSetCalibration, fits: dict[str, CrossFit]
) -> dict[str, dict[str, dict[str, int]]]:
    """Verdicts on the calibration queries (their task score only), by kind of query."""
    out = {}
    for task, fitted in fits.items():
        truth, predicted = [], []
        for score, correct in zip(fitted.match_top1, fitted.match_correct, strict=True):
            truth.append("derived" if correct else "derived, wrong original first")
            predicted.append(calibration.grade(task, float(score), {task: float(score)}).verdict)
        for score in fitted.distractor_top1:
            truth.append("original not indexed")
            predicted.append(calibration.grade(task, float(score), {task: float(score)}).verdict)
        out[task] = confusion(truth, predicted)
    return out


def evaluate_verification(
    inputs: EvalInputs, fits: dict[str, CrossFit], calibration: OpenSetCalibration
) -> VerificationResult:
    """Pair verification of every task, its open-set figures (from ``fits`` and the
    ``calibration`` fitted on them) and the verdicts that calibration gives the same queries."""
    tasks = {
        task: verification_figures(task, run.similarity, run.data)
        for task, run in inputs.tasks.items()
    }
    open_set = {
        task: {
            "thresholds": fitted.thresholds,
            "n_matches": fitted.n_matches,
            "n_distractors": fitted.n_distractors,
            **fits[task].isc,
        }
        for task, fitted in calibration.tasks.items()
    }
    return VerificationResult(tasks, open_set, calibration_confusion(calibration, fits))


def verification_curves(
    inputs: EvalInputs, verification: VerificationResult
) -> dict[str, dict[str, Any]]:
    """Per task, the score histograms of the original and the other originals and the ROC
    curve (thinned for plotting): what the report's plots draw."""
    curves = {}
    for task, run in inputs.tasks.items():
        positive, negative = verification_pairs(run.similarity, run.data.correct, run.data.relevant)
        curves[task] = {
            "positive": score_histogram(positive),
            "negative": score_histogram(negative),
            "roc": thin_curve(roc_curve(positive, negative)),
            "roc_auc": verification.tasks[task]["roc_auc"],
        }
    return curves
