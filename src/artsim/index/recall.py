"""How well an index finds the exact neighbours: the measurement every search plan is chosen by.

A sample of the collection's own vectors (``SAMPLE_QUERIES``) is searched exactly and with the
index; recall@10 (each query's own key left out) is the share of the exact neighbours found.
:func:`tune_nprobe` and :func:`tune_rerank` find the cheapest IVF probe count or PQ re-rank list
that reaches the target (:mod:`artsim.index.vector_index` builds the indexes and keeps the plan).
In an 8-bit index the truth is exact search over what the index holds (``held``), so the figure
measures the search, not the storage (:mod:`artsim.index.storage`).
"""

from __future__ import annotations

import faiss
import numpy as np

from artsim.index.pq_refine import refine_stage, set_rerank

TARGET_RECALL = 0.99
SAMPLE_QUERIES = 300
RECALL_K = 10
MAX_PROBE_FRACTION = 4  # nprobe at most nlist / 4
RERANK_LENGTHS = (20, 50, 100, 200, 500, 1000, 2000, 4000)
MAX_RERANK_FRACTION = 16  # re-rank at most n / 16 candidates


def _sample_queries(keys: np.ndarray, vectors: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    count = min(SAMPLE_QUERIES, len(keys))
    rows = np.sort(rng.choice(len(keys), count, replace=False))
    return keys[rows], np.ascontiguousarray(vectors[rows])


def _without_self(found: np.ndarray, own_key: int, k: int) -> np.ndarray:
    """The top ``k`` of a result row, leaving out the query's own key (it always finds itself)."""
    row = found[(found != own_key) & (found >= 0)]
    return row[:k]


def measure_recall(
    index: faiss.Index,
    query_keys: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    k: int = RECALL_K,
    params: faiss.SearchParameters | None = None,
) -> float:
    """recall@k of ``index`` against exact results ``truth`` (keys, k + 1 per query)."""
    _, found = index.search(queries, k + 1, params=params)
    hits = total = 0
    for own, approximate, exact in zip(query_keys, found, truth, strict=True):
        expected = _without_self(exact, own, k)
        hits += len(np.intersect1d(_without_self(approximate, own, k), expected))
        total += len(expected)
    return hits / total if total else 1.0


def exact_neighbours(
    keys: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int = RECALL_K
) -> np.ndarray:
    """Keys of the exact top ``k + 1`` of each query (the ground truth of a measurement)."""
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    _, rows = flat.search(queries, k + 1)
    return np.where(rows >= 0, keys[np.clip(rows, 0, None)], -1)


def _sample(
    keys: np.ndarray, vectors: np.ndarray, seed: int, held: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """(query keys, queries, their exact neighbours): what every measurement compares with.
    ``held``: the vectors as the index holds them (8-bit codes decoded), searched exactly for
    the truth, so that recall measures the search and not the storage."""
    query_keys, queries = _sample_queries(keys, vectors, seed)
    return query_keys, queries, exact_neighbours(keys, vectors if held is None else held, queries)


def tune_nprobe(
    index: faiss.Index,
    keys: np.ndarray,
    vectors: np.ndarray,
    target: float = TARGET_RECALL,
    seed: int = 0,
    *,
    probe_fraction: int = MAX_PROBE_FRACTION,
    sample: tuple[np.ndarray, ...] | None = None,
) -> dict:
    """Measure recall@10 for nprobe = 1, 2, 4, ... and return the plan of the smallest that
    reaches ``target`` (``reached`` False with the best measured when none up to
    nlist / ``probe_fraction`` does). Sets ``index.nprobe`` to the chosen value."""
    ivf = faiss.extract_index_ivf(index)
    query_keys, queries, truth = sample or _sample(keys, vectors, seed)
    limit = max(1, ivf.nlist // probe_fraction)
    nprobe, recall = 1, 0.0
    while True:
        ivf.nprobe = nprobe
        recall = measure_recall(index, query_keys, queries, truth)
        if recall >= target or nprobe >= limit:
            break
        nprobe = min(nprobe * 2, limit)
    return {
        "kind": "ivf",
        "vectors": len(keys),
        "nlist": int(ivf.nlist),
        "nprobe": int(nprobe),
        "recall_at_10": round(recall, 4),
        "sample": len(query_keys),
        "target": target,
        "reached": recall >= target,
        "measured_at": len(keys),
    }


def tune_rerank(
    index: faiss.Index,
    keys: np.ndarray,
    vectors: np.ndarray,
    target: float = TARGET_RECALL,
    seed: int = 0,
    *,
    sample: tuple[np.ndarray, ...] | None = None,
) -> dict:
    """Measure recall@10 of a PQ + re-rank index for re-ranked lists of 20, 50, 100, ...
    candidates (at most n / 16) and return the plan of the shortest that reaches ``target``
    (``reached`` False with the longest measured when none does)."""
    query_keys, queries, truth = sample or _sample(keys, vectors, seed)
    n = len(keys)
    lengths = [r for r in RERANK_LENGTHS if r <= n // MAX_RERANK_FRACTION] or [RERANK_LENGTHS[0]]
    rerank, recall = lengths[0], 0.0
    for rerank in lengths:
        # k + 1 results (the query's own key is left out) from a list of ``rerank`` candidates
        params = faiss.IndexRefineSearchParameters(k_factor=rerank / (RECALL_K + 1))
        recall = measure_recall(index, query_keys, queries, truth, params=params)
        if recall >= target:
            break
    set_rerank(index, rerank)
    stage = refine_stage(index)
    pq = faiss.downcast_index(stage.base_index).pq
    return {
        "kind": "pq",
        "vectors": n,
        "pq_m": int(pq.M),
        "pq_bits": int(pq.nbits),
        "rerank": int(rerank),
        "recall_at_10": round(recall, 4),
        "sample": len(query_keys),
        "target": target,
        "reached": recall >= target,
        "measured_at": n,
    }
