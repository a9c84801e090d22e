"""Bounded work per request and safe ids: long texts, bodies without files, huge pictures,
uploads without a filename, ids that cannot be a URL path segment, no server paths in answers."""

from __future__ import annotations

import http.client
import io
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from artsim.data.pictures.images import load_rgb_bytes
from artsim.serve.app import MAX_TEXT_CHARS, PixelBudget, create_app

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def png_bytes(width: int, height: int | None = None, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height or width, width, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(built_index: Path):
    with TestClient(create_app(built_index, max_text_chars=50)) as c:
        yield c


@pytest.fixture
def writable(index_copy: Path):
    with TestClient(create_app(index_copy, token=TOKEN)) as c:
        yield c


def test_default_text_budget_is_documented_size():
    assert MAX_TEXT_CHARS == 2_000


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_long_text_is_cut_and_the_answer_says_so(client: TestClient, encoding):
    long_text = "a red fox " * 40  # 400 characters, budget 50
    if encoding == "multipart":
        answer = client.post("/search", files={"text": (None, long_text)})
    else:
        answer = client.post("/search", data={"text": long_text})
    assert answer.status_code == 200, answer.text
    assert answer.json()["truncated"] == [
        {"field": "text", "given_chars": 400, "used_chars": 50, "used_tokens": None}
    ]
    # the cut text scores exactly as its first 50 characters do
    short = client.post("/search", data={"text": long_text[:50]}).json()
    assert short["truncated"] == []
    assert [r["score"] for r in short["results"]] == [r["score"] for r in answer.json()["results"]]


def test_score_cuts_both_texts(client: TestClient):
    answer = client.post("/score", data={"text_a": "x" * 60, "text_b": "y" * 10})
    assert answer.status_code == 200, answer.text
    assert answer.json()["truncated"] == [
        {"field": "text_a", "given_chars": 60, "used_chars": 50, "used_tokens": None}
    ]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "application/json"])
def test_a_large_body_without_files_is_refused(client: TestClient, content_type):
    # 400 KB: under the multipart limit, over the limit for bodies that carry no file
    body = b"text=" + b"x" * (400 * 1024)
    answer = client.post("/search", content=body, headers={"content-type": content_type})
    assert answer.status_code == 413, answer.text
    assert "without files" in answer.json()["error"]


def test_an_image_sent_without_a_filename_gets_a_clear_422(client: TestClient, writable):
    answer = client.post("/search", files={"image": (None, "not a file")})
    assert answer.status_code == 422, answer.text
    assert "without a filename" in answer.json()["error"]
    answer = writable.post(
        "/originals", files={"image": (None, "abc")}, data={"id": "x"}, headers=AUTH
    )
    assert answer.status_code == 422, answer.text
    assert "without a filename" in answer.json()["error"]


def refused_upload(client: TestClient, bad_id: str) -> str:
    """Upload a picture under ``bad_id``: the one-line error of the 422 that refuses it."""
    answer = client.post(
        "/originals",
        files={"image": ("a.png", png_bytes(40, seed=1))},
        data={"id": bad_id},
        headers=AUTH,
    )
    assert answer.status_code == 422, answer.text
    assert client.get("/health").json()["count"] == 6
    return answer.json()["error"]


@pytest.mark.parametrize("bad_id", ["a/b", ".", "..", "../x", "a\\b", " .. "])
def test_upload_ids_that_cannot_be_a_path_segment_are_refused(writable: TestClient, bad_id):
    assert "id" in refused_upload(writable, bad_id)


@pytest.mark.parametrize("bad_id", [" x", "x ", "x\n"])
def test_upload_ids_with_outer_whitespace_are_refused_not_changed(writable: TestClient, bad_id):
    error = refused_upload(writable, bad_id)
    assert error.startswith(f"id {bad_id!r} has leading or trailing whitespace")
    assert writable.get("/originals/x").status_code == 404


@pytest.mark.parametrize("group", ["", "   ", None])
def test_an_upload_with_a_blank_group_is_its_own_group(writable: TestClient, group):
    # a blank group is no group: the original stands alone, as when none is given (a group of
    # spaces used to be stripped to "", an empty group that manifests refuse)
    data = {"id": "alone"} if group is None else {"id": "alone", "group": group}
    answer = writable.post(
        "/originals", files={"image": ("a.png", png_bytes(40, seed=1))}, data=data, headers=AUTH
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["group"] == "alone"
    assert writable.get("/originals/alone").json()["group"] == "alone"


def test_an_upload_with_a_plain_odd_id_round_trips(writable: TestClient):
    item_id = 'Ünïcode, "quoted" id.v2'
    answer = writable.post(
        "/originals",
        files={"image": ("a.png", png_bytes(40, seed=2))},
        data={"id": item_id},
        headers=AUTH,
    )
    assert answer.status_code == 201, answer.text
    fetched = writable.get(answer.json()["thumbnail_url"].removesuffix("/thumbnail"))
    assert fetched.json()["id"] == item_id


def test_no_server_paths_in_answers(writable: TestClient, built_index: Path):
    record = writable.get("/originals/g000-orig").json()
    assert "image_path" not in record
    added = writable.post(
        "/originals",
        files={"image": ("a.png", png_bytes(40, seed=3))},
        data={"id": "new-one"},
        headers=AUTH,
    ).json()
    assert "image_path" not in added
    for answer in (record, added):
        assert "/" + built_index.parts[1] not in str(answer)  # e.g. /tmp: no absolute path


def _raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET without URL normalisation (http.client sends the path as given)."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_dot_segments_never_return_the_page(built_index: Path, live_server):
    base = live_server(create_app(built_index))
    status, body = _raw_get(base, "/")
    assert status == 200 and b"<html" in body.lower()
    for path in ("/originals/..", "/originals/.", "/originals/%2E%2E", "/originals/../thumbnail"):
        status, body = _raw_get(base, path)
        assert b"<html" not in body.lower(), path
        assert status == 404, (path, status)


def test_large_pictures_are_decoded_at_reduced_size():
    # a 3000x2500 JPEG is decoded by draft at an eighth or a quarter, then reduced
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 2500), (200, 30, 30)).save(buffer, format="JPEG")
    picture = load_rgb_bytes(buffer.getvalue(), "big.jpg", max_side=512)
    assert max(picture.size) <= 512 and picture.mode == "RGB"
    assert picture.getpixel((10, 10))[0] > 150
    # a PNG has no draft mode: reduced by an integer factor after decoding
    big_png = png_bytes(1500, 1000, seed=4)
    picture = load_rgb_bytes(big_png, "big.png", max_side=512)
    assert picture.size == (500, 334)
    # within max_side nothing changes
    small = png_bytes(300, 200, seed=5)
    assert load_rgb_bytes(small, max_side=512).tobytes() == load_rgb_bytes(small).tobytes()


def test_pixel_budget_admits_no_more_than_its_capacity():
    import asyncio

    async def scenario() -> list[int]:
        budget = PixelBudget(100)
        peaks: list[int] = []

        async def request(pixels: int) -> None:
            async with budget.reserve(pixels):
                peaks.append(budget.used)
                await asyncio.sleep(0)
                await asyncio.sleep(0)

        await asyncio.gather(*(request(p) for p in (60, 60, 30, 500, 10, 90)))
        assert budget.used == 0
        return peaks

    peaks = asyncio.run(scenario())
    assert len(peaks) == 6 and max(peaks) <= 100


@pytest.mark.parametrize("bad_id", ["a\x00b", "a\nb", "a\rb", "tab\there", "del\x7f", "c1\x85x"])
def test_upload_ids_with_control_characters_are_refused(writable: TestClient, bad_id):
    error = refused_upload(writable, bad_id)
    assert "control character" in error and "\n" not in error
