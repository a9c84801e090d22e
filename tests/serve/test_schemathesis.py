"""Property-based requests from the service's own OpenAPI document, by schemathesis (its command
line, a client nobody here wrote), sent to the live service over HTTP: no 5xx, and every answer
(status, content type, body, headers) is one the document declares. A bounded number of
examples per operation (20, deterministic) keeps it near ten seconds."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from artsim.serve.app import create_app

TOKEN = "s3cret-token-for-tests"
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)


def schemathesis_command() -> str:
    beside = Path(sys.executable).with_name("schemathesis")
    found = str(beside) if beside.is_file() else shutil.which("schemathesis")
    if found is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    return found


@pytest.fixture
def live_url(index_copy: Path, live_server):
    """The service (with a token, on a copy of the index) under uvicorn on a free port."""
    app = create_app(index_copy, token=TOKEN, max_upload_bytes=256 * 1024, max_pixels=1_000_000)
    return live_server(app)


def test_every_answer_is_one_the_schema_declares(live_url: str, tmp_path: Path):
    command = [
        schemathesis_command(),
        "run",
        f"{live_url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        "20",
        "--generation-deterministic",
        "--phases",
        "examples,coverage,fuzzing",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--no-color",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    assert "8 selected / 8 total" in report and "Failures" not in report, report[-3000:]
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", report).groups())
    assert generated == passed >= 100, report[-3000:]
