"""The Milvus store against a real Milvus server started (and stopped) on 127.0.0.1 by the test.

The server is PyPI's ``milvus`` package (an embedded standalone Milvus). When it is not installed
or cannot start within the time limit, these tests are skipped and say why.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from artsim.index.build import build_index
from artsim.index.query import search_index
from artsim.index.store import MODALITIES, OriginalRecord

START_TIMEOUT_S = 120

# starting the server takes ~10 s
pytestmark = pytest.mark.slow
DIM = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("pymilvus", reason="pymilvus is not installed (extra 'milvus')")
    server_module = pytest.importorskip(
        "milvus", reason="PyPI's 'milvus' package (embedded server) is not installed"
    )
    server = server_module.MilvusServer(wait_for_started=False)
    server.set_base_dir(str(tmp_path_factory.mktemp("milvus-data")))
    server.listen_port = _free_port()
    try:
        server.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        health = f"http://127.0.0.1:{server.webservice_port}/healthz"
        while True:
            if server.server_proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {server.server_proc.returncode}")
            try:
                with urllib.request.urlopen(health, timeout=2) as answer:
                    if b"OK" in answer.read():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"not healthy after {START_TIMEOUT_S} s")
            time.sleep(0.5)
    except Exception as error:
        server.stop()
        pytest.skip(f"the Milvus server could not start on 127.0.0.1: {error}")
    try:
        yield f"milvus://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, n: int, centres: int = 6) -> np.ndarray:
    """``n`` unit vectors around a few random centres (what IVF partitions well)."""
    points = unit(rng, centres)[rng.integers(0, centres, n)] + 0.05 * rng.normal(size=(n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_milvus_store_round_trip(milvus_uri: str):
    from artsim.index.milvus_store import MilvusStore

    rng = np.random.default_rng(0)
    store = MilvusStore.create(milvus_uri, "artsim_test_roundtrip", DIM)
    try:
        ids = [f"x{i}" for i in range(30)]
        vectors = {m: unit(rng, 30) for m in ("image", "text", "fused")}
        vectors["text"][::2] = 0.0  # even ids have no caption
        records = [
            OriginalRecord(
                id=i, group="g", caption="" if n % 2 == 0 else "c", thumbnail=b"\xff\xd8x"
            )
            for n, i in enumerate(ids)
        ]
        store.add(ids, vectors, records)
        assert store.count() == 30 and sorted(store.ids()) == sorted(ids)
        query = vectors["image"][3]
        expected = np.argsort(-(vectors["image"] @ query))[:5]
        assert store.search("image", query, 5)[0].ids == [ids[i] for i in expected]
        assert set(store.search("text", unit(rng, 1), 30)[0].ids) == set(ids[1::2])
        hits = store.search("fused", query, 2, restrict_to=["x1", "x2", "nope"])[0]
        assert sorted(hits.ids) == ["x1", "x2"]
        assert hits.scores[0] == pytest.approx(
            float(vectors["fused"][int(hits.ids[0][1:])] @ query), abs=1e-5
        )
        record = store.get(["x1"], with_thumbnails=True)["x1"]
        assert record.caption == "c" and record.thumbnail == b"\xff\xd8x"
        # upsert, then remove
        store.add(["x1"], {m: unit(rng, 1) for m in ("image", "text", "fused")}, [records[1]])
        assert store.count() == 30
        assert store.remove(["x1", "unknown"]) == ["x1"]
        assert store.count() == 29 and "x1" not in store.get(["x1"])
    finally:
        store.drop()
        store.close()


def test_index_built_in_milvus(milvus_uri: str, tiny_run: Path, synthetic_manifest: Path, tmp_path):
    out = tmp_path / "milvus-index"
    index = build_index(tiny_run, synthetic_manifest, out, store=milvus_uri)
    try:
        info = json.loads((out / "index.json").read_text())
        assert info["store"] == milvus_uri and info["milvus_prefix"].startswith("artsim_")
        assert not (out / "meta.sqlite").exists()  # everything lives in Milvus
        from PIL import Image

        embedder = index.load_embedder()
        image = Image.open(synthetic_manifest.parent / "images" / "g001_orig.png")
        response = search_index(index, embedder, image=image, k=3)
        assert response.results[0].id == "g001-orig"
        assert set(response.results[0].scores) >= {"image", "fused"}
    finally:
        index.store.drop()
        index.close()


class Crash(Exception):
    """Stands for a writer killed at a fault point (Milvus keeps what was written before)."""


def crash_at(monkeypatch, name: str) -> None:
    from artsim.index import milvus_store

    def fault(point: str) -> None:
        if point == name:
            raise Crash(point)

    monkeypatch.setattr(milvus_store, "fault_point", fault)


def test_milvus_writer_stopped_mid_change_is_invisible_and_a_rerun_converges(
    milvus_uri: str, monkeypatch, tmp_path: Path
):
    from artsim.index.milvus_store import MilvusStore

    rng = np.random.default_rng(1)
    (tmp_path / "idx").mkdir()
    store = MilvusStore.create(
        milvus_uri, "artsim_test_converge", DIM, lock_folder=tmp_path / "idx"
    )
    try:
        old = [f"o{i}" for i in range(5)]
        store.add(
            old,
            {m: unit(rng, 5) for m in ("image", "text", "fused")},
            [OriginalRecord(id=i, group=i, caption="c") for i in old],
        )
        new = ["n0", "n1"]
        vectors = {m: unit(rng, 2) for m in ("image", "text", "fused")}
        records = [OriginalRecord(id=i, group=i, caption="c") for i in new]
        crash_at(monkeypatch, "milvus:vectors-written")
        with pytest.raises(Crash):
            store.add(new, vectors, records)
        # image/text vectors were written, the catalog was not: readers do not see the new ones
        assert store.count() == 5 and "n0" not in store.get(new)
        for modality in ("image", "text"):
            assert "n0" not in store.search(modality, vectors[modality][0], 10)[0].ids
            assert store.search(modality, vectors[modality][0], 3, restrict_to=new)[0].ids == []
        monkeypatch.undo()
        store.add(new, vectors, records)  # the same add again converges
        assert store.count() == 7
        for modality in ("image", "text", "fused"):
            assert store.search(modality, vectors[modality][0], 1)[0].ids == ["n0"]
        crash_at(monkeypatch, "milvus:catalog-removed")
        with pytest.raises(Crash):
            store.remove(["n1"])
        # the catalog row went first: n1 is gone for readers in every modality already
        assert store.count() == 6
        assert all("n1" not in store.search(m, vectors[m][1], 10)[0].ids for m in ("image", "text"))
        monkeypatch.undo()
        assert store.remove(["n1"]) == []  # already gone for readers; the rerun cleans up
        assert store._client.get(store._name("image"), ids=["n1"]) == []
    finally:
        store.drop()
        store.close()


def test_milvus_collections_get_a_measured_search_plan(milvus_uri: str):
    from artsim.index.milvus_store import MilvusStore

    rng = np.random.default_rng(2)
    store = MilvusStore.create(milvus_uri, "artsim_test_plan", DIM, exact_limit=200)
    try:
        assert store.search_plans()["fused"]["kind"] == "flat"
        ids = [f"x{i}" for i in range(400)]
        points = clustered(rng, 400)
        store.add(
            ids,
            {m: points for m in ("image", "text", "fused")},
            [OriginalRecord(id=i, group=i, caption="c") for i in ids],
        )
        plan = store.search_plans()["fused"]
        # either IVF_FLAT reached the target on its own vectors, or exact search was kept
        if plan["kind"] == "ivf":
            assert plan["recall_at_10"] >= 0.99 and plan["index_type"] == "IVF_FLAT"
            name = store._client.list_indexes(store._name("fused"))[0]
            described = store._client.describe_index(store._name("fused"), name)
            assert described["index_type"] == "IVF_FLAT"
        else:
            assert "exact search kept" in plan["note"]
        assert store.search("fused", points[7], 1)[0].ids == ["x7"]
    finally:
        store.drop()
        store.close()


def test_milvus_scann_plan_is_measured_and_searched_with_its_reorder_k(milvus_uri: str):
    """SCANN, the counterpart of the embedded store's PQ + re-rank plan: built, measured against
    IVF_FLAT probing every list (exact), and searched with the chosen reorder_k."""
    from artsim.index import milvus_plan
    from artsim.index.milvus_store import MilvusStore
    from artsim.index.vector_index import describe_plan

    rng = np.random.default_rng(3)
    store = MilvusStore.create(milvus_uri, "artsim_test_scann", DIM, exact_limit=100_000)
    try:
        ids = [f"r{i}" for i in range(800)]
        points = unit(rng, 800)
        store.add(
            ids,
            {m: points for m in ("image", "text", "fused")},
            [OriginalRecord(id=i, group=i, caption="c") for i in ids],
        )
        name = store._name("fused")
        ivf, sample = milvus_plan.tune_ivf(store._client, name, 56, 800)
        assert ivf["index_type"] == "IVF_FLAT" and len(sample[0]) == 300
        # drawn from the whole collection (seeded), not its first 300 rows
        assert sample[0] == milvus_plan.sample_ids(store._client, name)
        assert len(set(sample[0])) == 300 and max(int(i[1:]) for i in sample[0]) >= 700
        assert len({i for i in sample[0] if int(i[1:]) >= 300}) > 150
        truth_of = dict(zip(sample[0], sample[1], strict=True))
        assert np.allclose(
            truth_of["r" + str(int(sample[0][0][1:]))], points[int(sample[0][0][1:])]
        )
        plan = milvus_plan.tune_scann(store._client, name, 56, 800, sample)
        index_name = store._client.list_indexes(name)[0]
        assert store._client.describe_index(name, index_name)["index_type"] == "SCANN"
        assert plan["kind"] == "pq" and plan["nprobe"] == 56 and plan["rerank"] == 20
        assert plan["reached"] and plan["recall_at_10"] >= 0.99
        assert "Milvus SCANN" in describe_plan(plan) and "re-rank of the top 20" in describe_plan(
            plan
        )
        store._plans["fused"] = plan
        query = points[11]
        expected = np.argsort(-(points @ query))[:5]
        assert store.search("fused", query, 5)[0].ids == [ids[i] for i in expected]
    finally:
        store.drop()
        store.close()


def test_milvus_collection_goes_to_8_bits_at_int8_from_and_back_below_half(milvus_uri: str):
    """From ``int8_from`` vectors a collection holds IVF_SQ8 codes searched over every list
    (exact over the codes: the top hits are the float32 ones here, the scores a rounding away);
    below half of it, FLAT float32 again."""
    from artsim.index.milvus_store import MilvusStore

    rng = np.random.default_rng(4)
    store = MilvusStore.create(
        milvus_uri, "artsim_test_int8", DIM, exact_limit=100_000, int8_from=1500
    )
    try:
        ids = [f"q{i}" for i in range(1600)]
        points = unit(rng, 1600)
        records = [OriginalRecord(id=i, group=i, caption="c") for i in ids]
        store.add(ids[:1000], {m: points[:1000] for m in MODALITIES}, records[:1000])
        assert "storage" not in store.search_plans()["fused"]  # float32 below int8_from
        store.add(ids[1000:], {m: points[1000:] for m in MODALITIES}, records[1000:])
        plan = store.search_plans()["fused"]
        assert plan["storage"] == "int8" and plan["index_type"] == "IVF_SQ8"
        assert plan["kind"] == "flat" and plan["nprobe"] == plan["nlist"]
        name = store._name("fused")
        index_name = store._client.list_indexes(name)[0]
        assert store._client.describe_index(name, index_name)["index_type"] == "IVF_SQ8"
        for row in (3, 1200):
            found = store.search("fused", points[row], 3)[0]
            exact = np.argsort(-(points @ points[row]))[:3]
            assert found.ids[0] == ids[row]
            np.testing.assert_allclose(found.scores, (points @ points[row])[exact], atol=0.02)
        # held as codes, not floats: a vector's score with itself is a rounding away from 1
        own = [store.search("fused", points[row], 1)[0].scores[0] for row in range(0, 1600, 40)]
        assert 1e-5 < max(abs(1.0 - score) for score in own) < 0.02
        assert len(store.remove(ids[:900])) == 900  # 700 left: under half of int8_from
        plan = store.search_plans()["fused"]
        assert plan["kind"] == "flat" and "storage" not in plan
        index_name = store._client.list_indexes(name)[0]
        assert store._client.describe_index(name, index_name)["index_type"] == "FLAT"
    finally:
        store.drop()
        store.close()


def test_milvus_8_bit_plan_above_the_exact_limit_is_measured_against_every_list(milvus_uri: str):
    from artsim.index.milvus_store import MilvusStore

    rng = np.random.default_rng(5)
    store = MilvusStore.create(
        milvus_uri, "artsim_test_int8_ivf", DIM, exact_limit=1000, int8_from=1000
    )
    try:
        ids = [f"p{i}" for i in range(1200)]
        points = clustered(rng, 1200)
        store.add(
            ids,
            {m: points for m in MODALITIES},
            [OriginalRecord(id=i, group=i, caption="c") for i in ids],
        )
        plan = store.search_plans()["fused"]
        assert plan["kind"] == "ivf" and plan["index_type"] == "IVF_SQ8"
        assert plan["storage"] == "int8" and plan["reached"] and plan["recall_at_10"] >= 0.99
        assert 1 <= plan["nprobe"] <= plan["nlist"]
        assert store.search("fused", points[7], 1)[0].ids == ["p7"]
    finally:
        store.drop()
        store.close()
