"""The embedded store: exact and IVF search against a plain loop, upserts, atomic changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from artsim.errors import UserError
from artsim.index import faiss_files
from artsim.index.faiss_store import FaissStore
from artsim.index.store import OriginalRecord

DIM = 8


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def add_random(store: FaissStore, ids: list[str], rng, caption_every: int = 2):
    vectors = {
        "image": unit(rng, len(ids)),
        "text": unit(rng, len(ids)),
        "fused": unit(rng, len(ids)),
    }
    captions = ["c" if i % caption_every == 0 else "" for i in range(len(ids))]
    vectors["text"][[not c for c in captions]] = 0.0
    records = [
        OriginalRecord(id=i, group=f"g{i}", caption=c, thumbnail=b"\xff\xd8jpeg")
        for i, c in zip(ids, captions, strict=True)
    ]
    store.add(ids, vectors, records)
    return vectors


def brute_force(matrix: np.ndarray, ids: list[str], query: np.ndarray, k: int) -> list[str]:
    """The plain loop the store must agree with."""
    scored = [
        (float(np.dot(row, query)), item_id) for row, item_id in zip(matrix, ids, strict=True)
    ]
    scored.sort(key=lambda pair: -pair[0])
    return [item_id for _, item_id in scored[:k]]


def test_flat_search_matches_a_plain_loop(tmp_path: Path):
    rng = np.random.default_rng(0)
    store = FaissStore.create(tmp_path / "s", DIM)
    ids = [f"x{i}" for i in range(60)]
    vectors = add_random(store, ids, rng)
    assert store.kind == "flat" and store.count() == 60
    for query in unit(rng, 5):
        assert store.search("image", query, 7)[0].ids == brute_force(
            vectors["image"], ids, query, 7
        )
    # originals without a caption have no text vector and never come back from a text search
    found = store.search("text", unit(rng, 1), 60)[0].ids
    assert sorted(found) == sorted(ids[::2])


def test_restricted_search_gives_exact_scores(tmp_path: Path):
    rng = np.random.default_rng(1)
    store = FaissStore.create(tmp_path / "s", DIM)
    ids = [f"x{i}" for i in range(20)]
    vectors = add_random(store, ids, rng)
    query = unit(rng, 1)[0]
    hits = store.search("fused", query, 3, restrict_to=["x3", "x5", "x7", "nope"])[0]
    expected = {i: float(vectors["fused"][int(i[1:])] @ query) for i in ("x3", "x5", "x7")}
    assert sorted(hits.ids) == sorted(expected)
    for item_id, score in zip(hits.ids, hits.scores, strict=True):
        assert score == pytest.approx(expected[item_id], abs=1e-5)
    # x3, x5, x7 have no caption: no text score
    assert store.search("text", query, 3, restrict_to=["x3", "x4"])[0].ids == ["x4"]


def test_upsert_remove_and_reopen(tmp_path: Path):
    rng = np.random.default_rng(2)
    store = FaissStore.create(tmp_path / "s", DIM)
    add_random(store, ["a", "b", "c"], rng)
    replaced = add_random(store, ["b"], rng)
    assert store.count() == 3
    assert store.search("image", replaced["image"][0], 1)[0].ids == ["b"]
    assert store.remove(["a", "zzz"]) == ["a"]
    assert store.remove(["zzz"]) == []
    store.close()
    reopened = FaissStore(tmp_path / "s")
    assert sorted(reopened.ids()) == ["b", "c"]
    record = reopened.get(["b"], with_thumbnails=True)["b"]
    assert record.group == "gb" and record.thumbnail == b"\xff\xd8jpeg"
    assert "b" not in reopened.get(["b"]) or reopened.get(["b"])["b"].thumbnail is None
    # only the current generation's files stay
    assert len(list((tmp_path / "s" / "vectors").iterdir())) == 3


def test_read_only_store_refuses_writes_and_sees_new_generations(tmp_path: Path):
    rng = np.random.default_rng(3)
    writer = FaissStore.create(tmp_path / "s", DIM)
    add_random(writer, ["a"], rng)
    reader = FaissStore(tmp_path / "s", read_only=True)
    with pytest.raises(UserError):
        reader.remove(["a"])
    vectors = add_random(writer, ["b"], rng)
    assert reader.search("image", vectors["image"][0], 1)[0].ids == ["b"]
    assert reader.count() == 2


def test_interrupted_add_leaves_the_store_as_it_was(tmp_path: Path, monkeypatch):
    rng = np.random.default_rng(4)
    store = FaissStore.create(tmp_path / "s", DIM)
    before = add_random(store, ["a", "b"], rng)
    real_write = faiss_files.fsync_write
    calls = []

    def failing_write(index, path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl+C half-way
        real_write(index, path)

    monkeypatch.setattr(faiss_files, "fsync_write", failing_write)
    with pytest.raises(KeyboardInterrupt):
        add_random(store, ["c", "a"], rng)
    monkeypatch.setattr(faiss_files, "fsync_write", real_write)
    reopened = FaissStore(tmp_path / "s")
    assert sorted(reopened.ids()) == ["a", "b"]
    assert reopened.search("image", before["image"][0], 1)[0].ids == ["a"]
    # and it still takes changes; the next commit removes what the interrupted one left
    add_random(reopened, ["c"], rng)
    assert reopened.count() == 3
    assert len(list((tmp_path / "s" / "vectors").iterdir())) == 3


def clustered(rng: np.random.Generator, n: int, centers: int = 30, noise: float = 0.08):
    """Unit vectors around a few centres: the structure real embeddings have and IVF needs."""
    middle = unit(rng, centers)
    points = middle[rng.integers(0, centers, n)] + noise * rng.normal(size=(n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def add_clustered(store: FaissStore, ids: list[str], rng) -> dict[str, np.ndarray]:
    vectors = {m: clustered(rng, len(ids)) for m in ("image", "text", "fused")}
    store.add(ids, vectors, [OriginalRecord(id=i, group=i, caption="c") for i in ids])
    return vectors


def test_switches_to_ivf_above_the_threshold(tmp_path: Path):
    rng = np.random.default_rng(5)
    store = FaissStore.create(tmp_path / "s", DIM, ivf_threshold=400)
    ids = [f"x{i}" for i in range(300)]
    first = add_clustered(store, ids, rng)
    assert store.kind == "flat"
    more = [f"y{i}" for i in range(300)]
    second = add_clustered(store, more, rng)
    assert store.kind == "ivf" and store.count() == 600
    assert store.search_plans()["image"]["recall_at_10"] >= 0.99
    store.set_nprobe(10_000)  # probing every list makes IVF exact: compare with the loop
    all_ids = ids + more
    matrix = np.concatenate([first["image"], second["image"]])
    for query in unit(rng, 5):
        assert store.search("image", query, 5)[0].ids == brute_force(matrix, all_ids, query, 5)
    # reconstruct keeps working on IVF: restricted scores are exact
    hits = store.search("image", matrix[0], 2, restrict_to=["x0", "y1"])[0]
    assert hits.ids[0] == "x0" and hits.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert store.remove(["x0"]) == ["x0"]
    reopened = FaissStore(tmp_path / "s", read_only=True)
    assert reopened.kind == "ivf" and reopened.count() == 599
    assert "x0" not in reopened.search("image", matrix[0], 5, restrict_to=["x0", "x1"])[0].ids
