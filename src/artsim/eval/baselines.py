"""The baselines evaluator: what the trained model is measured against, on the same queries.

The perceptual hash (image), the frozen towers' features before any training (image, text and
their plain average for fused; the cross-modal tasks have no frozen baseline, the towers share no
space) and, for a model with a copy descriptor (SSCD), that descriptor alone. Each gets the
retrieval figures and the open-set summary of the trained model; frozen and the copy descriptor
also the paired comparison with it (:func:`artsim.eval.generalisation.paired_comparison`).
"""

from __future__ import annotations

import numpy as np

from artsim.eval.embedding import hamming_similarity, normalise_rows
from artsim.eval.generalisation import paired_comparison
from artsim.eval.metrics import hits_at_k
from artsim.eval.result import BaselineFigures, BaselinesResult, Figures, Paired
from artsim.eval.tasks import EvalInputs, TaskData, retrieval_figures
from artsim.verdicts.grades import fit_task
from artsim.verdicts.openset import cross_fit

__all__ = ["FROZEN_REASON", "evaluate_baselines", "open_set_summary"]

FROZEN_REASON = (
    "the image and text towers have different feature spaces, so raw cross-modal similarities "
    "mean nothing; the frozen fused baseline averages the frozen image and text cosines"
)


def open_set_summary(similarity: np.ndarray, data: TaskData, gallery_groups) -> Figures:
    """µAP, recall at precision and the open-set thresholds of a baseline, cross-fitted."""
    fitted = cross_fit(similarity, data.relevant, gallery_groups)
    task = fit_task(fitted.match_top1, fitted.match_correct, fitted.distractor_top1)
    return {"thresholds": task.thresholds, **fitted.isc}


def _baseline(
    inputs: EvalInputs, task: str, similarity: np.ndarray, paired: bool
) -> BaselineFigures:
    """A baseline's figures on a task, given its similarity of the task's queries and gallery."""
    run = inputs.tasks[task]
    figures = BaselineFigures(
        retrieval_figures(task, similarity, run.data, inputs.seed),
        open_set_summary(similarity, run.data, inputs.gallery_groups(task)),
    )
    if paired:
        trained_hits = hits_at_k(run.similarity, run.data.correct, 1)
        compared = paired_comparison(trained_hits, hits_at_k(similarity, run.data.correct, 1))
        figures.paired = Paired(**compared)
    return figures


def evaluate_baselines(inputs: EvalInputs) -> BaselinesResult:
    """Every baseline on the tasks it applies to (see the module docstring)."""
    image = inputs.tasks["image"].data
    hashed = hamming_similarity(inputs.bits[image.queries], inputs.bits[image.gallery])
    result = BaselinesResult(
        phash={"image": _baseline(inputs, "image", hashed, paired=False)},
        frozen_reason=FROZEN_REASON,
    )
    if inputs.embedded.copy_dim:
        copy = normalise_rows(inputs.embedded.space("copy", raw=True))
        copied = copy[image.queries] @ copy[image.gallery].T
        result.copy = {"image": _baseline(inputs, "image", copied, paired=True)}
    for task, run in inputs.tasks.items():
        if run.frozen is None:
            result.frozen[task] = None
        else:
            result.frozen[task] = _baseline(inputs, task, run.frozen, paired=True)
    return result
