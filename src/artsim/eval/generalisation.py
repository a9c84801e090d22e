"""Trained model against its baselines, per task: the check that a model generalises.

The project's rule is that a shipped model is never below the frozen towers it starts from on any
evaluation that differs from training (another source, style or transform code). Every evaluation
result therefore carries, per task, the trained recall@1 next to the frozen towers' and the
perceptual hash's, and the list ``below_frozen`` of the tasks where the trained model loses.

The frozen fused baseline needs no training: the plain average of the frozen image cosine and the
frozen text cosine (the image cosine alone where either side has no text).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from artsim.runfolder import read_evaluations

__all__ = ["baseline_comparison", "frozen_fused_similarity", "read_evaluations"]

COMPARED_TASKS = ("image", "text", "fused")
METRIC = "recall@1"


def frozen_fused_similarity(
    image_similarity: np.ndarray,
    text_similarity: np.ndarray,
    query_has_text: np.ndarray,
    gallery_has_text: np.ndarray,
) -> np.ndarray:
    """Average of the frozen image and text cosines where both query and original have text,
    the image cosine elsewhere; all matrices are queries x gallery.

    >>> frozen_fused_similarity(np.eye(2), np.zeros((2, 2)), np.array([1, 0], bool),
    ...                         np.array([1, 1], bool)).tolist()
    [[0.5, 0.0], [0.0, 1.0]]
    """
    both = np.asarray(query_has_text, bool)[:, None] & np.asarray(gallery_has_text, bool)[None, :]
    return np.where(both, (image_similarity + text_similarity) / 2, image_similarity)


def baseline_comparison(result: dict[str, Any], metric: str = METRIC) -> dict[str, Any]:
    """Per task, the trained model's ``metric`` next to the frozen towers' and the hash's.

    Returns ``{"metric": ..., "tasks": {task: {"trained", "frozen", "phash", "minus_frozen",
    "below_frozen"}}, "below_frozen": [tasks]}``; a task is below frozen when its trained figure
    is lower than the frozen figure on the same queries (no tolerance: any loss counts).
    """
    baselines = result.get("baselines") or {}
    tasks: dict[str, dict[str, Any]] = {}
    below = []
    for task in COMPARED_TASKS:
        trained = ((result.get("tasks") or {}).get(task) or {}).get(metric)
        frozen = ((baselines.get("frozen") or {}).get(task) or {}).get(metric)
        phash = ((baselines.get("phash") or {}).get(task) or {}).get(metric)
        if trained is None:
            continue
        minus = None if frozen is None else float(trained) - float(frozen)
        is_below = minus is not None and minus < 0
        tasks[task] = {
            "trained": trained,
            "frozen": frozen,
            "phash": phash,
            "minus_frozen": minus,
            "below_frozen": is_below,
        }
        if is_below:
            below.append(task)
    return {"metric": metric, "tasks": tasks, "below_frozen": below}
