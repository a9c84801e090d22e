"""Which index a Milvus collection gets above the exact limit, and its search parameters: measured
on a sample of the collection's own vectors, like the embedded store's
(:mod:`artsim.index.vector_index`).

1. ``IVF_FLAT`` (about 2 sqrt(n) lists): the smallest ``nprobe`` of 1, 2, 4, ... up to a quarter
   of the lists whose recall@10 reaches the target, against probing every list (exact for
   IVF_FLAT; that search is also the truth for what follows). Kept at once when it probes at
   most 1/32 of the lists;
2. otherwise ``SCANN`` (IVF over 4-bit PQ fast-scan codes, exact re-ranking of ``reorder_k``
   candidates: the counterpart of the embedded store's PQ + re-rank plan), searched over every
   list, with the shortest ``reorder_k`` of 20, 50, ... (at most n / 16) reaching the target;
3. else IVF_FLAT with its larger ``nprobe`` if that reached the target; ``FLAT`` when nothing
   did, with a note saying what was measured.

A collection of ``int8_from`` vectors or more (:mod:`artsim.index.storage`: 20,000 by default)
holds one byte a dimension instead: ``IVF_SQ8`` (Milvus builds each sealed segment's index, and
its 8-bit ranges, from that segment's own vectors). Below the exact limit it probes every list,
which is exact search over the codes (:func:`exact_int8`); above, the smallest ``nprobe`` reaching
the target against probing every list, up to every list (:func:`choose` with ``int8``). SCANN is
not tried there: its re-ranking keeps the float32 vectors in memory.

Functions take a ``pymilvus.MilvusClient`` and a collection name (one vector field
``vector``, a string primary key ``id``).
"""

from __future__ import annotations

import numpy as np

from artsim.index.recall import (
    MAX_PROBE_FRACTION,
    MAX_RERANK_FRACTION,
    RECALL_K,
    RERANK_LENGTHS,
    SAMPLE_QUERIES,
    TARGET_RECALL,
)
from artsim.index.storage import INT8
from artsim.index.vector_index import CHEAP_PROBE_FRACTION, exact_plan, ivf_list_count

Sample = tuple[list[str], list[list[float]], list[list[str]]]
ID_BATCH = 16_384  # ids read per round trip when drawing the sample (Milvus' largest page)


def set_index(client, name: str, index_type: str, params: dict) -> None:
    """Replace the collection's vector index (released, rebuilt, loaded again). The collection
    is flushed first: rows still in a growing segment are searched by brute force over float32,
    so without it a small collection would neither hold nor be measured with the new index."""
    from pymilvus import MilvusClient

    client.flush(name)
    client.release_collection(name)
    for index_name in client.list_indexes(name):
        client.drop_index(name, index_name)
    index_params = MilvusClient.prepare_index_params()
    index_params.add_index(
        field_name="vector", index_type=index_type, metric_type="IP", params=params
    )
    client.create_index(name, index_params)
    client.load_collection(name)


def exact_int8(client, name: str, n: int) -> dict:
    """Exact search over 8-bit codes: ``IVF_SQ8`` searched over every list (the counterpart of
    the embedded store's flat 8-bit form); its plan."""
    nlist = ivf_list_count(n)
    set_index(client, name, "IVF_SQ8", {"nlist": nlist})
    return {
        **exact_plan(n),
        "index_type": "IVF_SQ8",
        "nlist": nlist,
        "nprobe": nlist,
        "storage": INT8,
    }


def choose(client, name: str, n: int, int8: bool = False) -> dict:
    """Build the index a collection of ``n`` vectors gets and return its measured plan; with
    ``int8``, ``IVF_SQ8`` probing as few lists as reach the target (every list at worst)."""
    nlist = ivf_list_count(n)
    if int8:
        set_index(client, name, "IVF_SQ8", {"nlist": nlist})
        plan, _ = tune_ivf(client, name, nlist, n, index_type="IVF_SQ8", probe_limit=nlist)
        return {**plan, "storage": INT8}
    set_index(client, name, "IVF_FLAT", {"nlist": nlist})
    ivf, sample = tune_ivf(client, name, nlist, n)
    if ivf["reached"] and ivf["nprobe"] <= max(1, nlist // CHEAP_PROBE_FRACTION):
        return ivf
    scann = tune_scann(client, name, nlist, n, sample)
    if scann["reached"]:
        return scann
    if ivf["reached"]:
        set_index(client, name, "IVF_FLAT", {"nlist": nlist})
        return ivf
    set_index(client, name, "FLAT", {})
    note = (
        f"IVF_FLAT reached recall@10 {ivf['recall_at_10']:.3f} at nprobe {ivf['nprobe']} of "
        f"{nlist} lists, SCANN {scann['recall_at_10']:.3f} re-ranking {scann['rerank']}, "
        "under the target: exact search kept"
    )
    return {**exact_plan(n, note), "ivf_tried_at": n}


def top(client, name: str, queries: list, names: list[str], params: dict) -> list[list[str]]:
    """The top 10 ids of each sample query, its own id left out."""
    answers = client.search(
        name,
        data=queries,
        limit=RECALL_K + 1,
        output_fields=["id"],
        search_params={"metric_type": "IP", "params": params},
    )
    return [
        [hit["id"] for hit in hits if hit["id"] != own][:RECALL_K]
        for own, hits in zip(names, answers, strict=True)
    ]


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    hits = sum(len(set(a) & set(b)) for a, b in zip(found, truth, strict=True))
    total = sum(len(b) for b in truth)
    return hits / total if total else 1.0


def collection_ids(client, name: str) -> list[str]:
    """Every id of the collection, page by page."""
    found: list[str] = []
    iterator = client.query_iterator(
        name, batch_size=ID_BATCH, filter='id != ""', output_fields=["id"]
    )
    try:
        while batch := iterator.next():
            found.extend(row["id"] for row in batch)
    finally:
        iterator.close()
    return found


def sample_ids(client, name: str, size: int = SAMPLE_QUERIES, seed: int = 0) -> list[str]:
    """``size`` ids drawn at random (seeded) from the whole collection, not its first rows: a
    collection filled source by source would otherwise be measured on one source's region."""
    # sorted: the draw depends on the ids, not on the order Milvus returns them in
    found = sorted(collection_ids(client, name))
    if len(found) <= size:
        return found
    rng = np.random.default_rng(seed)
    return [found[k] for k in sorted(rng.choice(len(found), size, replace=False))]


def _measurement(measured: float, sample: int, n: int) -> dict:
    """The part of a plan that says how it was measured: its recall@10 on ``sample`` queries,
    against the target, over a collection of ``n`` vectors (which the index was built on)."""
    return {
        "recall_at_10": round(measured, 4),
        "sample": sample,
        "target": TARGET_RECALL,
        "reached": measured >= TARGET_RECALL,
        "measured_at": n,
        "trained_at": n,
    }


def tune_ivf(
    client,
    name: str,
    nlist: int,
    n: int,
    index_type: str = "IVF_FLAT",
    probe_limit: int | None = None,
) -> tuple[dict, Sample]:
    """Smallest nprobe (at most ``probe_limit``, default a quarter of the lists) whose recall@10
    on a sample of the collection's own vectors reaches the target, against probing every list
    (exact over what the ``index_type`` holds); and the sample (ids, vectors, exact top 10) for
    measuring other plans."""
    rows = client.get(name, ids=sample_ids(client, name), output_fields=["id", "vector"])
    names = [row["id"] for row in rows]
    queries = [list(row["vector"]) for row in rows]
    truth = top(client, name, queries, names, {"nprobe": nlist})
    limit = probe_limit or max(1, nlist // MAX_PROBE_FRACTION)
    nprobe = 1
    while True:
        measured = recall(top(client, name, queries, names, {"nprobe": nprobe}), truth)
        if measured >= TARGET_RECALL or nprobe >= limit:
            break
        nprobe = min(nprobe * 2, limit)
    plan = {
        "kind": "ivf",
        "index_type": index_type,
        "vectors": n,
        "nlist": nlist,
        "nprobe": nprobe,
        **_measurement(measured, len(names), n),
    }
    return plan, (names, queries, truth)


def tune_scann(client, name: str, nlist: int, n: int, sample: Sample) -> dict:
    """Build SCANN and measure recall@10 over every list for reorder_k = 20, 50, ... (at most
    n / 16) against the exact ``sample`` truth; the plan of the shortest that reaches the
    target (``reached`` False with the longest measured when none does)."""
    names, queries, truth = sample
    set_index(client, name, "SCANN", {"nlist": nlist})
    lengths = [r for r in RERANK_LENGTHS if r <= n // MAX_RERANK_FRACTION] or [RERANK_LENGTHS[0]]
    rerank, measured = lengths[0], 0.0
    for rerank in lengths:
        params = {"nprobe": nlist, "reorder_k": rerank}
        measured = recall(top(client, name, queries, names, params), truth)
        if measured >= TARGET_RECALL:
            break
    return {
        "kind": "pq",
        "index_type": "SCANN",
        "vectors": n,
        "nlist": nlist,
        "nprobe": nlist,
        "rerank": rerank,
        **_measurement(measured, len(names), n),
    }
