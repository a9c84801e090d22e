"""Each task's thresholds and probabilities, fitted on the calibration queries
(:mod:`artsim.index.calibrate`).

:func:`fit_tasks` fits image, prompt and image + prompt on the top-1 scores of the match and the
distractor searches (:mod:`artsim.index.calibration_queries`); for the tasks of
``NORMALISED_TASKS`` it also fits them on scores with the query's background taken off, and keeps
those where they recall more at the rate. Beside each fit: the recall and false-verdict rate at
each threshold with its interval, and the reliability of the stated probabilities, cross-fitted.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from artsim.index.calibration_queries import Gallery, Queries, lower_ranks, ranked
from artsim.verdicts.grades import (
    BACKGROUND_RANK,
    BACKGROUND_WEIGHT,
    NORMALISED_TASKS,
    PROBABILITY_DEPTH,
    TaskCalibration,
    fit_task,
)
from artsim.verdicts.openset import binomial_interval, reliability


@dataclass
class TaskFit:
    """One task fitted on the calibration queries, and what the rest of the calibration reads."""

    fitted: TaskCalibration
    top: tuple  # (rows, best, away, background) for the confusion counts
    figures: dict
    reliability: dict
    choice: dict | None
    distractor_scores: np.ndarray


@dataclass
class _Searched:
    """One task's calibration queries searched (:func:`ranked`): the best (id, score) of the
    match and the distractor search, the results below them, and as arrays the top-1 scores
    (NaN where a search found nothing), whether the match is the query's original, and the
    background of both searches."""

    best: list
    away: list
    lower: list
    match: np.ndarray
    distractor: np.ndarray
    background: np.ndarray
    correct: np.ndarray

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.match)

    @property
    def away_found(self) -> np.ndarray:
        return ~np.isnan(self.distractor)


def fit_tasks(
    gallery: Gallery, queries: Queries, rate: float, confidence: float | None
) -> dict[str, TaskFit]:
    """Image fitted on every query, prompt and image + prompt on the queries with a prompt; a
    task whose queries found too little is left out (it stays uncalibrated)."""
    fits: dict[str, TaskFit] = {}
    for task, vectors, keep in (
        ("image", queries.image, np.ones(len(queries.items), bool)),
        ("text", queries.text, queries.has_text),
        ("fused", queries.fused, queries.has_text),
    ):
        fit = fit_task_on(gallery, queries, task, vectors, keep, rate, confidence)
        if fit is not None:
            fits[task] = fit
    return fits


def fit_task_on(
    gallery: Gallery,
    queries: Queries,
    task: str,
    vectors: np.ndarray,
    keep: np.ndarray,
    rate: float,
    confidence: float | None,
) -> TaskFit | None:
    """Fit one task's thresholds and probabilities on its calibration queries (``keep``): plain,
    and background-normalised where that recalls more at ``rate``. None when too few queries
    found anything (e.g. no caption anywhere: the task stays uncalibrated)."""
    rows = np.nonzero(keep)[0]
    if not len(rows):
        return None
    groups = [queries.groups[row] for row in rows]
    rank = BACKGROUND_RANK if task in NORMALISED_TASKS else 0
    searched = _search(gallery, queries, task, vectors[rows], groups, rank)
    found, away_found = searched.found, searched.away_found
    if found.sum() < 2 or away_found.sum() < 2:
        return None
    fitted = fit_task(
        searched.match[found],
        searched.correct[found],
        searched.distractor[away_found],
        confidence=confidence,
        lower=lower_ranks(searched.lower, found, away_found),
    )
    choice = None
    if rank and np.isfinite(searched.background[found | away_found]).all():
        fitted, choice = _normalised_if_better(fitted, searched, rank, rate, confidence)
    background = searched.background
    if not fitted.normalised:
        background[:] = 0.0
    reliability = _cross_fitted_reliability(
        groups,
        (searched.match, searched.correct, searched.distractor, searched.lower),
        (found, away_found),
        fitted.background_weight * background if fitted.normalised else 0.0 * background,
        fitted,
    )
    figures = _interval_figures(
        fitted.thresholds,
        int(away_found.sum()),
        len({g for g, kept in zip(groups, away_found, strict=True) if kept}),
    )
    top = (rows, searched.best, searched.away, background)
    return TaskFit(fitted, top, figures, reliability, choice, searched.distractor)


def _search(
    gallery: Gallery, queries: Queries, task: str, vectors: np.ndarray, groups, rank: int
) -> _Searched:
    """Search one task's queries (``vectors``, of ``groups``) as matches and as distractors,
    down to ``PROBABILITY_DEPTH``; image queries with their crops when the calibration has
    them."""
    scored_with_crops = (
        (queries.crop_vectors, queries.crops.margin)
        if task == "image" and queries.crops is not None
        else None
    )
    best, away, backgrounds, lower = ranked(
        gallery.store,
        task,  # each task searches the store of its name
        vectors,
        groups,
        gallery.group_of,
        gallery.group_sizes,
        rank,
        PROBABILITY_DEPTH,
        scored_with_crops,
    )
    return _Searched(
        best,
        away,
        lower,
        match=np.array([score for _, score in best], dtype=np.float64),
        distractor=np.array([score for _, score in away], dtype=np.float64),
        background=np.array(backgrounds, dtype=np.float64).reshape(-1, 2),
        correct=np.array(
            [gallery.group_of.get(i) == g for (i, _), g in zip(best, groups, strict=True)],
            dtype=bool,
        ),
    )


def _normalised_if_better(
    fitted: TaskCalibration, searched: _Searched, rank: int, rate: float, confidence
) -> tuple[TaskCalibration, dict]:
    """The task fitted again on scores minus the query's background, kept instead of ``fitted``
    where it recalls more at ``rate``; and the two recalls, for the record."""
    found, away_found, background = searched.found, searched.away_found, searched.background
    # decisions on score - weight * background (BACKGROUND_RANK, verdicts module), kept
    # where they find more at the rate: on a few dozen originals of one style the
    # background is as close as the original (flare, image + prompt: 0.86 -> 0.09)
    normalised = fit_task(
        (searched.match - BACKGROUND_WEIGHT * background[:, 0])[found],
        searched.correct[found],
        (searched.distractor - BACKGROUND_WEIGHT * background[:, 1])[away_found],
        confidence=confidence,
        background_rank=rank,
        background_weight=BACKGROUND_WEIGHT,
        lower=lower_ranks(searched.lower, found, away_found, BACKGROUND_WEIGHT * background),
    )
    recalls = [_recall_at(c, rate) for c in (fitted, normalised)]
    choice = {
        "plain_recall": recalls[0],
        "normalised_recall": recalls[1],
        "normalised": recalls[1] > recalls[0],
    }
    return (normalised if recalls[1] > recalls[0] else fitted), choice


def _cross_fitted_reliability(groups, scores, kept, shifts, fitted: TaskCalibration) -> dict:
    """The expected calibration error of the probabilities, measured on queries the tables
    were not fitted on: the queries are halved by group, the tables fitted on one half give the
    probabilities of the other half's results (ranks 1-10 of the match and the distractor
    search, even odds), and the halves swap. Beside it, the error of the best result's table
    read at every rank (how results below the first were stated before)."""
    match, correct, away, lower = scores
    found, away_found = kept
    fold = np.array([zlib.crc32(group.encode("utf-8")) % 2 for group in groups])
    stated, before, truth, weight = [], [], [], []
    n_match, n_away = max(int(found.sum()), 1), max(int(away_found.sum()), 1)
    for half in (0, 1):
        fit, test = fold != half, fold == half
        if not (found & fit).sum() or not (away_found & fit).sum():
            continue
        table = fit_task(
            (match - shifts[:, 0])[found & fit],
            correct[found & fit],
            (away - shifts[:, 1])[away_found & fit],
            rates=(),
            lower=lower_ranks(lower, found & fit, away_found & fit, shifts),
        )
        for query in np.nonzero(test)[0]:
            match_ranked, away_ranked = lower[query]
            listed = []
            if found[query]:
                first = (match[query] - shifts[query, 0], bool(correct[query]))
                rest = [(s - shifts[query, 0], o) for s, o in match_ranked]
                listed.append(([first, *rest], 1.0))
            if away_found[query]:
                first = (away[query] - shifts[query, 1], False)
                rest = [(s - shifts[query, 1], False) for s in away_ranked]
                listed.append(([first, *rest], n_match / n_away))
            for results, share in listed:
                for place, (decision, is_original) in enumerate(results, start=1):
                    stated.append(table.probability_at(decision, place))
                    before.append(table.probability_at(decision, 1))
                    truth.append(is_original)
                    weight.append(share)
    if not stated or any(p is None for p in stated):
        return {}
    measured = reliability(stated, truth, weight)
    ranks_below = [k for k, p in enumerate(before) if p is not None]
    return {
        "how": "cross-fitted: queries halved by group, each half's results (ranks 1-10 of the "
        "match and the distractor search, even odds) stated by the tables fitted on the other",
        "results": len(stated),
        "ece": measured["ece"],
        "ece_best_result_table_everywhere": reliability(
            [before[k] for k in ranks_below],
            [truth[k] for k in ranks_below],
            [weight[k] for k in ranks_below],
        )["ece"],
        "bins": measured["bins"],
        "normalised": fitted.normalised,
    }


def _recall_at(calibration: TaskCalibration, rate: float) -> float:
    return float(calibration.thresholds.get(f"{rate:g}", {}).get("recall", 0.0))


def _interval_figures(thresholds: dict, n_distractors: int, n_groups: int) -> dict:
    """Recall and false-verdict share per rate, with the 95% interval of the latter. The interval
    counts groups, not queries: the derivatives of one original are correlated, so several per
    group would make it too narrow."""
    units = max(1, min(n_distractors, n_groups))
    out = {}
    for rate, values in thresholds.items():
        false = round(values["false_rate"] * units)
        low, high = binomial_interval(false, units)
        out[rate] = {
            "threshold": values["threshold"],
            "recall": values["recall"],
            "false_rate": values["false_rate"],
            "false_rate_interval": [low, high],
        }
    return out
