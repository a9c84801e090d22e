"""``POST /explain``: where a generated work and an original match (a match map).

A is an uploaded picture; B is another upload (``image_b``) or an indexed original
(``original_id``: its kept file, or its thumbnail for an upload kept only as one). The answer is
JSON (``format=json``, the default: a grid of cells x cells values on each picture, the peaks
and the best-matching regions, see :meth:`artsim.model.explain.MatchMap.to_json`) or a PNG of
A and B side by side under their maps (``format=png``). Both pictures are admitted by the pixel
budget and decoded at most :data:`~artsim.serve.limits.WORKING_SIDE` a side, like every upload.

Errors, as everywhere: 400 a side without a picture (a text alone has no regions to map) or a
bad ``part``, ``method`` or ``format``; 404 an unknown original; 413 an upload over the size
limit; 415 not an image; 422 too many pixels or undecodable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from artsim.data.pictures.images import image_size_bytes, sniff_image_format
from artsim.model.explain import DEFAULT_CELLS, METHODS, available_parts
from artsim.report.match_picture import match_png
from artsim.serve.schemas import error_responses
from artsim.serve.service import BINARY, ApiError, Service, Upload

FORMATS = ("json", "png")
MIN_CELLS, MAX_CELLS = 2, 32


class MatchSide(BaseModel):
    """The map of one picture."""

    grid: list[list[float]] = Field(
        description="cells x cells, rows top to bottom: how well the best window covering each "
        "cell matches the whole other picture (a cosine; for occlusion, the drop when hidden)."
    )
    peak: list[float] = Field(description="x, y where the map is highest (fractions).")
    best_window: list[float] = Field(description="left, top, right, bottom (fractions).")


class MatchLink(BaseModel):
    """The best-matching regions: a box on A, a box on B (fractions), and their cosine."""

    a: list[float]
    b: list[float]
    score: float


class ExplainAnswer(BaseModel):
    """``POST /explain``: where A and B match."""

    model_config = ConfigDict(extra="allow")
    model_id: str
    part: str = Field(description="The cosine mapped: copy, content or image.")
    method: str
    score: float = Field(description="The whole pair's cosine of that part.")
    cells: int
    a: MatchSide
    b: MatchSide
    link: MatchLink
    original_id: str | None = None


def explain_router(service: Service) -> APIRouter:
    """The ``/explain`` route of ``service``."""
    router = APIRouter()
    model = service.index.model

    @router.post(
        "/explain",
        summary="Where two artworks match: a map on each (JSON grid or PNG)",
        response_model=ExplainAnswer,
        responses=_explain_responses(),
    )
    # upload fields typed UploadFile (binary in the schema), None when not sent
    async def explain(
        image_a: Annotated[
            UploadFile, File(description="Artwork A (e.g. the generated one).", **BINARY)
        ] = None,
        image_b: Annotated[
            UploadFile, File(description="Artwork B, or give original_id.", **BINARY)
        ] = None,
        original_id: Annotated[
            str | None, Form(description="B as an indexed original's id (instead of image_b).")
        ] = None,
        text_a: Annotated[str | None, Form(description="Refused: texts have no regions.")] = None,
        text_b: Annotated[str | None, Form(description="Refused: texts have no regions.")] = None,
        part: Annotated[
            str | None, Form(description="copy, content or image (default: the model's best).")
        ] = None,
        method: Annotated[str, Form(description="crops or occlusion.")] = "crops",
        cells: Annotated[
            int, Form(ge=MIN_CELLS, le=MAX_CELLS, description="Cells a side.")
        ] = DEFAULT_CELLS,
        format: Annotated[str, Form(description="json or png.")] = "json",
    ):
        _check_options(model.embedder, format, method, part)
        upload_a = await service.read_upload(image_a, "image_a")
        upload_b = await service.read_upload(image_b, "image_b")
        item_id = (original_id or "").strip()
        _check_sides(upload_a, upload_b, item_id, text_a, text_b)
        if upload_b is None:
            upload_b = await _original_upload(service, item_id)

        def compute(picture_a, picture_b):
            names = ("image_a", upload_b.name if item_id else "image_b")
            found = model.explain(
                picture_a, picture_b, part=part, method=method, cells=cells, names=names
            )
            if format == "png":
                return match_png(picture_a, picture_b, found)
            data = found.to_json()
            data["model_id"] = model.model_id
            if item_id:
                data["original_id"] = item_id
            return data

        answer = await service.with_pictures([upload_a, upload_b], compute)
        if format == "png":
            return Response(answer, media_type="image/png")
        return answer

    return router


def _explain_responses() -> dict:
    """The statuses ``POST /explain`` declares; a 200 is JSON or a PNG."""
    responses = error_responses(400, 404, 413, 415, 422, 503)
    responses[200] = {
        "description": "The maps as JSON, or (format=png) A and B side by side under them.",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    }
    return responses


def _check_options(embedder, format: str, method: str, part: str | None) -> None:
    """400 for a ``format``, ``method`` or ``part`` (of the model's) that is not offered."""
    if format not in FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if method not in METHODS:
        raise ApiError(400, f"method must be one of {', '.join(METHODS)}, got {method!r}")
    parts = available_parts(embedder)
    if part is not None and part not in parts:
        raise ApiError(400, f"this model maps the parts {', '.join(parts)}; not {part!r}")


def _check_sides(
    upload_a: Upload | None,
    upload_b: Upload | None,
    item_id: str,
    text_a: str | None,
    text_b: str | None,
) -> None:
    """400 unless A is a picture and B is one too (``image_b``) or an original's id, not both;
    a text alone is refused by name (it has no regions to map)."""
    if upload_b is not None and item_id:
        raise ApiError(400, "artwork B: give image_b or original_id, not both")
    if upload_a is None and upload_b is None and not item_id:
        texts = (text_a or "").strip() or (text_b or "").strip()
        why = "a text has no regions to map" if texts else "no picture was sent"
        raise ApiError(400, f"a match map compares two pictures ({why}): give image_a and image_b")
    if upload_a is None:
        raise ApiError(400, "artwork A: give image_a (a match map needs a picture on each side)")
    if upload_b is None and not item_id:
        raise ApiError(
            400,
            "artwork B: give image_b or original_id (a match map needs a picture on each side)",
        )


async def _original_upload(service: Service, item_id: str) -> Upload:
    """An indexed original's picture, as an upload would be: its kept file, else its
    thumbnail; checked from its header and admitted like one."""
    found = await run_in_threadpool(service.index.get, [item_id], thumbnails=True)
    record = found.get(item_id)
    if record is None:
        raise ApiError(404, f"no original with id {item_id!r} in the index")
    data = None
    if record.image_path:
        try:
            data = await run_in_threadpool(Path(record.image_path).read_bytes)
        except OSError:
            data = None  # moved since it was indexed: its thumbnail still shows it
    data = data or record.thumbnail
    if not data:
        raise ApiError(404, f"original {item_id!r}: neither its file nor a thumbnail is kept")
    name = f"original {item_id!r}"
    fmt = sniff_image_format(data)
    if fmt is None:
        raise ApiError(422, f"{name}: its kept file is not an image")
    width, height = await run_in_threadpool(image_size_bytes, data, name, service.max_pixels)
    return Upload(data, fmt, name, width * height)
