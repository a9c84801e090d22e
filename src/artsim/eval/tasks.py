"""The five retrieval tasks (image, text, i2t, t2i, fused): queries, gallery, similarities and
their retrieval and verification figures.

:class:`EvalInputs` is what every evaluator of :mod:`artsim.eval.evaluate` reads: the items, their
embeddings and each task ready to measure (:class:`TaskRun`: queries, gallery, the trained
model's similarity and the frozen towers'). The frozen fused baseline needs no training: the plain
average of the frozen image cosine and the frozen text cosine (the image cosine alone where either
side has no text).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from artsim.data.manifest.items import Item
from artsim.eval.embedding import Embedded, normalise_rows
from artsim.eval.metrics import FPR_TARGETS, RetrievalEvaluator, VerificationEvaluator, nest

TASKS = ("image", "text", "i2t", "t2i", "fused")
RETRIEVAL_METRICS = (
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr",
    "map",
    "triplet_acc",
    "triplet_acc_hard",
)
TOP_K = 5
# ROC curves are thinned to this many points in the curves file: enough for a plot.
ROC_POINTS = 200

SKIP_QUERY_TEXT = "query has no text (left out of text, t2i)"
SKIP_ORIGINAL_TEXT = "original has no caption (left out of text, i2t)"


@dataclass(frozen=True)
class TaskSpec:
    """A retrieval task: which space the queries and the gallery are embedded in."""

    query_space: str  # "image", "text" or "fused"
    gallery_space: str
    query_needs_text: bool
    gallery_needs_text: bool


TASK_SPECS = {
    "image": TaskSpec("image", "image", False, False),
    "text": TaskSpec("text", "text", True, True),
    "i2t": TaskSpec("image", "text", False, True),
    "t2i": TaskSpec("text", "image", True, False),
    "fused": TaskSpec("fused", "fused", False, False),
}


@dataclass
class TaskData:
    """Queries and gallery of one task, as row numbers into :class:`Embedded`."""

    queries: np.ndarray
    gallery: np.ndarray
    correct: np.ndarray  # per query, the gallery position of its (first) original
    relevant: np.ndarray  # queries x gallery, True for the originals of the query's group
    skipped: dict[str, int]


def build_task(spec: TaskSpec, embedded: Embedded, query_rows: Sequence[int]) -> TaskData:
    """The queries and gallery of a task: items without the text a task needs drop out."""
    items, has_text = embedded.items, embedded.has_text
    gallery = [
        row
        for row, item in enumerate(items)
        if item.is_original and (has_text[row] or not spec.gallery_needs_text)
    ]
    position_by_group: dict[str, list[int]] = {}
    for position, row in enumerate(gallery):
        position_by_group.setdefault(items[row].group, []).append(position)
    skipped: dict[str, int] = {}
    kept = []
    for row in query_rows:
        if spec.query_needs_text and not has_text[row]:
            skipped[SKIP_QUERY_TEXT] = skipped.get(SKIP_QUERY_TEXT, 0) + 1
        elif items[row].group not in position_by_group:
            skipped[SKIP_ORIGINAL_TEXT] = skipped.get(SKIP_ORIGINAL_TEXT, 0) + 1
        else:
            kept.append(row)
    relevant = np.zeros((len(kept), len(gallery)), dtype=bool)
    correct = np.zeros(len(kept), dtype=np.int64)
    for index, row in enumerate(kept):
        positions = position_by_group[items[row].group]
        relevant[index, positions] = True
        correct[index] = positions[0]
    return TaskData(
        np.asarray(kept, dtype=np.int64), np.asarray(gallery, np.int64), correct, relevant, skipped
    )


def task_similarity(
    spec: TaskSpec, embedded: Embedded, data: TaskData, raw: bool = False
) -> np.ndarray:
    """Cosine similarity of the task's queries against its gallery."""
    queries = embedded.space(spec.query_space, raw)[data.queries]
    gallery = embedded.space(spec.gallery_space, raw)[data.gallery]
    if raw:  # tower features are not always unit length
        queries, gallery = normalise_rows(queries), normalise_rows(gallery)
    return np.asarray(queries, dtype=np.float64) @ np.asarray(gallery, dtype=np.float64).T


def raw_text_similarity(embedded: Embedded, data: TaskData) -> np.ndarray:
    """Frozen text cosines of the task's queries and gallery (zero where a side has no text)."""
    features = normalise_rows(embedded.text_features) * embedded.has_text[:, None]
    queries = np.asarray(features[data.queries], dtype=np.float64)
    return queries @ np.asarray(features[data.gallery], dtype=np.float64).T


def retrieval_figures(
    name: str, similarity: np.ndarray, data: TaskData, seed: int, rows: np.ndarray | None = None
) -> dict[str, Any]:
    """The retrieval metrics of a task (optionally of a subset of its queries), unprefixed."""
    if rows is not None:
        similarity, correct, relevant = similarity[rows], data.correct[rows], data.relevant[rows]
    else:
        correct, relevant = data.correct, data.relevant
    if len(correct) == 0:
        return {**dict.fromkeys(RETRIEVAL_METRICS), "n_queries": 0}
    evaluator = RetrievalEvaluator(name, seed=seed)
    return nest(evaluator(similarity, correct, relevant), name)


def verification_figures(name: str, similarity: np.ndarray, data: TaskData) -> dict[str, Any]:
    """ROC-AUC and thresholds at the target false-positive rates, nested and unprefixed."""
    if len(data.correct) == 0:
        empty = {"threshold": None, "precision": None, "recall": None, "fpr": None}
        return {"roc_auc": None, **{f"at_fpr_{t:g}": dict(empty) for t in FPR_TARGETS}}
    return nest(VerificationEvaluator(name)(similarity, data.correct, data.relevant), name)


def top_k(
    similarity: np.ndarray, data: TaskData, embedded: Embedded, k: int = TOP_K
) -> list[dict[str, Any]]:
    items = embedded.items
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    out = []
    for index, row in enumerate(data.queries):
        positive = similarity[index, data.correct[index]]
        rank = 1 + int((similarity[index] > positive).sum())
        out.append(
            {
                "query": items[row].id,
                "correct": [items[data.gallery[p]].id for p in np.nonzero(data.relevant[index])[0]],
                "rank": rank,
                "top": [
                    {
                        "id": items[data.gallery[p]].id,
                        "score": float(similarity[index, p]),
                        "hit": bool(data.relevant[index, p]),
                    }
                    for p in order[index]
                ],
            }
        )
    return out


def thin_curve(curve: dict[str, list[float]], points: int = ROC_POINTS) -> dict[str, list[float]]:
    n = len(curve["fpr"])
    if n <= points:
        keep = range(n)
    else:
        keep = sorted(set(np.linspace(0, n - 1, points).round().astype(int).tolist()))
    return {
        key: [values[i] if math.isfinite(values[i]) else None for i in keep]
        for key, values in curve.items()
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


def frozen_similarity(task: str, embedded: Embedded, data: TaskData) -> np.ndarray | None:
    """The frozen towers' cosine similarity of a task (before any training); ``None`` for the
    cross-modal tasks: the two towers share no feature space."""
    if task in ("image", "text"):
        return task_similarity(TASK_SPECS[task], embedded, data, raw=True)
    if task == "fused":
        return frozen_fused_similarity(
            task_similarity(TASK_SPECS["image"], embedded, data, raw=True),
            raw_text_similarity(embedded, data),
            embedded.has_text[data.queries],
            embedded.has_text[data.gallery],
        )
    return None


@dataclass
class TaskRun:
    """One task ready to measure: its queries and gallery, the trained model's similarity and
    the frozen towers' (``None`` where there is no frozen baseline)."""

    data: TaskData
    similarity: np.ndarray
    frozen: np.ndarray | None


@dataclass
class EvalInputs:
    """What every evaluator reads: the items evaluated, their embeddings and perceptual hashes,
    the rows of the queries, each task (in :data:`TASKS` order) and the seed of the random
    negatives."""

    items: Sequence[Item]
    embedded: Embedded
    bits: np.ndarray
    query_rows: Sequence[int]
    tasks: dict[str, TaskRun]
    seed: int

    def gallery_groups(self, task: str) -> list[str]:
        """The group of each original in a task's gallery."""
        return [self.items[row].group for row in self.tasks[task].data.gallery]

    def query_values(self, task: str, value) -> np.ndarray:
        """``value(item)`` of each query of a task, as an array (its language, its pattern)."""
        return np.array([value(self.items[row]) for row in self.tasks[task].data.queries])


def task_runs(
    embedded: Embedded, query_rows: Sequence[int]
) -> tuple[dict[str, TaskRun], dict[str, int]]:
    """Every task built on the query rows, and the queries each left out (``"task: reason"``)."""
    runs, skipped = {}, {}
    for task, spec in TASK_SPECS.items():
        data = build_task(spec, embedded, query_rows)
        for reason, count in data.skipped.items():
            skipped[f"{task}: {reason}"] = count
        runs[task] = TaskRun(
            data, task_similarity(spec, embedded, data), frozen_similarity(task, embedded, data)
        )
    return runs, skipped
