"""PQ fast-scan + exact re-ranking: chosen where IVF cannot partition, its recall measured as a
plain loop measures it, removal honoured, the plan kept in the store and index.json."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from artsim.cli.search import _search_line
from artsim.index.catalog import IndexInfo, mirror_search_plans
from artsim.index.faiss_files import vector_path
from artsim.index.faiss_store import FaissStore
from artsim.index.pq_refine import refine_stage
from artsim.index.recall import RECALL_K, _sample_queries
from artsim.index.store import OriginalRecord
from artsim.index.vector_index import (
    all_vectors,
    choose_index,
    describe_plan,
    remove_keys,
    replan,
    search,
)

DIM = 64


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def loop_top(vectors: np.ndarray, keys: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    """The exact top ``k`` keys by a plain matrix product."""
    return keys[np.argsort(-(vectors @ query), kind="stable")[:k]].tolist()


@pytest.fixture(scope="module")
def random_index():
    """3000 random 64-d vectors (no cluster structure) and the index artsim chooses."""
    rng = np.random.default_rng(1)
    vectors = unit(rng, 3000)
    keys = np.arange(len(vectors), dtype=np.int64) * 7 + 100
    index, plan = choose_index(keys, vectors, exact_limit=1000)
    return keys, vectors, index, plan


def test_unclustered_vectors_get_pq_with_exact_reranking(random_index):
    keys, vectors, index, plan = random_index
    assert plan["kind"] == "pq" and plan["reached"] and plan["recall_at_10"] >= 0.99
    assert refine_stage(index) is not None
    assert plan["pq_bits"] == 4 and DIM % plan["pq_m"] == 0
    assert 20 <= plan["rerank"] <= len(keys) // 16
    assert "re-rank of the top" in describe_plan(plan) and "recall@10" in describe_plan(plan)
    # scores are exact inner products, whatever the compressed pass thought of them
    query = unit(np.random.default_rng(2), 1)[0]
    scores, found = search(index, query[None], 10, plan)
    by_key = dict(zip(keys.tolist(), vectors, strict=True))
    expected = [float(by_key[key] @ query) for key in found[0]]
    assert scores[0].tolist() == pytest.approx(expected, abs=1e-5)


def test_measured_recall_is_what_a_loop_measures(random_index):
    """The plan's recall@10: the same 300 own vectors, their own key left out, the truth from a
    plain loop, the index searched with the plan's re-rank length."""
    keys, vectors, index, plan = random_index
    query_keys, queries = _sample_queries(keys, vectors, 0)
    params = faiss.IndexRefineSearchParameters(k_factor=plan["rerank"] / (RECALL_K + 1))
    _, found = index.search(queries, RECALL_K + 1, params=params)
    hits = 0
    for own, query, row in zip(query_keys, queries, found, strict=True):
        truth = [key for key in loop_top(vectors, keys, query, RECALL_K + 1) if key != own]
        approximate = [key for key in row.tolist() if key != own][:RECALL_K]
        hits += len(set(truth[:RECALL_K]) & set(approximate))
    assert plan["recall_at_10"] == round(hits / (RECALL_K * len(query_keys)), 4)
    assert plan["sample"] == len(query_keys) == 300
    # and it predicts recall on queries the collection does not hold
    fresh = unit(np.random.default_rng(3), 100)
    _, found = search(index, fresh, 10, plan)
    fresh_hits = sum(
        len(set(loop_top(vectors, keys, q, 10)) & set(row.tolist()))
        for q, row in zip(fresh, found, strict=True)
    )
    assert fresh_hits / 1000 >= 0.97


def test_removal_is_honoured(random_index):
    keys, vectors, index, plan = random_index
    index = faiss.clone_index(index)
    rng = np.random.default_rng(4)
    gone = rng.choice(keys, 700, replace=False)
    assert remove_keys(index, gone) == 700
    assert remove_keys(index, gone[:5]) == 0  # already gone
    left = ~np.isin(keys, gone)
    assert index.ntotal == left.sum()
    stored_keys, stored = all_vectors(index)
    assert stored_keys.tolist() == keys[left].tolist()
    np.testing.assert_array_equal(stored, vectors[left])
    # re-ranking every vector makes the search exact: it must agree with the loop
    everything = {**plan, "rerank": len(keys)}
    for query in unit(rng, 20):
        _, found = search(index, query[None], 10, everything)
        assert found[0].tolist() == loop_top(vectors[left], keys[left], query, 10)
    _, found = search(index, vectors[np.isin(keys, gone)][:50], 10, plan)
    assert not set(found.ravel().tolist()) & set(gone.tolist())


def test_exact_is_kept_when_no_plan_reaches_the_target():
    rng = np.random.default_rng(5)
    vectors = unit(rng, 2000)
    keys = np.arange(len(vectors), dtype=np.int64)
    index, plan = choose_index(keys, vectors, exact_limit=1000, target=1.01)  # unreachable
    assert plan["kind"] == "flat" and plan["recall_at_10"] == 1.0
    assert "IVF at nprobe" in plan["note"] and "PQ 16x4-bit" in plan["note"]
    assert "PQ 32x4-bit" in plan["note"] and "exact search kept" in plan["note"]
    _, found = index.search(vectors[:5], 1)
    assert found[:, 0].tolist() == keys[:5].tolist()
    # not tried again on a small change, only once the collection has doubled
    same, again = replan(index, plan, exact_limit=1000)
    assert same is index and again == {**plan, "measured_at": 2000}


def add(store: FaissStore, ids: list[str], vectors: np.ndarray, caption: str = "c") -> None:
    text = vectors if caption else np.zeros_like(vectors)
    store.add(
        ids,
        {"image": vectors, "text": text, "fused": vectors},
        [OriginalRecord(id=i, group=i, caption=caption) for i in ids],
    )


def test_store_plans_pq_keeps_it_in_index_json_and_honours_removal(tmp_path: Path):
    rng = np.random.default_rng(6)
    data = unit(rng, 1600)
    ids = [f"x{i}" for i in range(len(data))]
    folder = tmp_path / "s"
    store = FaissStore.create(folder, DIM, ivf_threshold=1000)
    add(store, ids, data)
    plans = store.search_plans()
    assert plans["fused"]["kind"] == "pq" and store.kind == "pq"
    assert plans["fused"]["recall_at_10"] >= 0.99
    # the mirror in index.json holds the same plans, and reads back as written
    IndexInfo(model_id="m", run="r", dim=DIM).write(folder)
    mirror_search_plans(folder)(store)
    assert IndexInfo.read(folder).search == plans
    reader = FaissStore(folder, read_only=True)
    assert reader.search_plans() == plans and "re-rank" in reader.describe()
    stage = refine_stage(reader._indexes["fused"])
    assert stage.k_factor * 10 == plans["fused"]["rerank"]  # the plan applied on reading
    line = _search_line({"modality": "fused", **plans["fused"], "exact": False})
    assert "approximate over the fused vectors" in line and "re-rank" in line
    # removal: gone for readers, the rest still found by their own vectors
    assert store.remove(ids[:300]) == ids[:300]
    reader = FaissStore(folder, read_only=True)
    assert reader.count() == 1300 and reader.kind == "pq"
    for row in (0, 5, 299):
        assert ids[row] not in reader.search("fused", data[row], 10)[0].ids
    for row in (300, 900, 1599):
        hits = reader.search("image", data[row], 3)[0]
        assert hits.ids[0] == ids[row] and hits.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert reader.search("fused", data[0], 2, restrict_to=["x0", "x400"])[0].ids == ["x400"]


def test_a_change_of_one_modality_rewrites_one_file(tmp_path: Path):
    rng = np.random.default_rng(7)
    folder = tmp_path / "s"
    store = FaissStore.create(folder, DIM)
    add(store, ["a", "b"], unit(rng, 2))
    before = {m: os.stat(vector_path(folder, store.generation, m)) for m in ("image", "text")}
    add(store, ["c"], unit(rng, 1), caption="")  # no caption: the text vectors do not change
    after = {m: os.stat(vector_path(folder, store.generation, m)) for m in ("image", "text")}
    assert after["text"].st_ino == before["text"].st_ino  # the same file, linked
    assert after["image"].st_ino != before["image"].st_ino
    assert len(list((folder / "vectors").iterdir())) == 3
    reopened = FaissStore(folder, read_only=True)
    assert len(reopened.search("text", unit(rng, 1)[0], 5)[0].ids) == 2
    assert sorted(reopened.ids()) == ["a", "b", "c"]


def test_store_remeasures_pq_as_it_grows_and_goes_exact_as_it_shrinks(tmp_path: Path):
    rng = np.random.default_rng(8)
    data = unit(rng, 2100)
    ids = [f"x{i}" for i in range(len(data))]
    store = FaissStore.create(tmp_path / "s", DIM, ivf_threshold=1000)
    add(store, ids[:1600], data[:1600])
    first = store.search_plans()["fused"]
    assert first["kind"] == "pq" and first["measured_at"] == first["trained_at"] == 1600
    add(store, ids[1600:], data[1600:])  # 2100 >= 1.25 x 1600: measured again, not retrained
    grown = store.search_plans()["fused"]
    assert grown["kind"] == "pq" and grown["measured_at"] == 2100 and grown["trained_at"] == 1600
    assert grown["recall_at_10"] >= 0.99
    hits = store.search("fused", data[2050], 1)[0]
    assert hits.ids == ["x2050"]
    store.remove(ids[:1700])  # 400 < half the limit: exact again
    assert store.kind == "flat" and store.search_plans()["fused"]["recall_at_10"] == 1.0
    assert store.search("fused", data[1800], 1)[0].ids == ["x1800"]
