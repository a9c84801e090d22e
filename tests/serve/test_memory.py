"""Concurrent uploads of large pictures keep the server's memory bounded.

A PNG of one flat colour is a few hundred KB on the wire but tens of megapixels once decoded.
The server runs as its own process (``python -m artsim serve``) so that its peak resident memory
(``VmHWM`` in ``/proc/PID/status``) is its own. Memory is measured, never time.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

import artsim

from .conftest import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc"),
]

CLIENTS = 6
SIDE = 6000  # 36 MP: about 108 MB as RGB, under the default 50 MP limit
MB = 1024 * 1024


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _flat_png(side: int) -> bytes:
    """A large picture that compresses to little: two flat halves (a single colour would be
    refused as uninformative before decoding mattered)."""
    picture = Image.new("RGB", (side, side), (30, 160, 90))
    picture.paste((200, 40, 60), (0, 0, side, side // 2))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def server(built_index: Path):
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(artsim.__file__).resolve().parents[1]),
        "HF_HUB_OFFLINE": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "artsim", "serve", "--index", str(built_index), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(base + "/health", timeout=5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the server did not start") from None
            time.sleep(0.2)
    yield base, process.pid
    process.terminate()
    process.wait(timeout=30)


def test_concurrent_large_uploads_keep_memory_bounded(server):
    base, pid = server
    picture = _flat_png(SIDE)
    assert len(picture) < 2 * MB
    # one small search first, so that the model's own first-use memory is in the baseline
    with httpx.Client(timeout=300) as client:
        assert client.post(f"{base}/search", data={"text": "warm up"}).status_code == 200
    baseline_kb = _status_kb(pid, "VmRSS")

    def upload(_: int) -> int:
        with httpx.Client(timeout=300) as client:
            files = {"image": ("big.png", picture, "image/png")}
            return client.post(f"{base}/search", files=files).status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(upload, range(CLIENTS)))
    assert statuses == [200] * CLIENTS
    grown_mb = (_status_kb(pid, "VmHWM") - baseline_kb) / 1024
    # Decoding one 36 MP picture needs about 108 MB; before the pixel budget all six were
    # decoded at once, each with two or three full-size copies (well over 1.5 GB).
    assert grown_mb < 600, f"the server grew by {grown_mb:.0f} MB"
