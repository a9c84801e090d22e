"""The pixel budget admits first come, first served: no timing, the order is forced by events."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from artsim.serve.app import create_app
from artsim.serve.limits import ADMISSION_TIMEOUT, BudgetTimeout, PixelBudget


async def until(condition) -> None:
    """Let other tasks run until ``condition()`` holds (they only move when we yield)."""
    while not condition():
        await asyncio.sleep(0)


def run(scenario) -> list[str]:
    # the outer wait only guards against a hang; nothing is asserted about time
    return asyncio.run(asyncio.wait_for(scenario(), timeout=30))


class Scene:
    """A budget of 100 pixels, a first request holding 60 until ``release`` is set, then a large
    request (100 pixels) waiting behind it; ``order`` lists requests as they are admitted."""

    def __init__(self):
        self.budget = PixelBudget(100)
        self.order: list[str] = []
        self.release = asyncio.Event()

    async def request(self, name: str, pixels: int, hold: asyncio.Event | None = None) -> None:
        async with self.budget.reserve(pixels):
            self.order.append(name)
            if hold is not None:
                await hold.wait()

    async def start(self, first: str) -> tuple[asyncio.Task, asyncio.Task]:
        holder = asyncio.create_task(self.request(first, 60, self.release))
        await until(lambda: self.order == [first])
        large = asyncio.create_task(self.request("large", 100))
        await until(lambda: self.budget.waiting == 1)
        return holder, large


def test_a_large_image_is_not_starved_by_small_ones_that_came_after_it():
    async def scenario() -> list[str]:
        scene = Scene()
        budget = scene.budget
        first, large = await scene.start("small-1")
        smalls = [asyncio.create_task(scene.request(f"small-{i}", 10)) for i in (2, 3, 4)]
        await until(lambda: budget.waiting == 4)
        # 60 + 10 pixels would fit, but the large image asked first: the small ones wait
        assert scene.order == ["small-1"] and budget.used == 60
        scene.release.set()
        await asyncio.gather(first, large, *smalls)
        assert budget.used == 0 and budget.waiting == 0
        return scene.order

    assert run(scenario) == ["small-1", "large", "small-2", "small-3", "small-4"]


def test_a_request_that_gives_up_lets_those_behind_it_in():
    async def scenario() -> list[str]:
        scene = Scene()
        budget = scene.budget
        first, large = await scene.start("holder")
        small = asyncio.create_task(scene.request("small", 10))
        await until(lambda: budget.waiting == 2)
        large.cancel()  # e.g. its client went away
        await small  # admitted next to the holder, which still holds its 60 pixels
        assert budget.used == 60 and budget.waiting == 0
        with pytest.raises(BudgetTimeout, match="pixel budget"):
            await budget.acquire(100, timeout=0)  # never admitted: it held nothing
        assert budget.used == 60 and budget.waiting == 0
        scene.release.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await large
        assert budget.used == 0
        return scene.order

    assert run(scenario) == ["holder", "small"]


def png_bytes(side: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_request_that_waits_too_long_for_pixels_gets_a_one_line_503(built_index: Path):
    app = create_app(built_index, admission_timeout=0)
    budget = app.state.pixel_budget
    image = {"image": ("a.png", png_bytes(40), "image/png")}
    with TestClient(app) as client:
        held = client.portal.call(budget.acquire, budget.capacity)  # all pixels in use
        try:
            busy = client.post("/search", files=image)
            text_only = client.post("/search", data={"text": "a red fox", "k": "1"})
        finally:
            client.portal.call(budget.release, held)
        again = client.post("/search", files=image, data={"k": "1"})
    assert busy.status_code == 503, busy.text
    message = busy.json()["error"]
    assert "busy" in message and "pixel budget" in message and "\n" not in message
    assert busy.headers["Retry-After"] == "1"
    assert text_only.status_code == 200  # nothing to decode: no turn to wait for
    assert again.status_code == 200 and len(again.json()["results"]) == 1
    assert budget.used == 0 and budget.waiting == 0
    assert ADMISSION_TIMEOUT == 60  # the default the README states
