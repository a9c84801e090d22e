"""``POST /explain`` in-process: the match map of an upload against an upload or an indexed
original, as JSON and as a PNG, and the errors a person can cause."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from artsim.serve.app import create_app


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(built_index: Path):
    with TestClient(create_app(built_index, max_upload_bytes=64 * 1024, max_pixels=100_000)) as c:
        yield c


@pytest.fixture
def collage(synthetic_manifest: Path):
    """``collage(group)``: (A, B) PNG bytes; A is the group's original (32 px) pasted at the
    bottom right of a 64 px noisy ground."""

    def make(group: str) -> tuple[bytes, bytes]:
        original = Image.open(synthetic_manifest.parent / "images" / f"{group}_orig.png")
        original = original.convert("RGB")
        ground = np.random.default_rng(7).integers(0, 256, (8, 8, 3), dtype=np.uint8)
        canvas = Image.fromarray(ground).resize((64, 64), Image.Resampling.BICUBIC)
        canvas.paste(original, (32, 32))
        return _png(canvas), _png(original)

    return make


def test_the_map_points_at_the_pasted_original(client: TestClient, collage) -> None:
    a, b = collage("g004")
    answer = client.post("/explain", files={"image_a": ("a.png", a), "image_b": ("b.png", b)})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    x, y = data["a"]["peak"]
    assert x >= 0.5 and y >= 0.5
    link = data["link"]["a"]
    assert (link[0] + link[2]) / 2 >= 0.5 and (link[1] + link[3]) / 2 >= 0.5
    assert len(data["a"]["grid"]) == data["cells"] == 12 and data["part"] == "image"
    assert len(data["model_id"]) == 16


def test_an_indexed_original_is_side_b(client: TestClient, collage) -> None:
    a, _ = collage("g002")
    answer = client.post(
        "/explain", files={"image_a": ("a.png", a)}, data={"original_id": "g002-orig", "cells": 8}
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["original_id"] == "g002-orig" and len(data["b"]["grid"]) == 8
    x, y = data["a"]["peak"]
    assert x >= 0.5 and y >= 0.5


def test_the_png_shows_both_sides(client: TestClient, collage) -> None:
    a, b = collage("g001")
    answer = client.post(
        "/explain",
        files={"image_a": ("a.png", a), "image_b": ("b.png", b)},
        data={"format": "png"},
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(answer.content)) as picture:
        assert picture.width > picture.height


@pytest.mark.parametrize(
    ("files", "data", "status", "message"),
    [
        ({}, {"text_a": "a red fox", "text_b": "a fox"}, 400, "a text has no regions"),
        ({}, {}, 400, "no picture was sent"),
        ({"image_b": ("b.png", "B")}, {}, 400, "artwork A: give image_a"),
        ({"image_a": ("a.png", "A")}, {"text_b": "a fox"}, 400, "artwork B: give image_b"),
        ({"image_a": ("a.png", "A")}, {"original_id": "nope"}, 404, "no original with id"),
        (
            {"image_a": ("a.png", "A"), "image_b": ("b.png", "B")},
            {"original_id": "g000-orig"},
            400,
            "not both",
        ),
        ({"image_a": ("a.png", "A"), "image_b": ("b.png", "B")}, {"part": "copy"}, 400, "parts"),
        ({"image_a": ("a.png", "A"), "image_b": ("b.png", "B")}, {"method": "x"}, 400, "method"),
        ({"image_a": ("a.png", "A"), "image_b": ("b.png", "B")}, {"format": "gif"}, 400, "format"),
        ({"image_a": ("a.png", "A"), "image_b": ("b.png", "B")}, {"cells": "999"}, 400, "cells"),
        ({"image_a": ("a.txt", b"hello"), "image_b": ("b.png", "B")}, {}, 415, "not an image"),
        ({"image_a": ("a.png", "HUGE"), "image_b": ("b.png", "B")}, {}, 422, "pixels"),
        ({"image_a": ("a.png", "BIG"), "image_b": ("b.png", "B")}, {}, 413, "upload limit"),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    client: TestClient, collage, files: dict, data: dict, status: int, message: str
) -> None:
    a, b = collage("g000")
    huge = _png(Image.new("RGB", (400, 400), (10, 20, 30)))  # 160,000 pixels, over 100,000
    noise = np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    big = _png(Image.fromarray(noise))  # over the 64 KiB upload limit
    contents = {"A": a, "B": b, "HUGE": huge, "BIG": big}
    sent = {
        field: (name, contents.get(body, body) if isinstance(body, str) else body)
        for field, (name, body) in files.items()
    }
    answer = client.post("/explain", files=sent or None, data=data)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]
    assert "Traceback" not in answer.text


def test_explain_is_in_the_contract(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/explain"]["post"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    fields = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]["properties"]
    assert fields["image_a"]["format"] == fields["image_b"]["format"] == "binary"
    answers = operation["responses"]
    assert {"image/png", "application/json"} <= set(answers["200"]["content"])
    assert {"400", "404", "413", "415", "422", "503", "default"} <= set(answers)
    assert "ExplainAnswer" in schema["components"]["schemas"]


def test_a_plain_picture_has_nothing_to_map(client: TestClient, collage) -> None:
    a, _ = collage("g003")
    plain = _png(Image.new("RGB", (48, 48), (250, 250, 250)))
    answer = client.post("/explain", files={"image_a": ("a.png", a), "image_b": ("b.png", plain)})
    assert answer.status_code == 422
    assert "image_b" in answer.json()["error"] and "one colour" in answer.json()["error"]
