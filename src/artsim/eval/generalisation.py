"""Trained model against its baselines, per task: the check that a model generalises.

The project's rule is that a shipped model is never below the frozen towers it starts from on any
evaluation that differs from training (another source, style or transform code). Every evaluation
result therefore carries, per task, the trained recall@1 next to the frozen towers' and the
perceptual hash's, and the list ``below_frozen`` of the tasks where the trained model loses.

Both models answer the same queries, so the comparison is paired: per query, did the trained model
find the original where the frozen towers did not (a win), or the reverse (a loss)? A task is
below frozen when the trained figure is lower *and* an exact two-sided sign test on the wins and
losses says the gap is unlikely to be chance (p < :data:`SIGNIFICANCE`); a lower figure within
chance (two or three near-ties flipped among thousands of queries) is reported as such, with its
wins, losses and p, never dropped.

The frozen fused baseline needs no training: the plain average of the frozen image cosine and the
frozen text cosine (the image cosine alone where either side has no text).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from artsim.runfolder import read_evaluations
from artsim.stats import SIGNIFICANCE, sign_test

__all__ = [
    "SIGNIFICANCE",
    "baseline_comparison",
    "frozen_fused_similarity",
    "paired_comparison",
    "read_evaluations",
    "sign_test",
]

COMPARED_TASKS = ("image", "text", "fused")
METRIC = "recall@1"


def paired_comparison(trained_hits: np.ndarray, baseline_hits: np.ndarray) -> dict[str, Any]:
    """Wins and losses of the trained model against a baseline on the same queries (per-query
    hits, as :func:`artsim.eval.metrics.hits_at_k` gives them), with the sign test's p.

    >>> paired_comparison(np.array([1.0, 1.0, 0.0, 0.5]), np.array([0.0, 1.0, 1.0, 0.5]))
    {'wins': 1, 'losses': 1, 'queries': 4, 'p_value': 1.0}
    """
    trained, baseline = np.asarray(trained_hits, float), np.asarray(baseline_hits, float)
    wins, losses = int((trained > baseline).sum()), int((trained < baseline).sum())
    return {
        "wins": wins,
        "losses": losses,
        "queries": len(trained),
        "p_value": sign_test(wins, losses),
    }


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
    "wins", "losses", "p_value", "below_frozen", "lower_within_chance"}}, "below_frozen": [tasks],
    "lower_within_chance": [tasks]}``. A lower trained figure is ``below_frozen`` when the sign
    test rejects chance (p < SIGNIFICANCE) or when the result holds no paired counts (older
    files: then any loss counts); otherwise it is ``lower_within_chance``.
    """
    baselines = result.get("baselines") or {}
    tasks: dict[str, dict[str, Any]] = {}
    below, within_chance = [], []
    for task in COMPARED_TASKS:
        trained = ((result.get("tasks") or {}).get(task) or {}).get(metric)
        frozen_figures = (baselines.get("frozen") or {}).get(task) or {}
        frozen = frozen_figures.get(metric)
        phash = ((baselines.get("phash") or {}).get(task) or {}).get(metric)
        if trained is None:
            continue
        paired = frozen_figures.get("paired") or {}
        minus = None if frozen is None else float(trained) - float(frozen)
        lower = minus is not None and minus < 0
        p_value = paired.get("p_value")
        is_below = lower and (p_value is None or p_value < SIGNIFICANCE)
        tasks[task] = {
            "trained": trained,
            "frozen": frozen,
            "phash": phash,
            "minus_frozen": minus,
            "wins": paired.get("wins"),
            "losses": paired.get("losses"),
            "p_value": p_value,
            "below_frozen": is_below,
            "lower_within_chance": lower and not is_below,
        }
        if is_below:
            below.append(task)
        elif lower:
            within_chance.append(task)
    return {
        "metric": metric,
        "tasks": tasks,
        "below_frozen": below,
        "lower_within_chance": within_chance,
    }
