"""Bounded work per request: body size, text length and pixels being decoded at once."""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import asynccontextmanager

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Texts are cut to MAX_TEXT_CHARS characters before any model work; a request that waits longer
# than ADMISSION_TIMEOUT seconds for the pixel budget is answered 503. Both are defined (and their
# choice explained) in artsim.defaults, which `artsim serve --help` reads without loading FastAPI.
from artsim.defaults import ADMISSION_TIMEOUT as ADMISSION_TIMEOUT
from artsim.defaults import DEFAULT_MAX_UPLOAD_BYTES as DEFAULT_MAX_UPLOAD_BYTES
from artsim.defaults import MAX_TEXT_CHARS as MAX_TEXT_CHARS

# Room for multipart boundaries and the text fields around the uploaded files.
FORM_OVERHEAD = 256 * 1024
MAX_K = 100
# Images with a longer side are shrunk (by an integer factor) right after decoding: the towers see
# 224x224 (or their own size) and thumbnails are 256 px, so nothing of use is lost.
WORKING_SIDE = 2_048


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The service's error answer: ``{"error": message}`` with ``status``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before they are parsed or spooled.

    Bodies that are not ``multipart/form-data`` (urlencoded forms, JSON) carry no files and are
    held to ``other_limit``. ``Content-Length`` is checked up front; a chunked body is counted
    as it arrives, and once over the limit the app's own answer (the form parser turns the
    interruption into a 400) is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, limit: int, other_limit: int | None = None):
        self.app, self.multipart_limit = app, limit
        self.other_limit = limit if other_limit is None else other_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.multipart_limit if multipart else self.other_limit
        kind = "" if multipart else " (a body without files)"
        message = f"request body over the limit of {limit:,} bytes{kind}"
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await error_response(413, message)(scope, receive, send)
            return
        received = 0
        started = exceeded = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return incoming

        async def tracking_send(outgoing: Message) -> None:
            nonlocal started
            if exceeded:  # the app answered a body it could not read whole: ours instead
                if not started:
                    started = True
                    await error_response(413, message)(scope, receive, send)
                return
            if outgoing["type"] == "http.response.start":
                started = True
            await send(outgoing)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                started = True
                await error_response(413, message)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class BudgetTimeout(Exception):
    """A request waited longer than its timeout for the pixel budget."""


class PixelBudget:
    """Admission by pixels: at most ``capacity`` pixels of images being decoded or used at once.

    A request reserves its image's pixel count (read from the header) before decoding; one image
    over the capacity reserves all of it, so it runs alone. Waiting requests hold no pixels.
    Admission is first come, first served: a request waits while anyone queued before it waits,
    even if its own pixels would fit now, so a stream of small images cannot starve a large one.
    A request that gives up (its ``timeout``, or a cancelled client) leaves the queue and lets
    those behind it move up.
    """

    def __init__(self, capacity: int, timeout: float | None = None):
        self.capacity, self.used, self.timeout = max(1, int(capacity)), 0, timeout
        self._queue: deque[tuple[int, asyncio.Future]] = deque()

    @property
    def waiting(self) -> int:
        """How many requests wait for admission."""
        return len(self._queue)

    def size(self, pixels: int) -> int:
        """What a request of ``pixels`` reserves: at least 0, at most the capacity."""
        return min(max(0, int(pixels)), self.capacity)

    async def acquire(self, pixels: int, timeout: float | None = None) -> int:
        """Wait for ``pixels`` (in turn, at most ``timeout`` seconds, default the budget's);
        returns what was reserved, to give to :meth:`release`. Raises :class:`BudgetTimeout`."""
        pixels = self.size(pixels)
        timeout = self.timeout if timeout is None else timeout
        if not self._queue and self.used + pixels <= self.capacity:
            self.used += pixels
            return pixels
        turn = asyncio.get_running_loop().create_future()
        entry = (pixels, turn)
        self._queue.append(entry)
        try:
            await asyncio.wait_for(turn, timeout)
        except BaseException as error:
            if turn.done() and not turn.cancelled():
                self.release(pixels)  # admitted just as it gave up: hand the pixels on
            else:
                if entry in self._queue:
                    self._queue.remove(entry)
                self._admit()  # it may have held up those behind it
            if isinstance(error, TimeoutError):
                raise BudgetTimeout(f"waited over {timeout:g} s for the pixel budget") from None
            raise
        return pixels

    def release(self, pixels: int) -> None:
        """Give back what :meth:`acquire` reserved and admit the next in line."""
        self.used -= pixels
        self._admit()

    def _admit(self) -> None:
        while self._queue:
            pixels, turn = self._queue[0]
            if turn.done():  # gave up and is on its way out
                self._queue.popleft()
                continue
            if self.used + pixels > self.capacity:
                return
            self._queue.popleft()
            self.used += pixels
            turn.set_result(None)

    @asynccontextmanager
    async def reserve(self, pixels: int, timeout: float | None = None):
        """``async with budget.reserve(pixels):`` holds ``pixels`` for the block."""
        reserved = await self.acquire(pixels, timeout)
        try:
            yield
        finally:
            self.release(reserved)


def merge_cuts(by_characters: list[dict], by_tokens: list[dict]) -> list[dict]:
    """One entry per field cut: the character cut (what was given) followed by the token cut
    of the model's text tower (what was used), when both cut the same field."""
    merged = {cut["field"]: dict(cut) for cut in by_characters}
    for cut in by_tokens:
        entry = merged.setdefault(cut["field"], dict(cut))
        entry.update(used_chars=cut["used_chars"], used_tokens=cut.get("used_tokens"))
    return list(merged.values())


def cut_text(text: str | None, field: str, limit: int, truncated: list[dict]) -> str | None:
    """``text`` cut to ``limit`` characters; a cut is recorded in ``truncated``."""
    if text is None or len(text) <= limit:
        return text
    truncated.append({"field": field, "given_chars": len(text), "used_chars": limit})
    return text[:limit]
