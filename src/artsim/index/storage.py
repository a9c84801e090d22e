"""How one modality's vectors are held: float32 in small stores, one byte a dimension in large.

The default model's vectors have 1920 dimensions (trained heads, whitened content and copy
descriptors, frozen text part): 7.7 GB per modality per million originals in float32. Projecting
them onto 512 dimensions loses recall and the copy score (docs/decisions/0013). What is kept
instead is every dimension, each as one byte: faiss' 8-bit scalar quantizer (``QT_8bit``), each
dimension's range the span of the modality's own vectors when it was trained, widened by
``RANGE_MARGIN`` of that span on both sides so that a later vector is seldom clipped. 1920 bytes
a vector: 1.9 GB per modality per million, less than 512 float32 (2048 bytes). Measured against
the float32 vectors on the held-out family, art4apps and flare (BENCHMARKS.md, Compact index
vectors; docs/decisions/0028): no task's recall@1 moves beyond noise, the copy score moves by at
most 0.005, and 0.989-0.999 of each query's float32 top 10 is returned.

A modality goes to 8 bits once it holds ``int8_from`` vectors (20,000 by default: below that the
float32 vectors of all three modalities take under half a gigabyte, and scores stay exact), back
to float32 below half of that, and its ranges are trained again when it has grown
``RANGE_REGROWTH`` times since they were (from the decoded vectors: each retraining adds its
own rounding, under half a step a dimension). Every index kind of
:mod:`artsim.index.vector_index` has an 8-bit form: exact search over the codes
(``IndexScalarQuantizer``), IVF over codes (``IndexIVFScalarQuantizer``), and the PQ fast-scan
pass re-ranked against the codes.
"""

from __future__ import annotations

import faiss
import numpy as np

DEFAULT_INT8_FROM = 20_000
RANGE_MARGIN = 0.5  # each dimension's range: the trained span widened by half of it a side
RANGE_REGROWTH = 4.0
INT8 = "int8"


def wants_int8(n: int, int8_from: int, now_int8: bool) -> bool:
    """Whether ``n`` vectors are to be held in 8 bits (half the threshold back: no flapping)."""
    return n >= (int8_from // 2 if now_int8 else int8_from)


def storage_is_stale(index: faiss.Index, plan: dict | None, n: int, int8_from: int) -> bool:
    """Whether an index must be rebuilt for its storage: it should change form, or its 8-bit
    ranges were trained on a collection much smaller than today's."""
    now_int8 = is_int8(index)
    if wants_int8(n, int8_from, now_int8) != now_int8:
        return True
    ranges_at = int((plan or {}).get("ranges_at", 0))
    return now_int8 and n >= RANGE_REGROWTH * max(ranges_at, 1)


def ranges(vectors: np.ndarray) -> np.ndarray:
    """The 8-bit quantizer's trained ranges for ``vectors`` (faiss' layout: each dimension's
    lowest value, then each one's span), widened by ``RANGE_MARGIN``. One array serves every
    index built from the same vectors, and the vectors it holds (:func:`stored`), so that a
    measurement's exact truth is what the index holds."""
    quantizer = faiss.ScalarQuantizer(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit)
    quantizer.rangestat = faiss.ScalarQuantizer.RS_minmax
    quantizer.rangestat_arg = RANGE_MARGIN
    quantizer.train(np.ascontiguousarray(vectors, dtype=np.float32))
    return faiss.vector_to_array(quantizer.trained)


def set_ranges(quantizer: faiss.ScalarQuantizer, trained: np.ndarray) -> None:
    """Give an 8-bit quantizer these ranges (instead of training it)."""
    faiss.copy_array_to_vector(np.asarray(trained, dtype=np.float32), quantizer.trained)


def int8_codes(dim: int, trained: np.ndarray) -> faiss.IndexScalarQuantizer:
    """An empty exact inner-product index over 8-bit codes with these ranges."""
    index = faiss.IndexScalarQuantizer(
        dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    set_ranges(index.sq, trained)
    index.is_trained = True
    return index


def stored(vectors: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """The vectors as 8-bit codes with these ranges hold them (decoded)."""
    quantizer = faiss.ScalarQuantizer(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit)
    set_ranges(quantizer, trained)
    codes = quantizer.compute_codes(np.ascontiguousarray(vectors, dtype=np.float32))
    return quantizer.decode(codes)


def is_int8(index: faiss.Index) -> bool:
    """Whether an index of :mod:`artsim.index.vector_index` holds its vectors in 8 bits."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        index = faiss.downcast_index(index.index)
    if isinstance(index, faiss.IndexRefine):
        index = faiss.downcast_index(index.refine_index)
    return isinstance(index, faiss.IndexScalarQuantizer | faiss.IndexIVFScalarQuantizer)


def storage_part(int8: bool, n: int) -> dict:
    """What a plan records of the storage (nothing for float32, as plans always said)."""
    return {"storage": INT8, "ranges_at": n} if int8 else {}


def storage_of(plan: dict | None) -> dict:
    """The storage part of an existing plan, to carry into its re-measured successor."""
    return {key: plan[key] for key in ("storage", "ranges_at") if key in (plan or {})}


def bytes_per_vector(plan: dict, dim: int) -> int:
    """What one stored vector takes under a plan."""
    return dim if plan.get("storage") == INT8 else dim * 4
