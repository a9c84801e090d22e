"""The HTTP API in-process (FastAPI's TestClient): answers, errors and their status codes."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from artsim.errors import ModelMismatchError
from artsim.serve.app import create_app

TOKEN = "s3cret-token-for-tests"


def png_bytes(size: int = 32, noise: bool = False, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size, size, 3)) if noise else np.full((size, size, 3), 200)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder`` with its content hash and modification time."""
    return {
        str(path.relative_to(folder)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def client(built_index: Path):
    with TestClient(create_app(built_index, max_upload_bytes=64 * 1024, max_pixels=100_000)) as c:
        yield c


@pytest.fixture
def original_png(synthetic_manifest: Path):
    def read(group: str) -> bytes:
        return (synthetic_manifest.parent / "images" / f"{group}_orig.png").read_bytes()

    return read


def test_health_docs_and_page(client: TestClient):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["count"] == 6 and len(health["model_id"]) == 16
    assert health["writable"] is False and health["calibration"]["status"] == "uncalibrated"
    assert client.get("/docs").status_code == 200
    assert "/search" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "artsim" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_search_by_image_ranks_its_original_first(client: TestClient, original_png):
    for group in ("g000", "g003", "g005"):
        answer = client.post("/search", files={"image": ("x.png", original_png(group))})
        assert answer.status_code == 200, answer.text
        first = answer.json()["results"][0]
        assert first["id"] == f"{group}-orig" and first["group"] == group
        assert first["title"] and first["verdict"] == "uncalibrated"
        assert first["scores"]["image"] == pytest.approx(1.0, abs=1e-4)
        assert client.get(first["thumbnail_url"]).headers["content-type"] == "image/jpeg"


def test_search_by_text_and_both(client: TestClient, original_png, synthetic_manifest):
    caption = client.get("/originals/g002-orig").json()["caption"]
    answer = client.post("/search", data={"text": caption, "k": "3"}).json()
    assert answer["task"] == "text" and len(answer["results"]) == 3
    assert answer["results"][0]["id"] == "g002-orig"
    both = client.post(
        "/search", files={"image": ("a.png", original_png("g002"))}, data={"text": caption}
    ).json()
    assert both["task"] == "fused" and both["results"][0]["id"] == "g002-orig"
    assert set(both["results"][0]["scores"]) == {"image", "text", "i2t", "t2i", "fused"}


def test_type_is_sniffed_from_the_bytes(client: TestClient, original_png):
    # a PNG called .txt is an image; a text file called .png is not
    assert (
        client.post("/search", files={"image": ("notes.txt", original_png("g001"))}).status_code
        == 200
    )
    answer = client.post("/search", files={"image": ("fake.png", b"just some text, not pixels")})
    assert answer.status_code == 415 and "not an image" in answer.json()["error"]


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({}, 400, "give an image, a text"),
        ({"data": {"text": "   "}}, 400, "give an image, a text"),
        ({"data": {"text": "x", "k": "0"}}, 400, "k"),
        ({"data": {"text": "x", "k": "many"}}, 400, "k"),
        ({"files": {"image": ("big.png", png_bytes(200, noise=True))}}, 413, "limit"),
        ({"files": {"image": ("huge.png", png_bytes(400))}}, 422, "too large"),
        ({"files": {"image": ("cut.png", png_bytes(32, noise=True)[:300])}}, 422, "corrupt"),
        ({"files": {"image": ("empty.png", b"")}}, 422, "empty"),
    ],
)
def test_bad_input_gets_a_clear_error(client: TestClient, kwargs, status, words):
    answer = client.post("/search", **kwargs)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]


def test_a_body_far_over_the_limit_is_refused_before_parsing(client: TestClient):
    answer = client.post(
        "/search",
        content=b"x" * (1024 * 1024),
        headers={"content-type": "multipart/form-data; boundary=zzz"},
    )
    assert answer.status_code == 413 and "limit" in answer.json()["error"]


def test_originals_and_thumbnails(client: TestClient):
    record = client.get("/originals/g004-orig").json()
    assert record["id"] == "g004-orig" and record["group"] == "g004" and "thumbnail" not in record
    thumbnail = client.get("/originals/g004-orig/thumbnail")
    assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"
    for path in ("/originals/nope", "/originals/nope/thumbnail"):
        answer = client.get(path)
        assert answer.status_code == 404 and "nope" in answer.json()["error"]
    assert client.get("/no/such/page").json() == {"error": "Not Found"}


def test_score(client: TestClient, original_png):
    same = client.post(
        "/score",
        files={
            "image_a": ("a.png", original_png("g001")),
            "image_b": ("b.png", original_png("g001")),
        },
    ).json()
    assert same["task"] == "image" and same["score"] == pytest.approx(1.0, abs=1e-4)
    assert same["verdict"] == "uncalibrated"
    texts = client.post("/score", data={"text_a": "a red fox", "text_b": "a red fox"}).json()
    assert texts["task"] == "text"
    answer = client.post("/score", files={"image_a": ("a.png", original_png("g001"))})
    assert answer.status_code == 400 and "artwork B" in answer.json()["error"]


def test_read_only_service_changes_nothing_on_disk(built_index: Path, client, original_png):
    before = snapshot(built_index)
    client.post("/search", files={"image": ("a.png", original_png("g000"))}, data={"text": "x"})
    client.post("/search", data={"text": "a new text never seen"})
    client.post("/score", data={"text_a": "a", "text_b": "b"})
    client.get("/originals/g000-orig/thumbnail")
    client.get("/health")
    # writes are refused without a configured token, whatever the header says
    answer = client.post(
        "/originals",
        files={"image": ("n.png", original_png("g000"))},
        data={"id": "new"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 403 and "read-only" in answer.json()["error"]
    assert client.delete("/originals/g000-orig").status_code == 403
    assert snapshot(built_index) == before


def test_writes_need_the_token(index_copy: Path, original_png):
    with TestClient(create_app(index_copy, token=TOKEN)) as client:
        upload = {"image": ("mine.png", png_bytes(48, noise=True, seed=7))}
        fields = {"id": "upload-1", "title": "Mine", "caption": "noise"}
        assert client.post("/originals", files=upload, data=fields).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        assert (
            client.post("/originals", files=upload, data=fields, headers=wrong).status_code == 401
        )
        auth = {"Authorization": f"Bearer {TOKEN}"}
        not_image = {"image": ("x.png", b"plain text")}
        assert (
            client.post("/originals", files=not_image, data=fields, headers=auth).status_code == 415
        )
        answer = client.post("/originals", files=upload, data=fields, headers=auth)
        assert answer.status_code == 201, answer.text
        assert answer.json()["group"] == "upload-1" and answer.json()["source"] == "upload"
        assert client.get("/health").json()["count"] == 7
        found = client.post(
            "/search", files={"image": ("q.png", png_bytes(48, noise=True, seed=7))}
        )
        assert found.json()["results"][0]["id"] == "upload-1"
        assert len(list((index_copy / "uploads").iterdir())) == 1
        assert client.delete("/originals/upload-1").status_code == 401
        assert client.delete("/originals/upload-1", headers=auth).json()["count"] == 6
        assert client.delete("/originals/upload-1", headers=auth).status_code == 404
        assert not list((index_copy / "uploads").iterdir())


def test_service_refuses_another_model(index_copy: Path, tmp_path: Path, make_run):
    other = make_run(tmp_path / "other", seed=3)
    with pytest.raises(ModelMismatchError) as caught:
        create_app(index_copy, run=other)
    assert caught.value.status_code == 409


def test_search_gives_graded_verdicts_with_probabilities_once_calibrated(
    index_copy: Path, original_png
):
    """After `artsim calibrate` on the collection, a running service answers with graded
    verdicts (copy/derived/related/unrelated), the score that decided and a probability."""
    from artsim.index.calibrate import calibrate_index
    from artsim.index.catalog import ArtIndex

    with TestClient(create_app(index_copy)) as c:
        before = c.post("/search", files={"image": ("x.png", original_png("g001"))}).json()
        assert before["results"][0]["verdict"] == "uncalibrated"
        index = ArtIndex.open(index_copy)
        calibrate_index(index, index.load_embedder(), sample=6)
        index.close()
        after = c.post("/search", files={"image": ("x.png", original_png("g001"))}).json()
    assert after["calibration"]["status"] == "calibrated"
    assert after["calibration"]["source"] == "collection"
    assert after["calibration"]["rate"] == 0.01 and "image" in after["calibration"]["thresholds"]
    graded = {"copy", "derived", "related", "unrelated"}
    for result in after["results"]:
        assert result["verdict"] in graded and 0.0 < result["probability"] < 1.0
        assert result["decided_by"] in ("image", "text")
    # the original's own picture: nothing closer, and the copy threshold is met
    assert after["results"][0]["verdict"] == "copy"
