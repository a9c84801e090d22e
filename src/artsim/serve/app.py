"""The HTTP service: search the index by image and/or prompt, score pairs, browse originals.

Build it with :func:`create_app` (tests use FastAPI's ``TestClient`` in-process; ``artsim serve``
runs it under uvicorn). Every error is JSON ``{"error": "..."}`` with a meaningful status:

* 400 neither image nor text, or a malformed field;
* 401 a write without the right ``Authorization: Bearer TOKEN``; 403 a write to a service
  started without a token (it is read-only then, and opens the index read-only);
* 404 unknown original; 409 the index and model disagree;
* 413 an upload over the size limit; 415 an upload that is not an image (type sniffed from
  the bytes, never from the name); 422 an image with too many pixels or that cannot be decoded.

Read-only endpoints change nothing on disk: the index is opened read-only (SQLite ``mode=ro``)
unless a token is configured, and query embeddings bypass the feature cache.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from contextlib import asynccontextmanager
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

from artsim.data.images import DEFAULT_MAX_PIXELS, load_rgb_bytes, sniff_image_format
from artsim.errors import ImageError, UserError
from artsim.index.index import (
    ArtIndex,
    add_picture,
    embed_query,
    load_calibration,
    remove_originals,
    score_pair,
    search_index,
)
from artsim.index.store import OriginalRecord

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Room for multipart boundaries and the text fields around the uploaded files.
_FORM_OVERHEAD = 256 * 1024
MAX_K = 100

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

    ``Content-Length`` is checked up front; a chunked body is counted as it arrives.
    """

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body over the limit of {self.limit:,} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _error(413, message)(scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > self.limit:
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


def create_app(
    index_path: str | Path,
    token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    *,
    run: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> FastAPI:
    """The artsim service for one index.

    Without ``token`` the service is read-only; with it, ``POST /originals`` and
    ``DELETE /originals/{id}`` accept ``Authorization: Bearer <token>``.

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
    app.add_middleware(BodyLimit, limit=2 * max_upload_bytes + _FORM_OVERHEAD)
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
        return load_calibration(run_dir, index.model_id)

    # Model work runs a few requests at a time, admitted first come first served: letting all
    # of the thread pool's workers run torch at once on a few cores makes every request slow
    # and the unlucky ones very slow (p99 about 5x p50 under 50 clients without this).
    model_slots = asyncio.Semaphore(max(1, os.cpu_count() or 1))

    async def in_model_slot(function, *args, **kwargs):
        async with model_slots:
            return await run_in_threadpool(function, *args, **kwargs)

    async def read_image(upload: UploadFile | None, field: str):
        """(picture, bytes, format) of an uploaded image, or ``None`` when the field is empty."""
        if upload is None or isinstance(upload, str):
            return None
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
        picture = await run_in_threadpool(load_rgb_bytes, data, name, max_pixels)
        return picture, data, fmt

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
        image: Annotated[UploadFile | None, File(description="Image to look up.")] = None,
        text: Annotated[str | None, Form(description="Prompt or description.")] = None,
        k: Annotated[int, Form(ge=1, le=MAX_K, description="How many originals.")] = 10,
    ) -> dict:
        loaded = await read_image(image, "image")
        if loaded is None and not (text or "").strip():
            raise ApiError(400, "give an image, a text, or both")
        picture = loaded[0] if loaded else None
        response = await in_model_slot(
            search_index, index, embedder, image=picture, text=text, k=k, calibration=calibration()
        )
        data = response.to_json()
        data["results"] = [with_links(result) for result in data["results"]]
        return data

    @app.post("/score", summary="How similar two artworks are (A generated, B original)")
    async def score(
        image_a: Annotated[UploadFile | None, File()] = None,
        image_b: Annotated[UploadFile | None, File()] = None,
        text_a: Annotated[str | None, Form()] = None,
        text_b: Annotated[str | None, Form()] = None,
    ) -> dict:
        loaded_a = await read_image(image_a, "image_a")
        loaded_b = await read_image(image_b, "image_b")
        for side, loaded, text in (("A", loaded_a, text_a), ("B", loaded_b, text_b)):
            if loaded is None and not (text or "").strip():
                raise ApiError(400, f"artwork {side}: give an image, a text, or both")

        def compute():
            a = embed_query(embedder, loaded_a[0] if loaded_a else None, text_a)
            b = embed_query(embedder, loaded_b[0] if loaded_b else None, text_b)
            return score_pair(embedder, a, b, calibration())

        return (await in_model_slot(compute)).to_json()

    def record_json(record: OriginalRecord) -> dict:
        data = record.to_json()
        data["thumbnail_url"] = f"/originals/{quote(record.id, safe='')}/thumbnail"
        return data

    async def find(item_id: str, with_thumbnail: bool = False) -> OriginalRecord:
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
        image: Annotated[UploadFile, File(description="The original's image.")],
        id: Annotated[str, Form(min_length=1, max_length=512)],
        group: Annotated[str | None, Form()] = None,
        title: Annotated[str, Form()] = "",
        artist: Annotated[str, Form()] = "",
        caption: Annotated[str, Form()] = "",
        lang: Annotated[str, Form()] = "",
    ) -> dict:
        loaded = await read_image(image, "image")
        if loaded is None:
            raise ApiError(400, "an original needs an image")
        picture, data, fmt = loaded
        record = OriginalRecord(
            id=id.strip(),
            group=(group or id).strip(),
            title=title,
            artist=artist,
            caption=caption,
            lang=lang,
            source="upload",
        )
        added = await in_model_slot(add_picture, index, embedder, picture, record, data, fmt)
        return record_json(added)

    @app.delete(
        "/originals/{item_id}",
        summary="Remove an original (needs the token)",
        dependencies=[Depends(require_token)],
    )
    async def delete_original(item_id: str) -> dict:
        removed = await run_in_threadpool(remove_originals, index, [item_id])
        if not removed:
            raise ApiError(404, f"no original with id {item_id!r} in the index")
        return {"removed": item_id, "count": await run_in_threadpool(index.count)}

    return app
