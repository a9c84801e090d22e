"""Graded verdicts on a search result, and the open-set calibration they are read from.

A result is graded from the scores a search reports for it:

* ``copy``: the image survives almost unchanged. Its image score reaches the copy threshold,
  set from near-duplicates (re-encoded, resized, slightly cropped originals) of the calibration
  collection, and never below the strictest derived threshold.
* ``derived``: the score of the query's task reaches the threshold that at most ``rate`` (1% by
  default) of queries whose original is NOT in the index reach with their best result.
* ``related``: not derived, but the prompt matches the caption (the text score reaches the text
  task's derived threshold) or the task score reaches what a quarter of such queries reach:
  same subject or style, no evidence that the image comes from it.
* ``unrelated``: none of these.

Each verdict carries the score that decided it, its threshold and the calibrated probability
that the result is the query's original (isotonic regression on the calibration queries, with
as many queries without an original in the index as with one).

**Background-normalised decisions** (image and image + prompt searches of a calibrated
collection; SSCD's score normalisation): some queries are close to many originals (a plain
shape, a generic prompt), others to none. The decision then compares ``score - weight *
background`` with the calibrated threshold, where ``background`` is the query's score at rank
``BACKGROUND_RANK`` of the same search: what an unrelated original of this collection scores for
this query. The verdict reports the threshold back in plain score units for that query
(``threshold + weight * background``). The collection's calibration keeps it per task only
where it recalls more of its own queries (:mod:`artsim.index.calibrate`). Rank and weight were
chosen on the demo collection; measured on fresh demo queries at the 1% rate, recall rose from
0.32 to 0.46 (image) and from 0.35 to 0.47 (image + prompt) (BENCHMARKS.md, Verdicts).

The calibration is plain JSON (``OpenSetCalibration.to_json``); it lives in ``index.json`` when
fitted on the indexed collection (``artsim index build`` / ``artsim calibrate``) and in a run's
``calibration.json`` under ``open_set`` when fitted by ``artsim evaluate`` on the calibration
part of the split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from artsim.verdicts.openset import (
    DEFAULT_RATE,
    OPEN_SET_RATES,
    fit_isotonic,
    isotonic_probability,
    open_set_thresholds,
)

VERDICT_COPY = "copy"
VERDICT_DERIVED = "derived"
VERDICT_RELATED = "related"
VERDICT_UNRELATED = "unrelated"
VERDICT_UNCALIBRATED = "uncalibrated"
# a result whose original's picture is (almost) one colour, on a task that reads the picture:
# its score says nothing (artsim.index.query.blank_original)
VERDICT_UNINFORMATIVE = "uninformative"
GRADES = (VERDICT_COPY, VERDICT_DERIVED, VERDICT_RELATED, VERDICT_UNRELATED)
# what a quarter of queries with no original in the index reach: the weak "related" evidence
RELATED_RATE = 0.25
# the share of near-duplicates the copy threshold keeps
COPY_RECALL = 0.9
# background normalisation: the query's score at this rank (1 = best) of the same search, taken
# this many times from every score before it is compared with the threshold
BACKGROUND_RANK = 4
# results below the first get a probability of their own, fitted on ranks 2 .. this one
PROBABILITY_DEPTH = 10
BACKGROUND_WEIGHT = 1.0
NORMALISED_TASKS = ("image", "fused")

VERDICT_WORDS = {
    "en": {
        VERDICT_COPY: "copy",
        VERDICT_DERIVED: "derived",
        VERDICT_RELATED: "related",
        VERDICT_UNRELATED: "unrelated",
        VERDICT_UNCALIBRATED: "uncalibrated",
        VERDICT_UNINFORMATIVE: "uninformative",
    },
    "es": {
        VERDICT_COPY: "copia",
        VERDICT_DERIVED: "derivada",
        VERDICT_RELATED: "relacionada",
        VERDICT_UNRELATED: "no relacionada",
        VERDICT_UNCALIBRATED: "sin calibrar",
        VERDICT_UNINFORMATIVE: "sin información",
    },
}


@dataclass(frozen=True)
class Verdict:
    """A graded verdict: which grade, the score that decided it, its threshold, the probability
    that the result is the query's original."""

    verdict: str
    decided_by: str
    score: float
    threshold: float | None
    probability: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TaskCalibration:
    """Open-set figures of one task: thresholds per distractor rate, probability table, sizes."""

    thresholds: dict[str, dict[str, float]]
    probability: dict[str, list[float]]
    n_matches: int
    n_distractors: int
    # 0: plain scores; else thresholds and probabilities are on ``score - background_weight *
    # (the query's score at rank background_rank)`` (see the module docstring)
    background_rank: int = 0
    background_weight: float = 0.0
    # the probability that a result at rank 2 .. PROBABILITY_DEPTH is the query's original, by
    # its score: fitted on those ranks of the same queries (at most one result of a search is
    # the original, so ``probability``, fitted on the best result, would overrate every result
    # below it); empty for a calibration made before it was kept
    lower_ranks: dict[str, list[float]] = field(default_factory=dict)

    def probability_at(self, decision: float, rank: int = 1) -> float | None:
        """The calibrated probability that a result of this ``rank`` (1 = best) whose decision
        score is ``decision`` is the query's original (None when not calibrated for it)."""
        if rank <= 1:
            return isotonic_probability(self.probability, decision)
        if rank > PROBABILITY_DEPTH or not self.lower_ranks:
            return None
        return isotonic_probability(self.lower_ranks, decision)

    def threshold(self, rate: float) -> float | None:
        value = self.thresholds.get(f"{rate:g}", {}).get("threshold")
        return None if value is None or not np.isfinite(value) else float(value)

    @property
    def normalised(self) -> bool:
        return self.background_rank > 0 and self.background_weight != 0.0

    def shift(self, background: float | None) -> float | None:
        """What the background takes from a score before it meets the thresholds (0 for plain
        scores); None when the task is normalised and the background is unknown."""
        if not self.normalised:
            return 0.0
        if background is None or not np.isfinite(background):
            return None
        return self.background_weight * float(background)


@dataclass(frozen=True)
class OpenSetCalibration:
    """Everything grading needs, and a description of where it was measured."""

    model_id: str
    rate: float = DEFAULT_RATE
    tasks: dict[str, TaskCalibration] = field(default_factory=dict)
    copy: dict[str, float] | None = None
    about: dict[str, Any] = field(default_factory=dict)
    # how image queries were scored when the thresholds were fitted: the crops embedded beside
    # the whole picture and their margin (artsim.index.crops.QueryCrops.to_json); None: whole only
    query_crops: dict[str, Any] | None = None

    def grade(
        self,
        task: str,
        score: float,
        scores: dict[str, float],
        background: float | None = None,
        rank: int = 1,
    ) -> Verdict:
        """The graded verdict of one result of a ``task`` search (see the module docstring);
        ``background``: the query's score at ``BACKGROUND_RANK`` in the same search, needed when
        the task is background-normalised (without it only ``copy``, on the plain image score, can
        be given; anything else is ``uncalibrated``). ``rank``: the result's place in its search
        (1 = best; a pair scored alone is 1), which its probability depends on."""
        calibration = self.tasks.get(task)
        threshold = calibration.threshold(self.rate) if calibration else None
        shift = calibration.shift(background) if calibration else None
        if calibration is None or threshold is None:
            return Verdict(VERDICT_UNCALIBRATED, task, score, None, None)
        # the copy grade reads the copy descriptor's score where the model has one (a paired
        # tower), else the image score
        on = self.copy_score
        copy = self.copy and on in scores and scores[on] >= self.copy["threshold"]
        if shift is None:
            # the background is unknown, but the copy grade is on a plain score
            if copy:
                return Verdict(VERDICT_COPY, on, scores[on], self.copy["threshold"], None)
            return Verdict(VERDICT_UNCALIBRATED, task, score, None, None)
        decision = score - shift
        probability = calibration.probability_at(decision, rank)
        if copy:
            return Verdict(VERDICT_COPY, on, scores[on], self.copy["threshold"], probability)
        if decision >= threshold:
            return Verdict(VERDICT_DERIVED, task, score, threshold + shift, probability)
        text = self.tasks.get("text")
        text_threshold = text.threshold(self.rate) if text and not text.normalised else None
        if (
            task != "text"
            and text_threshold is not None
            and scores.get("text", -2.0) >= text_threshold
        ):
            return Verdict(VERDICT_RELATED, "text", scores["text"], text_threshold, probability)
        related = calibration.threshold(RELATED_RATE)
        if related is not None and decision >= related:
            return Verdict(VERDICT_RELATED, task, score, related + shift, probability)
        return Verdict(VERDICT_UNRELATED, task, score, threshold + shift, probability)

    @property
    def copy_score(self) -> str:
        """The score the ``copy`` grade reads: ``copy`` when it was calibrated on the copy
        descriptor's score (``copy["on_copy_score"]``), else ``image``."""
        return "copy" if (self.copy or {}).get("on_copy_score") else "image"

    def derived_threshold(self, task: str, background: float | None = None) -> float | None:
        """The score a result of this query needs to be called derived, in plain score units."""
        calibration = self.tasks.get(task)
        threshold = calibration.threshold(self.rate) if calibration else None
        shift = calibration.shift(background) if calibration else None
        return None if threshold is None or shift is None else threshold + shift

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "rate": self.rate,
            "tasks": {name: asdict(task) for name, task in self.tasks.items()},
            "copy": self.copy,
            "about": self.about,
            "query_crops": self.query_crops,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> OpenSetCalibration:
        """Read :meth:`to_json`'s output; raises ``KeyError``/``TypeError``/``ValueError`` when
        it is not that."""
        tasks = {
            str(name): TaskCalibration(
                thresholds={
                    str(rate): {str(k): float(v) for k, v in values.items() if v is not None}
                    for rate, values in task["thresholds"].items()
                },
                probability={
                    "x": [float(v) for v in task["probability"]["x"]],
                    "y": [float(v) for v in task["probability"]["y"]],
                },
                n_matches=int(task["n_matches"]),
                n_distractors=int(task["n_distractors"]),
                background_rank=int(task.get("background_rank", 0)),
                background_weight=float(task.get("background_weight", 0.0)),
                lower_ranks={
                    str(key): [float(v) for v in values]
                    for key, values in (task.get("lower_ranks") or {}).items()
                },
            )
            for name, task in raw["tasks"].items()
        }
        copy = raw.get("copy")
        if copy is not None:
            copy = {str(k): float(v) for k, v in copy.items() if v is not None}
        return cls(
            model_id=str(raw["model_id"]),
            rate=float(raw.get("rate", DEFAULT_RATE)),
            tasks=tasks,
            copy=copy,
            about=dict(raw.get("about") or {}),
            query_crops=raw.get("query_crops"),
        )


def fit_task(
    match_top1: np.ndarray,
    match_correct: np.ndarray,
    distractor_top1: np.ndarray,
    rates=(*OPEN_SET_RATES, RELATED_RATE),
    confidence: float | None = None,
    background_rank: int = 0,
    background_weight: float = 0.0,
    lower: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> TaskCalibration:
    """Thresholds and the probability tables of one task from its calibration queries
    (``confidence``: thresholds whose rates hold with it, see
    :func:`artsim.verdicts.openset.open_set_threshold`). With ``background_rank``, the scores given
    are already background-normalised (``score - background_weight * background``).

    The probability is fitted with distractor queries weighted to count as much, together, as
    the matched ones: it reads "with even odds that the original is indexed". ``lower``: the
    scores of the results at ranks 2 .. :data:`PROBABILITY_DEPTH` of the match queries, whether
    each is the original, and those of the distractor queries (normalised like the others);
    they give the probability of results below the first (:attr:`TaskCalibration.lower_ranks`).
    """
    match_top1 = np.asarray(match_top1, dtype=np.float64)
    match_correct = np.asarray(match_correct, dtype=bool)
    distractor_top1 = np.asarray(distractor_top1, dtype=np.float64)
    thresholds = open_set_thresholds(
        match_top1, match_correct, distractor_top1, rates, confidence=confidence
    )
    # weighted so both kinds of query count alike, whatever their numbers
    n_m, n_d = len(match_top1), len(distractor_top1)
    if n_m and n_d:
        probability = fit_isotonic(
            np.concatenate([match_top1, distractor_top1]),
            np.concatenate([match_correct, np.zeros(n_d, bool)]),
            np.concatenate([np.ones(n_m), np.full(n_d, n_m / n_d)]),
        )
    else:
        probability = {"x": [], "y": []}
    lower_ranks: dict[str, list[float]] = {}
    if lower is not None and n_m and n_d:
        scores, correct, away = (np.asarray(part, dtype=np.float64) for part in lower)
        kept = np.isfinite(scores)
        scores, correct, away = scores[kept], correct[kept], away[np.isfinite(away)]
        if len(scores) and len(away):
            # each query counts as much as in the best-result table: its ranks share its weight
            lower_ranks = fit_isotonic(
                np.concatenate([scores, away]),
                np.concatenate([correct.astype(bool), np.zeros(len(away), bool)]),
                np.concatenate([np.ones(len(scores)), np.full(len(away), len(scores) / len(away))]),
            )
    return TaskCalibration(
        thresholds,
        probability,
        n_m,
        n_d,
        int(background_rank),
        float(background_weight),
        lower_ranks,
    )


def copy_threshold(
    copy_image_scores, floor: float | None, on_copy_score: bool = False
) -> dict[str, float] | None:
    """The score that ``COPY_RECALL`` of near-duplicates reach, never below ``floor``: the image
    score, or (``on_copy_score``) the copy descriptor's score, then marked ``on_copy_score: 1``."""
    values = np.asarray(copy_image_scores, dtype=np.float64)
    if len(values) == 0:
        return None
    threshold = float(np.quantile(values, 1.0 - COPY_RECALL, method="lower"))
    if floor is not None:
        threshold = max(threshold, floor)
    return {
        "threshold": threshold,
        "recall": float((values >= threshold).mean()),
        "n": float(len(values)),
        **({"on_copy_score": 1.0} if on_copy_score else {}),
    }


def confusion(truth: list[str], predicted: list[str]) -> dict[str, dict[str, int]]:
    """Counts of predicted grades per true kind of query: ``{truth: {grade: n}}``."""
    table: dict[str, dict[str, int]] = {}
    for true, guess in zip(truth, predicted, strict=True):
        row = table.setdefault(true, dict.fromkeys((*GRADES, VERDICT_UNCALIBRATED), 0))
        row[guess] = row.get(guess, 0) + 1
    return table
