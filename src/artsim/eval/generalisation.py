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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from artsim.eval.result import (
    BaselinesResult,
    Comparison,
    GeneralisationResult,
    PatternFigures,
    RetrievalResult,
)
from artsim.eval.tasks import EvalInputs, retrieval_figures
from artsim.stats import SIGNIFICANCE, sign_test

__all__ = [
    "SIGNIFICANCE",
    "baseline_comparison",
    "evaluate_generalisation",
    "paired_comparison",
    "pattern_figures",
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


def baseline_comparison(
    retrieval: RetrievalResult, baselines: BaselinesResult, metric: str = METRIC
) -> GeneralisationResult:
    """Per task, the trained model's ``metric`` next to the frozen towers' and the hash's.

    A lower trained figure is ``below_frozen`` when the sign test rejects chance
    (p < SIGNIFICANCE) or when the result holds no paired counts (older files: then any loss
    counts); otherwise it is ``lower_within_chance``. The result has no per-pattern figures
    (:func:`pattern_figures`).
    """
    result = GeneralisationResult()
    for task in COMPARED_TASKS:
        trained = (retrieval.tasks.get(task) or {}).get(metric)
        if trained is None:
            continue
        frozen_figures, phash_figures = baselines.of("frozen", task), baselines.of("phash", task)
        frozen = frozen_figures.figures.get(metric) if frozen_figures else None
        paired = frozen_figures.paired if frozen_figures else None
        minus = None if frozen is None else float(trained) - float(frozen)
        lower = minus is not None and minus < 0
        p_value = paired.p_value if paired else None
        is_below = lower and (p_value is None or p_value < SIGNIFICANCE)
        result.vs_baselines[task] = Comparison(
            trained=trained,
            frozen=frozen,
            phash=phash_figures.figures.get(metric) if phash_figures else None,
            minus_frozen=minus,
            wins=paired.wins if paired else None,
            losses=paired.losses if paired else None,
            p_value=p_value,
            below_frozen=is_below,
            lower_within_chance=lower and not is_below,
        )
        if is_below:
            result.below_frozen.append(task)
        elif lower:
            result.lower_within_chance.append(task)
    return result


def _pattern(item) -> str:
    return item.metadata.get("pattern", "").split(":")[0]


def pattern_figures(inputs: EvalInputs) -> dict[str, dict[str, PatternFigures]]:
    """Trained and frozen recall@1 per derivation pattern (the ``pattern`` column that held-out
    manifests carry; chains count as ``combo``) of every task with a frozen baseline; empty when
    the queries carry no pattern."""
    out: dict[str, dict[str, PatternFigures]] = {}
    for task, run in inputs.tasks.items():
        if run.frozen is None:
            continue
        names = inputs.query_values(task, _pattern)
        for pattern in sorted({name for name in names if name}):
            rows = np.nonzero(names == pattern)[0]
            trained = retrieval_figures(task, run.similarity, run.data, inputs.seed, rows)
            frozen = retrieval_figures(task, run.frozen, run.data, inputs.seed, rows)
            out.setdefault(pattern, {})[task] = PatternFigures(
                trained["recall@1"], frozen["recall@1"], len(rows)
            )
    return out


def evaluate_generalisation(
    inputs: EvalInputs, retrieval: RetrievalResult, baselines: BaselinesResult
) -> GeneralisationResult:
    """Trained against frozen and the hash per task, and per derivation pattern."""
    result = baseline_comparison(retrieval, baselines)
    result.by_pattern = pattern_figures(inputs)
    return result
