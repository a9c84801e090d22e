"""Which faiss index a modality gets, and how well it searches: measured, not assumed.

Below ``exact_limit`` vectors (200k by default: about 20 ms per query on 2 cores) a modality
is searched exactly (``IndexFlatIP``). Above it, an ``IndexIVFFlat`` is trained and its
``nprobe`` chosen by measurement: a sample of the collection's own vectors is searched exactly
and through the IVF lists with 1, 2, 4, ... probes, and the smallest ``nprobe`` whose recall@10
reaches ``target`` (0.99) is kept. IVF-Flat keeps full vectors, so the scores of what it finds
are exact; only neighbours in unvisited lists can be missed, and the measured recall says how
often. When no ``nprobe`` up to a quarter of the lists reaches the target (vectors without
cluster structure), IVF would save little: the modality stays exact.

The decision and its measurement form a *plan* (a JSON-ready dict) that the store commits with
its vectors, reports in ``artsim index info`` and in search output, and revisits as the
collection grows or shrinks (:func:`plan_is_stale`).

>>> index, plan = choose_index(keys, vectors, exact_limit=1000)  # doctest: +SKIP
>>> plan["kind"], plan["recall_at_10"]  # doctest: +SKIP
('ivf', 0.994)
"""

from __future__ import annotations

import math

import faiss
import numpy as np

DEFAULT_EXACT_LIMIT = 200_000
TARGET_RECALL = 0.99
SAMPLE_QUERIES = 300
RECALL_K = 10
# grow (or shrink) this much since the last measurement and it is measured again
RETUNE_GROWTH = 1.25
# grow this much since the lists were trained and they are trained again
RETRAIN_GROWTH = 4.0
MAX_PROBE_FRACTION = 4  # nprobe at most nlist / 4


def ivf_list_count(n: int) -> int:
    """About 2 * sqrt(n) lists (16 to 16384): lists of a few hundred vectors at a million."""
    return int(min(max(round(2 * math.sqrt(max(n, 1))), 16), 16_384))


def create_flat_index(dim: int) -> faiss.Index:
    """Exact inner-product search with arbitrary int64 ids."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def create_ivf_index(training: np.ndarray, nlist: int, seed: int = 0) -> faiss.Index:
    """An empty ``IndexIVFFlat`` (inner product) whose lists are trained on ``training``.

    IVF stores the given ids in its inverted lists, so it needs no ``IndexIDMap`` (wrapping one
    around it would break ``remove_ids``, which assumes a compacting inner index). A hash-table
    direct map makes ``reconstruct(id)`` work.
    """
    dim = training.shape[1]
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()  # the IVF index frees its quantizer
    # 50 points per list is plenty for k-means and keeps training to a minute at a million.
    sample_size = min(len(training), 50 * nlist)
    if sample_size < len(training):
        rng = np.random.default_rng(seed)
        training = training[np.sort(rng.choice(len(training), sample_size, replace=False))]
    index.cp.niter = 12
    index.cp.seed = seed
    index.train(np.ascontiguousarray(training, dtype=np.float32))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """Every (key, vector) of a flat or IVF index, for rebuilding it as another kind."""
    if isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        keys = faiss.vector_to_array(index.id_map).astype(np.int64)
        vectors = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else None
    else:
        ivf = faiss.extract_index_ivf(index)
        invlists = ivf.invlists
        key_parts, vector_parts = [], []
        for list_no in range(ivf.nlist):
            size = invlists.list_size(list_no)
            if not size:
                continue
            key_parts.append(
                faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy().astype(np.int64)
            )
            codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * ivf.code_size)
            vector_parts.append(np.frombuffer(codes.copy(), dtype=np.float32).reshape(size, -1))
        keys = np.concatenate(key_parts) if key_parts else np.zeros(0, np.int64)
        vectors = np.concatenate(vector_parts) if vector_parts else None
    if vectors is None:
        vectors = np.zeros((0, index.d), dtype=np.float32)
    return keys, np.asarray(vectors, dtype=np.float32)


def exact_plan(n: int, note: str = "") -> dict:
    """The plan of an exact (flat) modality: recall 1 by construction."""
    plan = {"kind": "flat", "vectors": n, "recall_at_10": 1.0, "measured_at": n}
    if note:
        plan["note"] = note
    return plan


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
) -> float:
    """recall@k of ``index`` against exact results ``truth`` (keys, k + 1 per query)."""
    _, found = index.search(queries, k + 1)
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


def tune_nprobe(
    index: faiss.Index,
    keys: np.ndarray,
    vectors: np.ndarray,
    target: float = TARGET_RECALL,
    seed: int = 0,
) -> dict:
    """Measure recall@10 for nprobe = 1, 2, 4, ... and return the plan of the smallest that
    reaches ``target`` (``reached`` False with the best measured when none up to nlist/4 does).
    Sets ``index.nprobe`` to the chosen value."""
    ivf = faiss.extract_index_ivf(index)
    query_keys, queries = _sample_queries(keys, vectors, seed)
    truth = exact_neighbours(keys, vectors, queries)
    limit = max(1, ivf.nlist // MAX_PROBE_FRACTION)
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


def choose_index(
    keys: np.ndarray,
    vectors: np.ndarray,
    exact_limit: int = DEFAULT_EXACT_LIMIT,
    target: float = TARGET_RECALL,
    seed: int = 0,
) -> tuple[faiss.Index, dict]:
    """Build the index one modality's vectors get, and its measured plan."""
    n, dim = vectors.shape
    if n < exact_limit:
        flat = create_flat_index(dim)
        if n:
            flat.add_with_ids(vectors, keys)
        return flat, exact_plan(n)
    ivf = create_ivf_index(vectors, ivf_list_count(n), seed=seed)
    ivf.add_with_ids(vectors, keys)
    plan = tune_nprobe(ivf, keys, vectors, target, seed)
    plan["trained_at"] = n
    if plan["reached"]:
        return ivf, plan
    flat = create_flat_index(dim)
    flat.add_with_ids(vectors, keys)
    note = (
        f"IVF reached recall@10 {plan['recall_at_10']:.3f} at nprobe {plan['nprobe']} of "
        f"{plan['nlist']} lists, under the target {target}: exact search kept"
    )
    result = exact_plan(n, note)
    result["ivf_tried_at"] = n
    return flat, result


def plan_is_stale(plan: dict | None, n: int, exact_limit: int) -> bool:
    """Whether a modality of ``n`` vectors must be re-planned (re-measured or rebuilt)."""
    if not plan:
        return n >= exact_limit
    if plan["kind"] == "flat":
        tried = plan.get("ivf_tried_at")
        # exact stays right at every size; try IVF again once it is worth it
        return n >= exact_limit and (tried is None or n >= 2 * tried)
    measured = max(int(plan.get("measured_at", 1)), 1)
    return n < exact_limit // 2 or n >= RETUNE_GROWTH * measured or n * RETUNE_GROWTH <= measured


def replan(
    index: faiss.Index,
    plan: dict | None,
    exact_limit: int = DEFAULT_EXACT_LIMIT,
    target: float = TARGET_RECALL,
) -> tuple[faiss.Index, dict]:
    """The index and plan of one modality after a change: the same when still right,
    re-measured when it grew or shrank, rebuilt when IVF's lists no longer fit."""
    n = int(index.ntotal)
    if not plan_is_stale(plan, n, exact_limit):
        if plan and plan["kind"] == "flat":
            return index, {**plan, "vectors": n, "measured_at": n}
        return index, {**plan, "vectors": n} if plan else exact_plan(n)
    keys, vectors = all_vectors(index)
    is_ivf = isinstance(index, faiss.IndexIVF)
    trained = int((plan or {}).get("trained_at", 0))
    if is_ivf and exact_limit // 2 <= n < RETRAIN_GROWTH * max(trained, 1):
        tuned = tune_nprobe(index, keys, vectors, target)
        if tuned["reached"]:
            return index, {**tuned, "trained_at": trained}
    if n < exact_limit:
        flat = create_flat_index(index.d)
        if n:
            flat.add_with_ids(vectors, keys)
        return flat, exact_plan(n)
    return choose_index(keys, vectors, exact_limit, target)


def apply_plan(index: faiss.Index, plan: dict | None) -> None:
    """Set the search parameters a plan chose on a freshly read index."""
    if plan and plan.get("kind") == "ivf" and isinstance(index, faiss.IndexIVF):
        index.nprobe = int(plan["nprobe"])


def plan_of(index: faiss.Index) -> dict:
    """What a plan can say of an index that came without one (made before plans existed)."""
    if not isinstance(index, faiss.IndexIVF):
        return exact_plan(int(index.ntotal))
    return {
        "kind": "ivf",
        "vectors": int(index.ntotal),
        "nlist": int(index.nlist),
        "nprobe": int(index.nprobe),
        "recall_at_10": None,
        "note": "built before recall was measured: measured at the next change",
    }


def describe_plan(plan: dict | None) -> str:
    """One line for people: ``exact (flat)`` or ``IVF 632 lists, nprobe 16: recall@10 0.994``."""
    if not plan or plan.get("kind") == "flat":
        return "exact (flat)"
    if plan.get("recall_at_10") is None:
        return f"IVF {plan['nlist']} lists, nprobe {plan['nprobe']}: recall not measured"
    return (
        f"IVF {plan['nlist']} lists, nprobe {plan['nprobe']}: recall@10 "
        f"{plan['recall_at_10']:.3f} measured on {plan['sample']} of its vectors"
    )
