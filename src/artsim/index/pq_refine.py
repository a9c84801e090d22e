"""A compressed first pass with exact re-ranking: fast search where IVF cannot partition.

Vectors without cluster structure (or with heavily overlapping clusters) defeat IVF: the true
neighbours of a query lie in many lists. What still works is to read *every* vector, but
compressed: a product quantizer with 4-bit codes (faiss ``IndexPQFastScan``: ``dim / 4`` or
``dim / 2`` sub-quantizers, i.e. ``dim / 8`` or ``dim / 4`` bytes per vector, scanned with SIMD
lookups) ranks the whole collection approximately, and the top ``rerank`` of that ranking are
scored again against every dimension of the stored vectors (``IndexRefineFlat``; in a large
store ``IndexRefine`` over 8-bit codes, :mod:`artsim.index.storage`). Scores returned are exact;
only a true neighbour that the compressed pass ranks below ``rerank`` can be missed, and the
recall measured at build time says how often.

The index of one modality is ``IndexIDMap2(IndexRefineFlat(IndexPQFastScan))``: the id map
gives arbitrary int64 keys and ``reconstruct(key)``. faiss cannot ``remove_ids`` through
``IndexRefine``; :func:`remove_refine_keys` does it: both inner indexes compact the same
positions in order, then the id map is rebuilt.
"""

from __future__ import annotations

import faiss
import numpy as np

from artsim.index.storage import int8_codes

PQ_BITS = 4  # fast-scan codes: 16 centroids per sub-quantizer
# at most this many training vectors for the sub-quantizers' k-means (16 centroids each)
PQ_TRAINING = 65_536


def pq_sub_quantizers(dim: int, sub_dim: int) -> int | None:
    """Sub-quantizers of ``sub_dim`` dimensions each, or None when ``dim`` does not split so
    (fast-scan packs codes in pairs: an even count is needed)."""
    if dim % sub_dim:
        return None
    m = dim // sub_dim
    return m if m >= 2 and m % 2 == 0 else None


def create_refine_index(
    training: np.ndarray, m: int, seed: int = 0, *, ranges: np.ndarray | None = None
) -> faiss.Index:
    """An empty PQ fast-scan index with ``m`` 4-bit sub-quantizers trained on ``training``,
    inside a re-ranking stage (against the float32 vectors, or, given 8-bit ``ranges``,
    against 8-bit codes: :mod:`artsim.index.storage`) and an id map."""
    dim = training.shape[1]
    if len(training) > PQ_TRAINING:
        rng = np.random.default_rng(seed)
        training = training[np.sort(rng.choice(len(training), PQ_TRAINING, replace=False))]
    base = faiss.IndexPQFastScan(dim, m, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
    base.pq.cp.seed = seed
    base.train(np.ascontiguousarray(training, dtype=np.float32))
    if ranges is None:
        # faiss' Python layer keeps ``base`` alive as long as the wrappers reference it
        return faiss.IndexIDMap2(faiss.IndexRefineFlat(base))
    codes = int8_codes(dim, ranges)
    stage = faiss.IndexRefine(base, codes)
    stage.own_fields = stage.own_refine_index = True  # the stage frees both
    base.this.disown()
    codes.this.disown()
    return faiss.IndexIDMap2(stage)


def refine_stage(index: faiss.Index) -> faiss.IndexRefine | None:
    """The re-ranking stage of a PQ + re-rank index, or None for any other index."""
    if not isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        return None
    inner = faiss.downcast_index(index.index)
    return inner if isinstance(inner, faiss.IndexRefine) else None


def search_parameters(rerank: int, k: int) -> faiss.SearchParameters:
    """Search parameters re-ranking ``rerank`` candidates for a top ``k`` (more for k > 10:
    the list grows with k so that recall@k stays what recall@10 was measured at)."""
    length = max(rerank, rerank * k // 10, k)
    return faiss.IndexRefineSearchParameters(k_factor=length / max(k, 1))


def set_rerank(index: faiss.Index, rerank: int, k: int = 10) -> None:
    """Make a plain ``index.search(queries, k)`` re-rank ``rerank`` candidates."""
    stage = refine_stage(index)
    if stage is not None:
        stage.k_factor = rerank / k


def refine_vectors(index: faiss.Index) -> np.ndarray:
    """The full vectors of a PQ + re-rank index, in id-map order."""
    stage = refine_stage(index)
    flat = stage.refine_index
    if not flat.ntotal:
        return np.zeros((0, index.d), dtype=np.float32)
    return np.asarray(flat.reconstruct_n(0, flat.ntotal), dtype=np.float32)


def remove_refine_keys(index: faiss.Index, keys: np.ndarray) -> int:
    """Remove ``keys`` from a PQ + re-rank index in place; the number removed."""
    stage = refine_stage(index)
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    gone = np.isin(ids, np.asarray(keys, dtype=np.int64))
    positions = np.flatnonzero(gone).astype(np.int64)
    if not len(positions):
        return 0
    selector = faiss.IDSelectorBatch(positions)
    removed_codes = stage.base_index.remove_ids(selector)
    removed_vectors = stage.refine_index.remove_ids(selector)
    if not removed_codes == removed_vectors == len(positions):  # pragma: no cover - faiss bug
        raise RuntimeError("the compressed and the full vectors went out of step")
    stage.ntotal = stage.base_index.ntotal
    index.id_map.clear()
    faiss.copy_array_to_vector(ids[~gone], index.id_map)
    index.ntotal = int((~gone).sum())
    index.construct_rev_map()
    return len(positions)
