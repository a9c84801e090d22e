"""The HTTP service: search the index by image and/or prompt, score pairs, browse originals.

Build it with :func:`create_app` (tests use FastAPI's ``TestClient`` in-process; ``artsim serve``
runs it under uvicorn). Every error is JSON ``{"error": "..."}`` with a meaningful status:

* 400 neither image nor text, or a malformed field;
* 401 a write without the right ``Authorization: Bearer TOKEN``; 403 a write to a service
  started without a token (it is read-only then, and opens the index read-only);
* 404 unknown original; 409 the index and model disagree;
* 413 an upload over the size limit, or a body that is not multipart over ``_FORM_OVERHEAD``;
  415 an upload that is not an image (type sniffed from the bytes, never from the name);
  422 an image with too many pixels or that cannot be decoded, a file field sent without a
  filename, an uploaded id that cannot name a URL path segment (``/``, ``\\``, ``.``, ``..``).

Bounded work per request:

* texts (``text``, ``text_a``, ``text_b``) are cut to their first ``max_text_chars`` characters
  (default :data:`MAX_TEXT_CHARS`) before any model work, whatever the body's encoding; the
  response's ``truncated`` list names each field that was cut, with its given and used length;
* decoding is admitted by a pixel budget (:class:`PixelBudget`, from the image header, before any
  pixel is decoded) and runs inside the model slots; images whose longest side is over
  :data:`WORKING_SIDE` are decoded at reduced size (JPEG draft mode) and shrunk before conversion.

Responses name no server paths (an original's ``image_path`` stays inside the index).

Read-only endpoints change nothing on disk: the index is opened read-only (SQLite ``mode=ro``)
unless a token is configured, and query embeddings bypass the feature cache.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, File, Form, Header, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artsim.data.images import (
    DEFAULT_MAX_PIXELS,
    image_size_bytes,
    load_rgb_bytes,
    sniff_image_format,
)
from artsim.errors import ImageError, UserError
from artsim.index.build import add_picture, remove_originals
from artsim.index.calibration import load_calibration
from artsim.index.catalog import ArtIndex, IndexInfo
from artsim.index.query import embed_query, score_pair, search_index
from artsim.index.store import OriginalRecord

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Room for multipart boundaries and the text fields around the uploaded files.
_FORM_OVERHEAD = 256 * 1024
MAX_K = 100
# Texts are cut to this many characters before any model work. MiniLM reads only its first 256
# tokens anyway; e5-small reads all of a text in 510-token windows, and its time grows with the
# length (about 1 s per KB on 2 CPU cores), so without a cut one request could hold a model slot
# for minutes. 2,000 characters is about 400-500 tokens of English: one e5 window.
MAX_TEXT_CHARS = 2_000
# Images with a longer side are shrunk (by an integer factor) right after decoding: the towers see
# 224x224 (or their own size) and thumbnails are 256 px, so nothing of use is lost.
WORKING_SIDE = 2_048

log = logging.getLogger("artsim.serve")


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before they are parsed or spooled.

    Bodies that are not ``multipart/form-data`` (urlencoded forms, JSON) carry no files and are
    held to ``other_limit``. ``Content-Length`` is checked up front; a chunked body is counted
    as it arrives.
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
            await _error(413, message)(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return incoming

        async def tracking_send(outgoing: Message) -> None:
            nonlocal started
            if outgoing["type"] == "http.response.start":
                started = True
            await send(outgoing)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _error(413, message)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class _Upload:
    data: bytes
    format: str
    name: str
    pixels: int


class PixelBudget:
    """Admission by pixels: at most ``capacity`` pixels of images being decoded or used at once.

    A request reserves its image's pixel count (read from the header) before decoding; one image
    over the capacity reserves all of it, so it runs alone. Waiting requests hold no pixels.
    """

    def __init__(self, capacity: int):
        self.capacity, self.used = max(1, int(capacity)), 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def reserve(self, pixels: int):
        pixels = min(max(0, int(pixels)), self.capacity)
        async with self._changed:
            await self._changed.wait_for(lambda: self.used + pixels <= self.capacity)
            self.used += pixels
        try:
            yield
        finally:
            async with self._changed:
                self.used -= pixels
                self._changed.notify_all()


def _cut_text(text: str | None, field: str, limit: int, truncated: list[dict]) -> str | None:
    """``text`` cut to ``limit`` characters; a cut is recorded in ``truncated``."""
    if text is None or len(text) <= limit:
        return text
    truncated.append({"field": field, "given_chars": len(text), "used_chars": limit})
    return text[:limit]


def check_upload_id(item_id: str) -> str:
    """The id of an uploaded original, stripped; refuse ids that cannot be a URL path segment
    (every original is fetched, shown and deleted as ``/originals/{id}``)."""
    item_id = item_id.strip()
    if not item_id:
        raise ApiError(422, "id: empty")
    if item_id in (".", ".."):
        raise ApiError(422, f"id: {item_id!r} cannot name an original (a URL path segment)")
    for character in ("/", "\\"):
        if character in item_id:
            raise ApiError(
                422,
                f"id {item_id!r}: contains {character!r}, which a URL path cannot carry in "
                "/originals/{id}; use another character",
            )
    return item_id


def create_app(
    index_path: str | Path,
    token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    *,
    run: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_text_chars: int = MAX_TEXT_CHARS,
    pixel_budget: int | None = None,
) -> FastAPI:
    """The artsim service for one index.

    Without ``token`` the service is read-only; with it, ``POST /originals`` and
    ``DELETE /originals/{id}`` accept ``Authorization: Bearer <token>``. ``pixel_budget`` is
    how many pixels may be decoded at once over all requests (default: ``max_pixels``, so the
    largest image allowed is decoded alone and small ones many at a time).

    >>> from fastapi.testclient import TestClient  # doctest: +SKIP
    >>> client = TestClient(create_app("indexes/demo"))  # doctest: +SKIP
    >>> client.post("/search", data={"text": "a red fox"}).json()["results"][0]["id"]  # doctest: +SKIP
    """
    token = token or None
    index = ArtIndex.open(index_path, read_only=token is None)
    # no feature cache: a query must not write to disk
    embedder = index.load_embedder(run, cache_dir=False)
    run_dir = Path(run) if run is not None else Path(index.info.run)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        index.close()

    app = FastAPI(
        title="artsim",
        summary="How similar is a generated artwork to the originals, and to which one?",
        version="1",
        lifespan=lifespan,
    )
    app.state.index, app.state.embedder = index, embedder
    if max_text_chars < 1:
        raise UserError(f"max_text_chars must be at least 1, got {max_text_chars}")
    app.add_middleware(
        BodyLimit, limit=2 * max_upload_bytes + _FORM_OVERHEAD, other_limit=_FORM_OVERHEAD
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return _error(error.status, error.message, error.headers)

    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError) -> JSONResponse:
        return _error(error.status_code, str(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for entry in error.errors():
            where = ".".join(str(part) for part in entry.get("loc", ()) if part != "body")
            problems.append(f"{where}: {entry.get('msg', 'invalid')}" if where else entry["msg"])
        return _error(400, "; ".join(problems) or "invalid request")

    def calibration():
        # index.json is re-read: `artsim calibrate` may have run since the service started
        try:
            info = IndexInfo.read(index.path)
        except UserError:
            info = index.info
        return load_calibration(run_dir, index.model_id, info)

    # Model work runs a few requests at a time, admitted first come first served: letting all
    # of the thread pool's workers run torch at once on a few cores makes every request slow
    # and the unlucky ones very slow (p99 about 5x p50 under 50 clients without this).
    model_slots = asyncio.Semaphore(max(1, os.cpu_count() or 1))

    async def in_model_slot(function, *args, **kwargs):
        async with model_slots:
            return await run_in_threadpool(function, *args, **kwargs)

    pixels_in_use = PixelBudget(pixel_budget or max_pixels)

    async def read_upload(upload: UploadFile | str | None, field: str) -> _Upload | None:
        """An uploaded image's bytes, checked from its header only; ``None`` when the field is
        empty. Nothing is decoded here: :func:`with_pictures` does that, admitted."""
        if upload is None:
            return None
        if isinstance(upload, str):
            if not upload:
                return None
            raise ApiError(
                422,
                f"{field}: sent as a plain form field without a filename; send the image as a "
                f'file part (e.g. curl -F "{field}=@picture.png")',
            )
        data = await upload.read(max_upload_bytes + 1)
        name = f"{field} ({upload.filename})" if upload.filename else field
        if not data:
            if not upload.filename:
                return None  # a form's file input left empty
            raise ImageError(f"{name}: empty file (0 bytes)")
        if len(data) > max_upload_bytes:
            raise ApiError(413, f"{name}: over the upload limit of {max_upload_bytes:,} bytes")
        fmt = sniff_image_format(data)
        if fmt is None:
            raise ApiError(
                415,
                f"{name}: not an image (its bytes are none of PNG, JPEG, GIF, WEBP, BMP, TIFF)",
            )
        width, height = await run_in_threadpool(image_size_bytes, data, name, max_pixels)
        return _Upload(data, fmt, name, width * height)

    async def with_pictures(uploads: list[_Upload | None], work):
        """``work(*pictures)`` in a model slot, the uploads decoded there, after their pixels
        are admitted by the budget (a missing upload is ``None``)."""
        needed = sum(upload.pixels for upload in uploads if upload is not None)

        def job():
            pictures = [
                None
                if upload is None
                else load_rgb_bytes(upload.data, upload.name, max_pixels, max_side=WORKING_SIDE)
                for upload in uploads
            ]
            return work(*pictures)

        async with pixels_in_use.reserve(needed):
            return await in_model_slot(job)

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        if token is None:
            raise ApiError(403, "this service is read-only: start it with --token to allow changes")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise ApiError(
                401,
                "changing the index needs the header Authorization: Bearer <token>",
                {"WWW-Authenticate": "Bearer"},
            )

    def with_links(result: dict) -> dict:
        result["thumbnail_url"] = f"/originals/{quote(result['id'], safe='')}/thumbnail"
        return result

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/health", summary="Model and index size")
    async def health() -> dict:
        count = await run_in_threadpool(index.count)
        return {
            "status": "ok",
            "model_id": index.model_id,
            "count": count,
            "store": index.info.store,
            "writable": token is not None,
            "max_upload_bytes": max_upload_bytes,
            "calibration": calibration().to_json(),
        }

    @app.post("/search", summary="Originals most similar to an image and/or a prompt")
    async def search(
        image: Annotated[UploadFile | str | None, File(description="Image to look up.")] = None,
        text: Annotated[
            str | None, Form(description="Prompt or description (cut to the text budget).")
        ] = None,
        k: Annotated[int, Form(ge=1, le=MAX_K, description="How many originals.")] = 10,
    ) -> dict:
        upload = await read_upload(image, "image")
        if upload is None and not (text or "").strip():
            raise ApiError(400, "give an image, a text, or both")
        truncated: list[dict] = []
        text = _cut_text(text, "text", max_text_chars, truncated)
        chosen = calibration()

        def run(picture):
            return search_index(index, embedder, image=picture, text=text, k=k, calibration=chosen)

        response = await with_pictures([upload], run)
        data = response.to_json()
        data["results"] = [with_links(result) for result in data["results"]]
        data["truncated"] = truncated
        return data

    @app.post("/score", summary="How similar two artworks are (A generated, B original)")
    async def score(
        image_a: Annotated[UploadFile | str | None, File()] = None,
        image_b: Annotated[UploadFile | str | None, File()] = None,
        text_a: Annotated[str | None, Form()] = None,
        text_b: Annotated[str | None, Form()] = None,
    ) -> dict:
        upload_a = await read_upload(image_a, "image_a")
        upload_b = await read_upload(image_b, "image_b")
        for side, upload, text in (("A", upload_a, text_a), ("B", upload_b, text_b)):
            if upload is None and not (text or "").strip():
                raise ApiError(400, f"artwork {side}: give an image, a text, or both")
        truncated: list[dict] = []
        text_a = _cut_text(text_a, "text_a", max_text_chars, truncated)
        text_b = _cut_text(text_b, "text_b", max_text_chars, truncated)
        chosen = calibration()

        def compute(picture_a, picture_b):
            a = embed_query(embedder, picture_a, text_a)
            b = embed_query(embedder, picture_b, text_b)
            return score_pair(embedder, a, b, chosen)

        data = (await with_pictures([upload_a, upload_b], compute)).to_json()
        data["truncated"] = truncated
        return data

    def record_json(record: OriginalRecord) -> dict:
        data = record.to_json()
        data.pop("image_path", None)  # a path on the server: nothing a client can use
        data["thumbnail_url"] = f"/originals/{quote(record.id, safe='')}/thumbnail"
        return data

    async def find(item_id: str, with_thumbnail: bool = False) -> OriginalRecord:
        if item_id in (".", ".."):
            raise ApiError(404, f"{item_id!r} is not an original's id")
        found = await run_in_threadpool(index.store.get, [item_id], with_thumbnail)
        if item_id not in found:
            raise ApiError(404, f"no original with id {item_id!r} in the index")
        return found[item_id]

    @app.get("/originals/{item_id}", summary="One original's metadata")
    async def original(item_id: str) -> dict:
        return record_json(await find(item_id))

    @app.get(
        "/originals/{item_id}/thumbnail",
        summary="One original's thumbnail (JPEG)",
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    async def thumbnail(item_id: str) -> Response:
        record = await find(item_id, with_thumbnail=True)
        if not record.thumbnail:
            raise ApiError(404, f"original {item_id!r} has no thumbnail")
        return Response(
            record.thumbnail,
            media_type="image/jpeg",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    @app.post(
        "/originals",
        status_code=201,
        summary="Add or replace an original (needs the token)",
        dependencies=[Depends(require_token)],
    )
    async def add_original(
        image: Annotated[UploadFile | str, File(description="The original's image.")],
        id: Annotated[str, Form(min_length=1, max_length=512)],
        group: Annotated[str | None, Form()] = None,
        title: Annotated[str, Form()] = "",
        artist: Annotated[str, Form()] = "",
        caption: Annotated[str, Form()] = "",
        lang: Annotated[str, Form()] = "",
    ) -> dict:
        item_id = check_upload_id(id)
        upload = await read_upload(image, "image")
        if upload is None:
            raise ApiError(400, "an original needs an image")
        record = OriginalRecord(
            id=item_id,
            group=(group or item_id).strip(),
            title=title,
            artist=artist,
            caption=caption,
            lang=lang,
            source="upload",
        )
        added = await with_pictures(
            [upload],
            lambda picture: add_picture(
                index, embedder, picture, record, upload.data, upload.format
            ),
        )
        return record_json(added)

    @app.delete(
        "/originals/{item_id}",
        summary="Remove an original (needs the token)",
        dependencies=[Depends(require_token)],
    )
    async def delete_original(item_id: str) -> dict:
        if item_id in (".", ".."):
            raise ApiError(404, f"{item_id!r} is not an original's id")
        removed = await run_in_threadpool(remove_originals, index, [item_id])
        if not removed:
            raise ApiError(404, f"no original with id {item_id!r} in the index")
        return {"removed": item_id, "count": await run_in_threadpool(index.count)}

    return app
