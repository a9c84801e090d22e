"""A client generated from ``/openapi.json`` by openapi-python-client (a tool nobody here wrote)
talks to the live service: it searches by image and by text, scores a pair, adds an original
with the bearer token and reads typed results and typed errors. This is what "the OpenAPI
document is the contract" means for a user who generates a client.

The generator runs in its own environment (``make tools`` installs it into ``.venv-tools``: its
pins would downgrade the project's typer and httpx); set ``ARTSIM_OPENAPI_CLIENT`` to another
``openapi-python-client`` executable. Without one the test is skipped, saying so.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from artsim.serve.app import create_app

TOKEN = "s3cret-token-for-tests"
REPO = Path(__file__).resolve().parents[2]
PACKAGE = "artsim_api_client"


def generator() -> str:
    candidates = [
        os.environ.get("ARTSIM_OPENAPI_CLIENT", ""),
        str(REPO / ".venv-tools" / "bin" / "openapi-python-client"),
        shutil.which("openapi-python-client") or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("openapi-python-client is not installed (make tools, or ARTSIM_OPENAPI_CLIENT)")


@pytest.fixture
def service(index_copy: Path, live_server):
    """(app, base URL) of the service with a token under uvicorn on a free port."""
    app = create_app(index_copy, token=TOKEN)
    return app, live_server(app)


@pytest.fixture
def client_package(service, tmp_path: Path, monkeypatch):
    """The client generated from the running service's schema, imported."""
    app, _ = service
    command = generator()
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(app.openapi()), encoding="utf-8")
    config = tmp_path / "generator.yaml"
    config.write_text(f"post_hooks: []\npackage_name_override: {PACKAGE}\n", encoding="utf-8")
    done = subprocess.run(
        [command, "generate", "--path", str(schema), "--meta", "none", "--config", str(config),
         "--output-path", str(tmp_path / PACKAGE)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [name for name in sys.modules if name.startswith(PACKAGE)]:
        del sys.modules[name]
    return importlib.import_module(PACKAGE)


def original_png(synthetic_manifest: Path, group: str) -> bytes:
    return (synthetic_manifest.parent / "images" / f"{group}_orig.png").read_bytes()


def test_a_generated_client_searches_scores_and_adds(
    client_package, service, synthetic_manifest: Path
):
    _, url = service
    api = SimpleNamespace(
        **{
            name: importlib.import_module(f"{PACKAGE}.api.default.{name}")
            for name in ("search", "score", "original", "add_original", "health")
        }
    )
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    client = client_package.Client(base_url=url, raise_on_unexpected_status=True)
    writer = client_package.AuthenticatedClient(base_url=url, token=TOKEN)

    def picture(group: str) -> object:
        data = original_png(synthetic_manifest, group)
        return types.File(payload=io.BytesIO(data), file_name=f"{group}.png", mime_type="image/png")

    # search by image: a typed answer, its original first
    found = api.search.sync(client=client, body=models.BodySearch(image=picture("g003"), k=3))
    assert isinstance(found, models.SearchAnswer), found
    assert found.task == "image" and found.results[0].id == "g003-orig"
    assert isinstance(found.results[0], models.SearchHit) and found.results[0].score > 0.99
    # search by text
    caption = api.original.sync("g002-orig", client=client).caption
    found = api.search.sync(client=client, body=models.BodySearch(text=caption, k=2))
    assert found.task == "text" and found.results[0].id == "g002-orig"
    # score a pair of pictures
    scored = api.score.sync(
        client=client, body=models.BodyScore(image_a=picture("g001"), image_b=picture("g001"))
    )
    assert isinstance(scored, models.ScoreAnswer) and scored.task == "image"
    assert scored.score == pytest.approx(1.0, abs=1e-4)
    # add an original with the token, then find it
    pixels = np.random.default_rng(7).integers(0, 256, (48, 48, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    upload = types.File(
        payload=io.BytesIO(buffer.getvalue()), file_name="new.png", mime_type="image/png"
    )
    added = api.add_original.sync(
        client=writer, body=models.BodyAddOriginal(image=upload, id="from-a-client", title="new")
    )
    assert isinstance(added, models.Original) and added.id == "from-a-client"
    assert api.health.sync(client=client).count == 7
    # errors are typed too: the one error model, whatever the status
    refused = api.add_original.sync_detailed(
        client=client, body=models.BodyAddOriginal(image=upload, id="no-token")
    )
    assert refused.status_code == 401 and isinstance(refused.parsed, models.ErrorResponse)
    missing = api.original.sync("no-such-id", client=client)
    assert isinstance(missing, models.ErrorResponse) and "no-such-id" in missing.error
