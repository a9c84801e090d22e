"""The HTTP service: search the index by image and/or prompt, score pairs, browse originals.

Build it with :func:`create_app` (tests use FastAPI's ``TestClient`` in-process; ``artsim serve``
runs it under uvicorn). Every error is JSON ``{"error": "..."}`` with a meaningful status:

* 400 neither image nor text, or a malformed field;
* 401 a write without the right ``Authorization: Bearer TOKEN``; 403 a write to a service
  started without a token (it is read-only then, and opens the index read-only);
* 404 unknown original; 409 the index and model disagree; 503 busy (the pixel budget's wait
  timed out, or another writer holds the index lock);
* 413 an upload over the size limit, or a body that is not multipart over ``FORM_OVERHEAD``;
  415 an upload that is not an image (type sniffed from the bytes, never from the name);
  422 an image with too many pixels or that cannot be decoded, a file field sent without a
  filename, an uploaded id that cannot name a URL path segment (``/``, ``\\``, ``.``, ``..``).

Bounded work per request:

* texts (``text``, ``text_a``, ``text_b``) are cut to their first ``max_text_chars`` characters
  (default :data:`MAX_TEXT_CHARS`) before any model work, whatever the body's encoding; the
  response's ``truncated`` list names each field that was cut, with its given and used length;
* decoding is admitted by a pixel budget (:class:`~artsim.serve.limits.PixelBudget`, from the image
  header, before any pixel is decoded), first come first served, and runs inside the model slots; a
  request that waits over ``admission_timeout`` seconds for it is answered 503 (busy, with
  ``Retry-After``); images whose longest side is over :data:`WORKING_SIDE` are decoded at reduced
  size (JPEG draft mode) and shrunk before conversion.

Responses name no server paths (an original's ``image_path`` stays inside the index).

The routes live by concept: :mod:`artsim.serve.search_routes` (search, score),
:mod:`artsim.serve.originals_routes` (originals, thumbnails, writes),
:mod:`artsim.serve.explain_routes` (match maps); the page and ``/health`` are
here; limits in :mod:`artsim.serve.limits`; what the routes share in :mod:`artsim.serve.service`.

Read-only endpoints change nothing on disk: the index is opened read-only (SQLite ``mode=ro``)
unless a token is configured, and query embeddings bypass the feature cache.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from artsim.api import Index, open_index
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS
from artsim.errors import UserError, storage_error
from artsim.serve.explain_routes import explain_router
from artsim.serve.limits import (
    ADMISSION_TIMEOUT,
    DEFAULT_MAX_UPLOAD_BYTES,
    FORM_OVERHEAD,
    MAX_K,
    MAX_TEXT_CHARS,
    WORKING_SIDE,
    BodyLimit,
    PixelBudget,
    error_response,
)
from artsim.serve.originals_routes import originals_router
from artsim.serve.schemas import Health, error_responses
from artsim.serve.search_routes import search_router
from artsim.serve.service import ApiError, Service, check_upload_id, not_a_file

__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "MAX_K",
    "MAX_TEXT_CHARS",
    "WORKING_SIDE",
    "ApiError",
    "PixelBudget",
    "check_upload_id",
    "create_app",
]

STATIC_DIR = Path(__file__).parent / "static"
log = logging.getLogger("artsim.serve")


def create_app(
    index_path: str | Path,
    token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    *,
    run: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_text_chars: int = MAX_TEXT_CHARS,
    pixel_budget: int | None = None,
    admission_timeout: float | None = ADMISSION_TIMEOUT,
) -> FastAPI:
    """The artsim service for one index.

    Without ``token`` the service is read-only; with it, ``POST /originals`` and
    ``DELETE /originals/{id}`` accept ``Authorization: Bearer <token>``. ``pixel_budget`` is
    how many pixels may be decoded at once over all requests (default: ``max_pixels``, so the
    largest image allowed is decoded alone and small ones many at a time); requests are admitted
    to it in arrival order, and one that waits over ``admission_timeout`` seconds (``None``: no
    limit) is answered 503 with ``Retry-After``.

    >>> from fastapi.testclient import TestClient
    >>> with TestClient(create_app("runs/demo/index")) as client:
    ...     answer = client.post("/search", data={"text": "a red fox", "k": 2})
    >>> answer.status_code, [result["rank"] for result in answer.json()["results"]]
    (200, [1, 2])
    """
    token = token or None
    # no feature cache: a query must not write to disk
    index = open_index(index_path, run=run, read_only=token is None, cache_dir=False)
    service = Service(
        index=index,
        token=token,
        max_upload_bytes=max_upload_bytes,
        max_pixels=max_pixels,
        max_text_chars=max_text_chars,
        pixels_in_use=PixelBudget(pixel_budget or max_pixels, timeout=admission_timeout),
    )

    app = _offline_app(index)
    app.state.index = index
    app.state.pixel_budget = service.pixels_in_use
    if max_text_chars < 1:
        raise UserError(f"max_text_chars must be at least 1, got {max_text_chars}")
    app.add_middleware(
        BodyLimit, limit=2 * max_upload_bytes + FORM_OVERHEAD, other_limit=FORM_OVERHEAD
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_error_handlers(app, service.public_message)
    _add_page_and_health(app, service)
    app.include_router(search_router(service))
    app.include_router(originals_router(service))
    app.include_router(explain_router(service))
    return app


def _offline_app(index: Index) -> FastAPI:
    """The application itself, with ``index`` closed when it shuts down."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        index.close()

    # Swagger UI (/docs) and ReDoc (/redoc) from files in the installed package: the pages
    # work on a machine without internet
    return FastAPIOffline(
        title="artsim",
        summary="How similar is a generated artwork to the originals, and to which one?",
        version="1",
        lifespan=lifespan,
        # operation ids are the routes' names: a generated client gets search(), score()...
        generate_unique_id_function=lambda route: route.name,
    )


def _add_page_and_health(app: FastAPI, service: Service) -> None:
    """``GET /``, the search page, and ``GET /health``: the model, the index's size and store,
    whether it may be changed, and the calibration in force."""
    index = service.index

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get(
        "/health",
        summary="Model and index size",
        response_model=Health,
        responses=error_responses(),
    )
    async def health() -> dict:
        count = await run_in_threadpool(len, index)
        return {
            "status": "ok",
            "model_id": index.info.model_id,
            "count": count,
            "store": index.info.store,
            "writable": service.token is not None,
            "max_upload_bytes": service.max_upload_bytes,
            "calibration": service.calibration().to_json(),
        }


def add_error_handlers(app: FastAPI, public: Callable[[str], str] = str) -> None:
    """Every error as ``{"error": "one line"}`` with its status, never a traceback;
    ``public`` takes server paths out of a message."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, public(error.message), error.headers)

    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError) -> JSONResponse:
        headers = {"Retry-After": "5"} if error.status_code == 503 else None
        message = error.public or public(str(error))
        return error_response(error.status_code, message, headers)

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        # a write the disk refused: 507 (full) or 500, with the reason and no server path;
        # anything else is a bug: logged here with its traceback, one JSON line to the client
        refused = storage_error(error)
        if refused is not None:
            return error_response(refused.status_code, refused.public)
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return error_response(500, "internal error: the request failed on the server")

    app.add_exception_handler(OSError, unexpected)
    app.add_exception_handler(sqlite3.Error, unexpected)
    app.add_exception_handler(Exception, unexpected)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for entry in error.errors():
            where = ".".join(str(part) for part in entry.get("loc", ()) if part != "body")
            if "Expected UploadFile" in str(entry.get("msg", "")):
                return error_response(422, not_a_file(where))
            problems.append(f"{where}: {entry.get('msg', 'invalid')}" if where else entry["msg"])
        return error_response(400, public("; ".join(problems) or "invalid request"))
