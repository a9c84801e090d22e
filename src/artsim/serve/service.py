"""What every route of the service shares: the index and model, uploads, admission and errors."""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, UploadFile
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from artsim.api import Index
from artsim.data.manifest.manifest import id_whitespace_problem
from artsim.data.pictures.images import image_size_bytes, load_rgb_bytes, sniff_image_format
from artsim.errors import ImageError, UserError
from artsim.index.catalog import IndexInfo
from artsim.index.store import OriginalRecord
from artsim.serve.limits import WORKING_SIDE, BudgetTimeout, PixelBudget
from artsim.verdicts.source import load_calibration

# Upload fields as OpenAPI's binary strings: a generated client then sends them as files.
BINARY: dict[str, Any] = {"json_schema_extra": {"format": "binary"}}
# The write routes' bearer token, declared as the schema's security scheme; checked by
# Service.require_token (auto_error off: its 401 and 403 say what to do).
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="The token `artsim serve --token` was started with (writes only).",
)


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


@dataclass(frozen=True)
class Upload:
    """An uploaded image, checked from its header only (not decoded yet)."""

    data: bytes
    format: str
    name: str
    pixels: int


def check_upload_id(item_id: str) -> str:
    """The id of an uploaded original, kept exactly; refuse ids with leading or trailing
    whitespace (as manifests do), ids that cannot be a URL path segment (every original is
    fetched, shown and deleted as ``/originals/{id}``) and ids with control characters (NUL,
    newline, ...: they would break the lines and logs that show them)."""
    if not item_id.strip():
        raise ApiError(422, "id: empty")
    reason = id_whitespace_problem(item_id)
    if reason:
        raise ApiError(422, reason)
    if item_id in (".", ".."):
        raise ApiError(422, f"id: {item_id!r} cannot name an original (a URL path segment)")
    control = next((c for c in item_id if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        raise ApiError(
            422,
            f"id {item_id!r}: contains the control character U+{ord(control):04X} at character "
            f"{item_id.index(control)}; ids of uploads are printable text",
        )
    for character in ("/", "\\"):
        if character in item_id:
            raise ApiError(
                422,
                f"id {item_id!r}: contains {character!r}, which a URL path cannot carry in "
                "/originals/{id}; use another character",
            )
    return item_id


def thumbnail_url(item_id: str) -> str:
    return f"/originals/{quote(item_id, safe='')}/thumbnail"


def record_json(record: OriginalRecord) -> dict:
    """An original's metadata as answered: a thumbnail link, no server path."""
    data = record.to_json()
    data.pop("image_path", None)  # a path on the server: nothing a client can use
    data["thumbnail_url"] = thumbnail_url(record.id)
    return data


@dataclass
class Service:
    """One index and its model (:class:`artsim.api.Index`, its ``model`` the one that built it),
    with the limits every request is held to."""

    index: Index
    token: str | None
    max_upload_bytes: int
    max_pixels: int
    max_text_chars: int
    pixels_in_use: PixelBudget
    # Model work runs a few requests at a time, admitted first come first served: letting all
    # of the thread pool's workers run torch at once on a few cores makes every request slow
    # and the unlucky ones very slow (p99 about 5x p50 under 50 clients without this).
    model_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(max(1, os.cpu_count() or 1))
    )

    @property
    def run_dir(self) -> Path:
        """The run folder of the model (``--run``, else the one that built the index)."""
        return self.index.model.run_dir

    def public_message(self, message: str) -> str:
        """``message`` with the server's folders (the index, the run, the working folder, the
        home folder, the Python environment) replaced by ``<server>``: answers carry no server
        paths."""
        roots = {self.index.path, self.run_dir, Path.cwd(), Path.home(), Path(sys.prefix)}
        spelled = {
            str(spelling)
            for root in roots
            for spelling in (Path(os.path.abspath(root)), root.resolve())
            if len(spelling.parts) > 1
        }
        for text in sorted(spelled, key=len, reverse=True):
            message = re.sub(rf"{re.escape(text)}(?:/[^\s'\"(),;:]*)?", "<server>", message)
        return message

    def calibration(self):
        # index.json is re-read: `artsim calibrate` may have run since the service started
        try:
            info = IndexInfo.read(self.index.path)
        except UserError:
            info = self.index.info
        return load_calibration(self.run_dir, self.index.info.model_id, info.calibration)

    async def in_model_slot(self, function, *args, **kwargs):
        async with self.model_slots:
            return await run_in_threadpool(function, *args, **kwargs)

    async def read_upload(self, upload: UploadFile | None, field: str) -> Upload | None:
        """An uploaded image's bytes, checked from its header only; ``None`` when the field is
        empty. Nothing is decoded here: :meth:`with_pictures` does that, admitted. (A field
        sent as text, not as a file, is refused by the validation handler: :func:`not_a_file`.)"""
        if upload is None:
            return None
        limit = self.max_upload_bytes
        data = await upload.read(limit + 1)
        name = f"{field} ({upload.filename})" if upload.filename else field
        if not data:
            if not upload.filename:
                return None  # a form's file input left empty
            raise ImageError(f"{name}: empty file (0 bytes)")
        if len(data) > limit:
            raise ApiError(413, f"{name}: over the upload limit of {limit:,} bytes")
        fmt = sniff_image_format(data)
        if fmt is None:
            raise ApiError(
                415,
                f"{name}: not an image (its bytes are none of PNG, JPEG, GIF, WEBP, BMP, TIFF)",
            )
        width, height = await run_in_threadpool(image_size_bytes, data, name, self.max_pixels)
        return Upload(data, fmt, name, width * height)

    async def with_pictures(self, uploads: list[Upload | None], work):
        """``work(*pictures)`` in a model slot, the uploads decoded there, after their pixels
        are admitted by the budget (a missing upload is ``None``)."""
        needed = sum(upload.pixels for upload in uploads if upload is not None)

        def job():
            pictures = [
                None
                if upload is None
                else load_rgb_bytes(
                    upload.data, upload.name, self.max_pixels, max_side=WORKING_SIDE
                )
                for upload in uploads
            ]
            return work(*pictures)

        if needed == 0:  # nothing to decode: no turn to wait for
            return await self.in_model_slot(job)
        budget = self.pixels_in_use
        try:
            reserved = await budget.acquire(needed)
        except BudgetTimeout as error:
            raise ApiError(
                503,
                f"the service is busy decoding other images ({error}); try again shortly",
                {"Retry-After": str(max(1, round(budget.timeout or 1)))},
            ) from None
        try:
            return await self.in_model_slot(job)
        finally:
            budget.release(reserved)

    def require_token(self, credentials: HTTPAuthorizationCredentials | None) -> None:
        if self.token is None:
            raise ApiError(403, "this service is read-only: start it with --token to allow changes")
        given = credentials.credentials if credentials is not None else ""
        if (
            credentials is None
            or credentials.scheme.lower() != "bearer"
            or not hmac.compare_digest(given.strip().encode(), self.token.encode())
        ):
            raise ApiError(
                401,
                "changing the index needs the header Authorization: Bearer <token>",
                {"WWW-Authenticate": "Bearer"},
            )

    def token_dependency(self):
        """A FastAPI dependency that calls :meth:`require_token` with the request's bearer
        credentials (:data:`BEARER`, the schema's security scheme)."""

        def require_token(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
        ) -> None:
            self.require_token(credentials)

        return require_token


def not_a_file(field: str) -> str:
    """What the service answers (422) for an upload field sent as text, not as a file."""
    return (
        f"{field}: sent as a plain form field without a filename; send the image as a file "
        f'part (e.g. curl -F "{field}=@picture.png")'
    )
