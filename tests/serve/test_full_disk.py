"""The service's writes on a disk that refuses them: a JSON 507 (full) with the reason and no
server path, nothing committed lost, no uploaded file left behind; the same request succeeds once
there is room. Also any unexpected failure is a JSON 500, never a plain-text page."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from artsim.index import faults
from artsim.serve.app import create_app

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 48, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def uploads(index: Path) -> list[str]:
    folder = index / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def post(client: TestClient, item_id: str, seed: int):
    return client.post(
        "/originals",
        data={"id": item_id, "title": "new"},
        files={"image": ("new.png", png(seed), "image/png")},
        headers=AUTH,
    )


def check_refused(answer, index: Path, before: int, client: TestClient, files: list[str]):
    assert answer.status_code == 507, answer.text
    message = answer.json()["error"]
    assert "no space left" in message and str(index) not in message and "/tmp" not in message
    assert client.get("/health").json()["count"] == before
    assert uploads(index) == files
    assert [p.name for p in index.rglob("*.tmp")] == []


def test_post_originals_on_a_full_disk_is_507_and_leaves_nothing(
    built_index: Path, small_disk, filled
):
    index = small_disk(4096) / "index"
    shutil.copytree(built_index, index)
    with TestClient(create_app(index, token=TOKEN)) as client:
        before = client.get("/health").json()["count"]
        assert post(client, "kept", 1).status_code == 201
        kept = uploads(index)
        filled(index.parent, leave=0)
        check_refused(post(client, "new-one", 2), index, before + 1, client, kept)
        # a replacement that does not fit keeps the original's own file
        check_refused(post(client, "kept", 3), index, before + 1, client, kept)
        (index.parent / ".filler").unlink()
        assert post(client, "new-one", 2).status_code == 201
        assert client.get("/health").json()["count"] == before + 2
        assert post(client, "kept", 3).status_code == 201  # replaced: its old file goes
        assert len(uploads(index)) == 2 and kept[0] not in uploads(index)


@pytest.mark.parametrize("point", ["add:rows-written", "commit:before-sqlite-commit"])
def test_injected_enospc_in_a_post_is_507_and_leaves_nothing(index_copy: Path, point, monkeypatch):
    with TestClient(create_app(index_copy, token=TOKEN)) as client:
        before = client.get("/health").json()["count"]
        faults._reached.clear()
        monkeypatch.setenv(faults.ENV_VARIABLE, f"{point}:enospc")
        check_refused(post(client, "new-one", 2), index_copy, before, client, [])
        monkeypatch.delenv(faults.ENV_VARIABLE)
        assert post(client, "new-one", 2).status_code == 201


def test_an_unexpected_failure_is_a_json_500(index_copy: Path, monkeypatch):
    app = create_app(index_copy)
    with TestClient(app, raise_server_exceptions=False) as client:
        monkeypatch.setattr(app.state.index.catalog, "count", lambda: 1 / 0)
        answer = client.get("/health")
        assert answer.status_code == 500
        assert answer.json() == {"error": "internal error: the request failed on the server"}
