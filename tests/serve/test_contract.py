"""The service's OpenAPI document is its contract: upload fields are binary, every declared
error is the one error model, the token is a bearer security scheme, answers are typed; bodies
over the limit are 413 however they are sent; answers name no server path; the API pages work
offline (their scripts come from the package)."""

from __future__ import annotations

import io
import multiprocessing
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from artsim.cli.index import main as index_main
from artsim.serve.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "index"))
from fault_worker import hold

TOKEN = "s3cret-token-for-tests"
UPLOADS = {
    ("/search", "post"): ["image"],
    ("/score", "post"): ["image_a", "image_b"],
    ("/originals", "post"): ["image"],
}


@pytest.fixture(scope="module")
def app(built_index: Path):
    return create_app(built_index, token=TOKEN, max_upload_bytes=64 * 1024)


@pytest.fixture(scope="module")
def schema(app) -> dict:
    with TestClient(app) as client:
        return client.get("/openapi.json").json()


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_upload_fields_are_binary(schema: dict):
    for (path, method), fields in UPLOADS.items():
        body = schema["paths"][path][method]["requestBody"]["content"]["multipart/form-data"]
        properties = resolve(schema, body["schema"])["properties"]
        for field in fields:
            assert properties[field].get("format") == "binary", (path, field, properties[field])
            assert "anyOf" not in properties[field]


def test_every_declared_error_is_the_one_error_model(schema: dict):
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    error = schema["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"] and error["additionalProperties"] is False
    declared = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "default" in responses and "500" in responses, (path, method)
            for status, response in responses.items():
                if status == "default" or int(status) >= 400:
                    declared += 1
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), (path, method, status)
    assert declared >= 30
    search = schema["paths"]["/search"]["post"]["responses"]
    assert {"400", "413", "415", "422", "503"} <= set(search)
    assert {"401", "403", "507"} <= set(schema["paths"]["/originals"]["post"]["responses"])


def test_the_token_is_a_bearer_security_scheme(schema: dict):
    schemes = schema["components"]["securitySchemes"]
    assert schemes == {
        "token": {
            "type": "http",
            "scheme": "bearer",
            "description": schemes["token"]["description"],
        }
    }
    for path, method in (("/originals", "post"), ("/originals/{item_id}", "delete")):
        operation = schema["paths"][path][method]
        assert operation["security"] == [{"token": []}]
        assert not any(
            p["name"].lower() == "authorization" for p in operation.get("parameters", [])
        )
    assert "security" not in schema["paths"]["/search"]["post"]


def test_answers_are_typed(schema: dict):
    for path, method, status, model in (
        ("/search", "post", "200", "SearchAnswer"),
        ("/score", "post", "200", "ScoreAnswer"),
        ("/health", "get", "200", "Health"),
        ("/originals/{item_id}", "get", "200", "Original"),
        ("/originals", "post", "201", "Original"),
        ("/originals/{item_id}", "delete", "200", "Removed"),
    ):
        content = schema["paths"][path][method]["responses"][status]["content"]
        assert content["application/json"]["schema"]["$ref"].endswith(f"/{model}")
    hit = schema["components"]["schemas"]["SearchHit"]
    assert {"id", "score", "scores", "verdict", "probability"} <= set(hit["properties"])
    thumbnail = schema["paths"]["/originals/{item_id}/thumbnail"]["get"]["responses"]["200"]
    assert thumbnail["content"]["image/jpeg"]["schema"]["format"] == "binary"


def test_an_upload_field_sent_as_text_is_a_clear_422(app):
    with TestClient(app) as client:
        answer = client.post("/search", data={"image": "not a file", "text": "x"})
    assert answer.status_code == 422
    assert "without a filename" in answer.json()["error"]


def _chunks(total: int, piece: bytes):
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)


@pytest.mark.parametrize(
    ("content_type", "total"),
    [
        ("application/x-www-form-urlencoded", 30 * 1024 * 1024),
        ("multipart/form-data; boundary=zzz", 2 * 1024 * 1024),
    ],
)
def test_a_chunked_body_over_the_limit_is_413(app, content_type, total):
    piece = b"text=" + b"x" * 65531 if "urlencoded" in content_type else b"x" * 65536
    with TestClient(app) as client:
        answer = client.post(
            "/search", content=_chunks(total, piece), headers={"content-type": content_type}
        )
    assert answer.status_code == 413, answer.text
    assert "over the limit" in answer.json()["error"]


def test_a_chunked_upload_over_the_limit_is_413(app):
    pixels = np.random.default_rng(0).integers(0, 256, (400, 400, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    boundary = b"zzz"
    body = (
        b'--zzz\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + buffer.getvalue() * 2 + b"\r\n--zzz--\r\n"
    )
    pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
    with TestClient(app) as client:
        answer = client.post(
            "/search",
            content=pieces,
            headers={"content-type": f"multipart/form-data; boundary={boundary.decode()}"},
        )
    assert answer.status_code == 413, answer.text


def test_a_busy_index_answers_503_without_server_paths(index_copy: Path, monkeypatch):
    command = ["/srv/secret-place/.venv/bin/artsim", "serve", "--index"]
    with TestClient(create_app(index_copy, token=TOKEN)) as client:
        context = multiprocessing.get_context("forkserver")
        locked = context.Event()
        holder = context.Process(target=hold, args=(index_copy, 30, locked, command))
        holder.start()
        try:
            assert locked.wait(60)
            assert "/srv/secret-place" in (index_copy / "write.lock").read_text()
            monkeypatch.setenv("ARTSIM_INDEX_LOCK_TIMEOUT", "0.2")
            answer = client.delete(
                "/originals/g001-orig", headers={"Authorization": f"Bearer {TOKEN}"}
            )
        finally:
            holder.kill()
            holder.join()
    assert answer.status_code == 503 and answer.headers["retry-after"]
    message = answer.json()["error"]
    assert f"pid {holder.pid}" in message and "try again" in message
    assert "/" not in message, message


def test_a_damaged_index_answers_500_without_server_paths(index_copy: Path):
    with TestClient(create_app(index_copy)) as client:
        assert index_main(["remove", "--index", str(index_copy), "--id", "g000-orig"]) == 0
        next((index_copy / "vectors").glob("*-text.faiss")).write_bytes(b"")
        answer = client.post("/search", data={"text": "a red circle"})
    assert answer.status_code == 500
    message = answer.json()["error"]
    assert "is empty" in message and "<server>" in message
    assert str(index_copy) not in message and "/tmp" not in message, message


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_pages_load_nothing_from_elsewhere(app, page):
    with TestClient(app) as client:
        html = client.get(page).text
        assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
        urls = re.findall(r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""", html)
        assert assets, html
        for url in assets + urls:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            fetched = client.get(url)
            assert fetched.status_code == 200 and fetched.content, url
        assert "cdn" not in html.lower()
