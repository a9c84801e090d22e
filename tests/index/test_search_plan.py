"""Search that stays right as the collection grows: exact below the limit, measured IVF above it,
re-measured on growth, exact again when IVF cannot reach the target recall."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from artsim.index.faiss_store import FaissStore
from artsim.index.recall import TARGET_RECALL
from artsim.index.store import OriginalRecord
from artsim.index.vector_index import (
    choose_index,
    describe_plan,
    replan,
)

DIM = 16


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, n: int, centers: int = 40, noise: float = 0.05):
    middle = unit(rng, centers)
    points = middle[rng.integers(0, centers, n)] + noise * rng.normal(size=(n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def recall_against_loop(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray) -> float:
    """recall@10 of ``index`` on fresh queries, the truth from a plain matrix product."""
    _, found = index.search(queries, 10)
    hits = 0
    for query, row in zip(queries, found, strict=True):
        truth = np.argsort(-(vectors @ query), kind="stable")[:10]
        hits += len(set(truth.tolist()) & set(row.tolist()))
    return hits / (10 * len(queries))


def test_clustered_vectors_get_ivf_whose_measured_recall_holds_on_fresh_queries():
    rng = np.random.default_rng(0)
    vectors = clustered(rng, 4000)
    keys = np.arange(len(vectors), dtype=np.int64)
    index, plan = choose_index(keys, vectors, exact_limit=1000)
    assert plan["kind"] == "ivf" and isinstance(index, faiss.IndexIVF)
    assert plan["recall_at_10"] >= TARGET_RECALL and plan["reached"]
    assert index.nprobe == plan["nprobe"] < plan["nlist"]
    # the measurement on the collection's own vectors predicts recall on queries it never saw
    fresh = vectors[:200] + 0.03 * np.random.default_rng(1).normal(size=(200, DIM))
    fresh = (fresh / np.linalg.norm(fresh, axis=1, keepdims=True)).astype(np.float32)
    assert recall_against_loop(index, vectors, fresh) >= 0.97
    assert "recall@10" in describe_plan(plan)


def test_unclustered_vectors_stay_exact_under_ivf_alone_and_say_why():
    rng = np.random.default_rng(1)
    vectors = unit(rng, 3000, dim=64)  # no structure: IVF cannot reach 0.99 cheaply
    keys = np.arange(len(vectors), dtype=np.int64) + 100
    index, plan = choose_index(keys, vectors, exact_limit=1000, kinds=("ivf",))
    assert plan["kind"] == "flat" and plan["recall_at_10"] == 1.0
    assert "exact search kept" in plan["note"] and plan["ivf_tried_at"] == 3000
    assert plan["note"].startswith("IVF at nprobe 27 of 110 lists reached recall@10")  # 110 // 4
    _, found = index.search(vectors[:5], 1)
    assert found[:, 0].tolist() == keys[:5].tolist()
    # not tried again on every small add: only once it has doubled
    same, again = replan(index, plan, exact_limit=1000)
    assert same is index and again["kind"] == "flat" and "note" in again


def add(store: FaissStore, ids: list[str], vectors: np.ndarray) -> None:
    store.add(
        ids,
        {"image": vectors, "text": vectors, "fused": vectors},
        [OriginalRecord(id=i, group=i, caption="c") for i in ids],
    )


def test_store_replans_as_it_grows_and_shrinks(tmp_path: Path):
    rng = np.random.default_rng(2)
    data = clustered(rng, 2400)
    ids = [f"x{i}" for i in range(len(data))]
    store = FaissStore.create(tmp_path / "s", DIM, ivf_threshold=1000)
    add(store, ids[:800], data[:800])
    assert store.search_plans()["fused"]["kind"] == "flat"
    add(store, ids[800:1200], data[800:1200])
    first = store.search_plans()["fused"]
    assert first["kind"] == "ivf" and first["measured_at"] == 1200 and first["trained_at"] == 1200
    add(store, ids[1200:1300], data[1200:1300])  # small growth: same measurement
    assert store.search_plans()["fused"]["measured_at"] == 1200
    assert store.search_plans()["fused"]["vectors"] == 1300
    add(store, ids[1300:], data[1300:])  # 2400 >= 1.25 x 1200: measured again
    grown = store.search_plans()["fused"]
    assert grown["measured_at"] == 2400 and grown["recall_at_10"] >= TARGET_RECALL
    # a reader applies the committed nprobe
    reader = FaissStore(tmp_path / "s", read_only=True)
    assert reader._indexes["fused"].nprobe == grown["nprobe"]
    assert reader.search_plans() == store.search_plans()
    assert "IVF" in reader.describe()
    store.remove(ids[:2000])  # 400 < half the limit: exact again
    assert store.search_plans()["fused"]["kind"] == "flat" and store.kind == "flat"
    hits = store.search("fused", data[2100], 1)[0]
    assert hits.ids == ["x2100"]


def test_an_index_from_before_plans_says_so_and_is_measured_at_the_next_change(tmp_path: Path):
    """Stores written by earlier versions had IVF above 50k and no measured recall."""
    import json
    import sqlite3

    from artsim.index.faiss_files import vector_path
    from artsim.index.vector_index import all_vectors, create_ivf_index

    rng = np.random.default_rng(3)
    data = clustered(rng, 1500)
    ids = [f"x{i}" for i in range(len(data))]
    store = FaissStore.create(tmp_path / "s", DIM, ivf_threshold=100_000)
    add(store, ids, data)
    # make it look like an old store: IVF files with nprobe 3, no plan, threshold 1000
    folder = tmp_path / "s"
    for modality in ("image", "text", "fused"):
        keys, vectors = all_vectors(store._indexes[modality])
        ivf = create_ivf_index(vectors, 32)
        ivf.add_with_ids(vectors, keys)
        ivf.nprobe = 3
        faiss.write_index(ivf, str(vector_path(folder, store.generation, modality)))
    store.close()
    db = sqlite3.connect(folder / "meta.sqlite")
    with db:
        db.execute("DELETE FROM state WHERE name = 'search_plan'")
        db.execute("UPDATE state SET value = '1000' WHERE name = 'ivf_threshold'")
    db.close()
    old = FaissStore(folder, read_only=True)
    plan = old.search_plans()["fused"]
    assert plan["kind"] == "ivf" and plan["recall_at_10"] is None and plan["nprobe"] == 3
    assert "recall not measured" in old.describe()
    writer = FaissStore(folder)
    add(writer, ["new"], clustered(rng, 1))
    measured = writer.search_plans()["fused"]
    assert measured["recall_at_10"] is not None and measured["measured_at"] == 1501
    assert json.dumps(measured)  # plain JSON
