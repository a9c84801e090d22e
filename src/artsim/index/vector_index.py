"""Which faiss index a modality gets, and how well it searches: measured, not assumed.

Below ``exact_limit`` vectors (200k by default: about 20 ms per query on 2 cores) a modality
is searched exactly (``IndexFlatIP``). Above it, approximate indexes are built and measured on
a sample of the collection's own vectors (300, searched exactly and approximately; their own
key left out); each gets the cheapest search parameters whose recall@10 reaches ``target``
(0.99):

1. ``IndexIVFFlat``: the smallest ``nprobe`` of 1, 2, 4, ... up to a quarter of its lists. Kept
   at once when it probes at most 1/32 of them (clustered vectors: nothing is faster);
2. otherwise a PQ fast-scan first pass over every vector (4-bit codes, ``dim / 4`` sub-quantizers,
   then ``dim / 2`` if those miss) with exact re-ranking of the shortest list (20 ... 4000
   candidates, at most 1/16 of the collection) that reaches the target
   (:mod:`artsim.index.pq_refine`): works on vectors without cluster structure, where IVF
   cannot partition. Of the measured plans that reach the target, the one reading the fewest
   bytes per query (:func:`bytes_read`) is kept;
3. exact search when none does, with a note saying what was tried and the recall measured.

Every kind keeps every dimension of the vectors and scores what it finds against them; only a
true neighbour can be missed, and the measured recall says how often. Every kind supports
removal. From ``int8_from`` vectors (20,000) on, each kind holds its vectors in one byte a
dimension instead of four (:mod:`artsim.index.storage`): scores then move by at most a few
thousandths, and the recall measured is that of the 8-bit index.

The measurement itself is :mod:`artsim.index.recall`'s. The decision and its measurement form a
*plan* (a JSON-ready dict) that the store commits with its vectors, reports in ``artsim index
info`` and in search output, and revisits as the collection grows or shrinks
(:func:`plan_is_stale`).

>>> rng = np.random.default_rng(0)
>>> vectors = rng.standard_normal((2000, 16)).astype(np.float32)
>>> vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
>>> index, plan = choose_index(np.arange(2000), vectors, exact_limit=1000)
>>> plan["kind"] in APPROXIMATE_KINDS, plan["recall_at_10"] >= TARGET_RECALL
(True, True)
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from artsim.index import storage
from artsim.index.pq_refine import (
    create_refine_index,
    pq_sub_quantizers,
    refine_stage,
    refine_vectors,
    remove_refine_keys,
    search_parameters,
    set_rerank,
)
from artsim.index.recall import (
    MAX_PROBE_FRACTION,
    TARGET_RECALL,
    _sample,
    tune_nprobe,
    tune_rerank,
)

DEFAULT_EXACT_LIMIT = 200_000
# grow (or shrink) this much since the last measurement and it is measured again
RETUNE_GROWTH = 1.25
# grow this much since the lists were trained and they are trained again
RETRAIN_GROWTH = 4.0
# IVF probing at most nlist / 32 reads no more than the PQ pass (dim / 8 bytes a vector)
CHEAP_PROBE_FRACTION = 32
PQ_SUB_DIMS = (4, 2)  # dimensions per sub-quantizer, coarse (fast) first
APPROXIMATE_KINDS = ("ivf", "pq")


def ivf_list_count(n: int) -> int:
    """About 2 * sqrt(n) lists (16 to 16384): lists of a few hundred vectors at a million."""
    return int(min(max(round(2 * math.sqrt(max(n, 1))), 16), 16_384))


def create_flat_index(dim: int) -> faiss.Index:
    """Exact inner-product search with arbitrary int64 ids."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def create_ivf_index(
    training: np.ndarray, nlist: int, seed: int = 0, *, ranges: np.ndarray | None = None
) -> faiss.Index:
    """An empty ``IndexIVFFlat`` (inner product) whose lists are trained on ``training``
    (given 8-bit ``ranges``: an ``IndexIVFScalarQuantizer`` holding 8-bit codes with them).

    IVF stores the given ids in its inverted lists, so it needs no ``IndexIDMap`` (wrapping one
    around it would break ``remove_ids``, which assumes a compacting inner index). A hash-table
    direct map makes ``reconstruct(id)`` work.
    """
    dim = training.shape[1]
    quantizer = faiss.IndexFlatIP(dim)
    if ranges is not None:
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT, False
        )
    else:
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
    if ranges is not None:  # the ranges of all the vectors, not of the k-means sample
        storage.set_ranges(index.sq, ranges)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """Every (key, vector) of a flat, IVF or PQ + re-rank index, for rebuilding it."""
    if refine_stage(index) is not None:
        keys = faiss.vector_to_array(index.id_map).astype(np.int64)
        vectors = refine_vectors(index)
    elif isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        keys = faiss.vector_to_array(index.id_map).astype(np.int64)
        vectors = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else None
    else:
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        invlists = ivf.invlists
        key_parts, vector_parts = [], []
        for list_no in range(ivf.nlist):
            size = invlists.list_size(list_no)
            if not size:
                continue
            key_parts.append(
                faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy().astype(np.int64)
            )
            codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * ivf.code_size).copy()
            if isinstance(ivf, faiss.IndexIVFScalarQuantizer):
                vector_parts.append(ivf.sq.decode(codes.reshape(size, -1)))
            else:
                vector_parts.append(np.frombuffer(codes, dtype=np.float32).reshape(size, -1))
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


def remove_keys(index: faiss.Index, keys: np.ndarray) -> int:
    """Remove ``keys`` from an index of any kind this module builds; the number removed."""
    keys = np.asarray(keys, dtype=np.int64)
    if refine_stage(index) is not None:
        return remove_refine_keys(index, keys)
    return int(index.remove_ids(keys))


def search(
    index: faiss.Index, queries: np.ndarray, k: int, plan: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, keys) of the top ``k`` of each query, with the plan's search parameters."""
    if plan and plan.get("kind") == "pq" and refine_stage(index) is not None:
        return index.search(queries, k, params=search_parameters(int(plan["rerank"]), k))
    return index.search(queries, k)


def _flat(keys: np.ndarray, vectors: np.ndarray, ranges: np.ndarray | None = None) -> faiss.Index:
    if ranges is not None:
        flat = faiss.IndexIDMap2(storage.int8_codes(vectors.shape[1], ranges))
    else:
        flat = create_flat_index(vectors.shape[1])
    if len(keys):
        flat.add_with_ids(vectors, keys)
    return flat


def _ivf(keys, vectors, target, seed, sample, probe_fraction, ranges) -> tuple[faiss.Index, dict]:
    ivf = create_ivf_index(vectors, ivf_list_count(len(keys)), seed=seed, ranges=ranges)
    ivf.add_with_ids(vectors, keys)
    plan = tune_nprobe(
        ivf, keys, vectors, target, seed, probe_fraction=probe_fraction, sample=sample
    )
    stored = storage.storage_part(ranges is not None, len(keys))
    return ivf, {**plan, "trained_at": len(keys), **stored}


def _pq(keys, vectors, m, target, seed, sample, ranges) -> tuple[faiss.Index, dict]:
    index = create_refine_index(vectors, m, seed=seed, ranges=ranges)
    index.add_with_ids(vectors, keys)
    plan = tune_rerank(index, keys, vectors, target, seed, sample=sample)
    stored = storage.storage_part(ranges is not None, len(keys))
    return index, {**plan, "trained_at": len(keys), **stored}


def flat_with_plan(
    keys: np.ndarray, vectors: np.ndarray, int8_from: int = storage.DEFAULT_INT8_FROM, note=""
) -> tuple[faiss.Index, dict]:
    """An exact index of these vectors, 8-bit from ``int8_from`` of them, and its plan."""
    int8 = storage.wants_int8(len(keys), int8_from, now_int8=False)
    plan = {**exact_plan(len(keys), note), **storage.storage_part(int8, len(keys))}
    return _flat(keys, vectors, storage.ranges(vectors) if int8 else None), plan


def choose_index(
    keys: np.ndarray,
    vectors: np.ndarray,
    exact_limit: int = DEFAULT_EXACT_LIMIT,
    target: float = TARGET_RECALL,
    seed: int = 0,
    *,
    kinds: tuple[str, ...] = APPROXIMATE_KINDS,
    int8_from: int = storage.DEFAULT_INT8_FROM,
) -> tuple[faiss.Index, dict]:
    """Build the index one modality's vectors get, and its measured plan (``kinds``: which
    approximate kinds may be tried; from ``int8_from`` vectors on, each holds them in 8 bits)."""
    n, dim = vectors.shape
    if n < exact_limit:
        return flat_with_plan(keys, vectors, int8_from)
    ranges = storage.ranges(vectors) if storage.wants_int8(n, int8_from, False) else None
    held = None if ranges is None else storage.stored(vectors, ranges)
    sample = _sample(keys, vectors, seed, held)
    tried: list[dict] = []
    built: list[tuple[faiss.Index, dict]] = []
    if "ivf" in kinds:
        index, plan = _ivf(keys, vectors, target, seed, sample, MAX_PROBE_FRACTION, ranges)
        if plan["reached"] and plan["nprobe"] <= max(1, plan["nlist"] // CHEAP_PROBE_FRACTION):
            return index, plan  # reads no more than a PQ pass would: nothing to compare
        if plan["reached"]:
            built.append((index, plan))
        else:
            tried.append(plan)
    if "pq" in kinds:
        for sub_dim in PQ_SUB_DIMS:
            m = pq_sub_quantizers(dim, sub_dim)
            if m is None:
                continue
            index, plan = _pq(keys, vectors, m, target, seed, sample, ranges)
            if plan["reached"]:
                built.append((index, plan))
                break
            tried.append(plan)
    if built:
        return min(built, key=lambda pair: bytes_read(pair[1], dim))
    index, result = flat_with_plan(keys, vectors, int8_from, _not_reached_note(tried, target))
    result["ivf_tried_at"] = n  # any approximate kind; the key keeps its first name
    return index, result


def bytes_read(plan: dict, dim: int) -> float:
    """About how many bytes one query reads under a plan: what the choice between measured
    plans that reach the target minimises (the IVF lists probed as stored vectors; or every
    PQ code plus the re-ranked candidates' stored vectors)."""
    n, stored = plan["vectors"], storage.bytes_per_vector(plan, dim)
    if plan["kind"] == "ivf":
        return n * stored * plan["nprobe"] / plan["nlist"]
    if plan["kind"] == "pq":
        return n * plan["pq_m"] * plan["pq_bits"] / 8 + plan["rerank"] * stored
    return n * stored


def _not_reached_note(tried: list[dict], target: float) -> str:
    parts = [_short(plan) + f" reached recall@10 {plan['recall_at_10']:.3f}" for plan in tried]
    if not parts:
        return "no approximate index was tried: exact search kept"
    return f"{'; '.join(parts)}, under the target {target}: exact search kept"


def _short(plan: dict) -> str:
    if plan["kind"] == "ivf":
        return f"IVF at nprobe {plan['nprobe']} of {plan['nlist']} lists"
    return f"PQ {plan['pq_m']}x{plan['pq_bits']}-bit re-ranking {plan['rerank']}"


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
    int8_from: int = storage.DEFAULT_INT8_FROM,
) -> tuple[faiss.Index, dict]:
    """The index and plan of one modality after a change: the same when still right,
    re-measured when it grew or shrank, rebuilt when what was trained (IVF lists, PQ codebooks,
    8-bit ranges) no longer fits, its storage should change form, or the measurement misses
    the target."""
    n = int(index.ntotal)
    if storage.storage_is_stale(index, plan, n, int8_from):
        keys, vectors = all_vectors(index)
        if n < exact_limit:
            return flat_with_plan(keys, vectors, int8_from)
        return choose_index(keys, vectors, exact_limit, target, int8_from=int8_from)
    if not plan_is_stale(plan, n, exact_limit):
        if plan and plan["kind"] == "flat":
            return index, {**plan, "vectors": n, "measured_at": n}
        return index, {**plan, "vectors": n} if plan else exact_plan(n)
    keys, vectors = all_vectors(index)
    trained = int((plan or {}).get("trained_at", 0))
    if exact_limit // 2 <= n < RETRAIN_GROWTH * max(trained, 1):
        tuned = None
        if isinstance(index, faiss.IndexIVF):
            tuned = tune_nprobe(index, keys, vectors, target, probe_fraction=CHEAP_PROBE_FRACTION)
        elif refine_stage(index) is not None:
            tuned = tune_rerank(index, keys, vectors, target)
        if tuned and tuned["reached"]:
            return index, {**tuned, "trained_at": trained, **storage.storage_of(plan)}
    if n < exact_limit:
        return flat_with_plan(keys, vectors, int8_from)
    return choose_index(keys, vectors, exact_limit, target, int8_from=int8_from)


def apply_plan(index: faiss.Index, plan: dict | None) -> None:
    """Set the search parameters a plan chose on a freshly read index."""
    if not plan:
        return
    if plan.get("kind") == "ivf" and isinstance(index, faiss.IndexIVF):
        index.nprobe = int(plan["nprobe"])
    elif plan.get("kind") == "pq":
        set_rerank(index, int(plan["rerank"]))


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
    """One line for people: ``exact (flat)``, ``IVF 632 lists, nprobe 16: recall@10 0.994
    measured on 300 of its vectors`` or ``PQ fast-scan 64x4-bit, exact re-rank of 200: ...``."""
    if not plan or plan.get("kind") == "flat":
        return "exact (flat, vectors in 8 bits)" if (plan or {}).get("storage") else "exact (flat)"
    if plan.get("index_type") == "SCANN":
        method = (
            f"Milvus SCANN (4-bit PQ fast scan over all {plan['nlist']} lists), exact re-rank "
            f"of the top {plan['rerank']}"
        )
    elif plan.get("kind") == "pq":
        method = (
            f"PQ fast-scan {plan['pq_m']}x{plan['pq_bits']}-bit, exact re-rank of the top "
            f"{plan['rerank']}"
        )
    else:
        method = f"IVF {plan['nlist']} lists, nprobe {plan['nprobe']}"
    if plan.get("storage") == storage.INT8:
        method += ", vectors in 8 bits"
    if plan.get("recall_at_10") is None:
        return f"{method}: recall not measured"
    return (
        f"{method}: recall@10 {plan['recall_at_10']:.3f} measured on {plan['sample']} of its "
        "vectors"
    )
