"""8-bit storage: a store holds float32 until ``int8_from`` vectors, then one byte a dimension;
every index kind has the 8-bit form, searches as the float one does, scores within a few
thousandths, survives a reopen, removal and regrowth, and goes back to float32 as it shrinks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from artsim.index.faiss_files import vector_path
from artsim.index.faiss_store import FaissStore
from artsim.index.pq_refine import refine_stage
from artsim.index.storage import RANGE_REGROWTH, bytes_per_vector, is_int8
from artsim.index.store import OriginalRecord
from artsim.index.vector_index import (
    all_vectors,
    bytes_read,
    choose_index,
    describe_plan,
    remove_keys,
)

DIM = 64


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, n: int, centers: int = 40, noise: float = 0.05):
    middle = unit(rng, centers)
    points = middle[rng.integers(0, centers, n)] + noise * rng.normal(size=(n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def add(store: FaissStore, ids: list[str], vectors: np.ndarray) -> None:
    store.add(
        ids,
        {"image": vectors, "text": vectors, "fused": vectors},
        [OriginalRecord(id=i, group=i, caption="c") for i in ids],
    )


def test_a_store_goes_to_8_bits_at_its_threshold_and_scores_stay_within_a_few_thousandths(
    tmp_path: Path,
):
    rng = np.random.default_rng(0)
    data = unit(rng, 600)
    ids = [f"x{i}" for i in range(len(data))]
    store = FaissStore.create(tmp_path / "s", DIM, int8_from=400)
    add(store, ids[:300], data[:300])
    plan = store.search_plans()["image"]
    assert "storage" not in plan and not is_int8(store._indexes["image"])
    float_size = vector_path(tmp_path / "s", store.generation, "image").stat().st_size
    hits = store.search("image", data[7], 3)[0]
    assert hits.ids[0] == "x7" and abs(hits.scores[0] - 1.0) < 1e-5  # float32: exact

    add(store, ids[300:], data[300:])
    plan = store.search_plans()["image"]
    assert plan["storage"] == "int8" and plan["ranges_at"] == 600 and plan["kind"] == "flat"
    assert is_int8(store._indexes["image"])
    assert describe_plan(plan) == "exact (flat, vectors in 8 bits)"
    int8_size = vector_path(tmp_path / "s", store.generation, "image").stat().st_size
    # twice the vectors in about half the bytes: a quarter a vector (plus the id map)
    assert int8_size < 0.7 * float_size
    # a query finds what exact float search finds but for near ties (random directions have
    # many), and every score is within a hundredth of the float one
    queries = unit(rng, 50)
    exact = queries @ data.T
    agree = 0
    for query, row in zip(queries, exact, strict=True):
        found = store.search("image", query, 5)[0]
        best = int(np.argmax(row))
        agree += found.ids[0] == ids[best]
        assert row[ids.index(found.ids[0])] > row[best] - 0.02
        for name, score in zip(found.ids, found.scores, strict=True):
            assert abs(score - row[ids.index(name)]) < 0.01
    assert agree >= 45
    # a reader of the folder holds the same 8-bit index and finds the same
    reader = FaissStore(tmp_path / "s", read_only=True)
    assert is_int8(reader._indexes["image"])
    assert reader.search("image", queries[0], 5)[0] == store.search("image", queries[0], 5)[0]


def test_8_bit_ranges_are_trained_again_as_the_store_grows_and_float_comes_back_as_it_shrinks(
    tmp_path: Path,
):
    rng = np.random.default_rng(1)
    data = unit(rng, 1000)
    ids = [f"x{i}" for i in range(len(data))]
    store = FaissStore.create(tmp_path / "s", DIM, int8_from=200)
    add(store, ids[:200], data[:200])
    assert store.search_plans()["fused"]["ranges_at"] == 200
    add(store, ids[200:700], data[200:700])  # 700 < 4 x 200: the ranges stay
    assert store.search_plans()["fused"]["ranges_at"] == 200
    add(store, ids[700:], data[700:])  # 1000 >= 4 x 200: trained again
    assert RANGE_REGROWTH * 200 <= 1000 and store.search_plans()["fused"]["ranges_at"] == 1000
    store.remove(ids[:850])  # 150: above half the threshold, still 8 bits
    assert store.search_plans()["fused"]["storage"] == "int8"
    store.remove(ids[850:920])  # 80 < 100: float32 again, the vectors decoded
    plan = store.search_plans()["fused"]
    assert "storage" not in plan and not is_int8(store._indexes["fused"])
    found = store.search("fused", data[950], 1)[0]
    assert found.ids == ["x950"] and abs(found.scores[0] - 1.0) < 0.01


def test_ivf_and_pq_have_8_bit_forms_that_reach_the_target_and_honour_removal():
    rng = np.random.default_rng(2)
    clustered_vectors = clustered(rng, 4000)
    keys = np.arange(len(clustered_vectors), dtype=np.int64) * 3 + 5
    ivf, plan = choose_index(keys, clustered_vectors, exact_limit=1000, int8_from=1000)
    assert plan["kind"] == "ivf" and plan["storage"] == "int8" and plan["reached"]
    assert is_int8(ivf) and "vectors in 8 bits" in describe_plan(plan)
    stored_keys, decoded = all_vectors(ivf)
    order = np.argsort(stored_keys)
    assert np.array_equal(stored_keys[order], keys)
    assert np.abs(decoded[order] - clustered_vectors).max() < 0.01

    random_vectors = unit(rng, 3000)
    keys = np.arange(len(random_vectors), dtype=np.int64) + 100
    pq, plan = choose_index(keys, random_vectors, exact_limit=1000, int8_from=1000)
    assert plan["kind"] == "pq" and plan["storage"] == "int8" and plan["reached"]
    assert refine_stage(pq) is not None and is_int8(pq)
    # the re-ranked scores are the 8-bit codes' own: close to the exact inner products
    scores, found = pq.search(random_vectors[:20], 5)
    exact = np.einsum("ij,ij->i", random_vectors[:20], random_vectors[found[:, 0] - 100])
    assert np.array_equal(found[:, 0], keys[:20]) and np.abs(scores[:, 0] - exact).max() < 0.01
    assert remove_keys(pq, keys[:10]) == 10 and pq.ntotal == 2990
    _, found = pq.search(random_vectors[10:15], 1)
    assert found[:, 0].tolist() == keys[10:15].tolist()
    # what a query reads counts one byte a dimension
    assert bytes_per_vector(plan, DIM) == DIM
    assert bytes_read({**plan, "storage": None}, DIM) - bytes_read(plan, DIM) == (
        plan["rerank"] * DIM * 3
    )


def test_an_ivf_store_turns_8_bit_as_it_grows_and_its_search_still_finds_each_vector(
    tmp_path: Path,
):
    rng = np.random.default_rng(3)
    data = clustered(rng, 1800)
    ids = [f"x{i}" for i in range(len(data))]
    store = FaissStore.create(tmp_path / "s", DIM, ivf_threshold=1000, int8_from=1500)
    add(store, ids[:1200], data[:1200])
    plan = store.search_plans()["text"]
    assert plan["kind"] == "ivf" and "storage" not in plan
    add(store, ids[1200:], data[1200:])
    plan = store.search_plans()["text"]
    assert plan["kind"] == "ivf" and plan["storage"] == "int8" and plan["recall_at_10"] >= 0.99
    assert is_int8(store._indexes["text"])
    found = [store.search("text", data[r], 1)[0].ids[0] for r in range(0, 1800, 90)]
    assert found == ids[0:1800:90]
