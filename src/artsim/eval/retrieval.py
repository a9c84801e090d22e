"""The retrieval evaluator: how well the trained model finds each query's original, per task
and per query language, and the top-5 lists the report's gallery shows."""

from __future__ import annotations

from typing import Any

import numpy as np

from artsim.eval.result import RetrievalResult
from artsim.eval.tasks import EvalInputs, retrieval_figures, top_k

__all__ = ["evaluate_retrieval", "top5_lists"]


def _lang(item) -> str:
    return item.lang or "unknown"


def evaluate_retrieval(inputs: EvalInputs) -> RetrievalResult:
    """Recall@k, MRR, mAP and the triplet accuracies of every task, over all its queries and
    over the queries of each language (every language of the queries, in every task).
    """
    seed = inputs.seed
    tasks = {
        task: retrieval_figures(task, run.similarity, run.data, seed)
        for task, run in inputs.tasks.items()
    }
    langs = sorted({_lang(inputs.items[row]) for row in inputs.query_rows})
    by_lang: dict[str, dict[str, Any]] = {lang: {} for lang in langs}
    for task, run in inputs.tasks.items():
        query_langs = inputs.query_values(task, _lang)
        for lang in langs:
            rows = np.nonzero(query_langs == lang)[0]
            by_lang[lang][task] = retrieval_figures(task, run.similarity, run.data, seed, rows)
    return RetrievalResult(tasks, by_lang)


def top5_lists(inputs: EvalInputs) -> dict[str, list[dict[str, Any]]]:
    """Per task, each query's five best originals with their scores and its original's rank."""
    return {
        task: top_k(run.similarity, run.data, inputs.embedded) for task, run in inputs.tasks.items()
    }
