"""``/originals``: read one original and its thumbnail; add or remove originals (with the token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from artsim.index.store import OriginalRecord
from artsim.serve.schemas import Original, Removed, error_responses
from artsim.serve.service import BINARY, ApiError, Service, check_upload_id, record_json


def originals_router(service: Service) -> APIRouter:
    """The ``/originals`` routes of ``service``."""
    router = APIRouter()
    _add_read_routes(router, service)
    _add_write_routes(router, service)
    return router


async def _find(service: Service, item_id: str, with_thumbnail: bool = False) -> OriginalRecord:
    """The indexed original ``item_id`` (404 when there is none)."""
    if item_id in (".", ".."):
        raise ApiError(404, f"{item_id!r} is not an original's id")
    found = await run_in_threadpool(service.index.get, [item_id], thumbnails=with_thumbnail)
    if item_id not in found:
        raise ApiError(404, f"no original with id {item_id!r} in the index")
    return found[item_id]


def _add_read_routes(router: APIRouter, service: Service) -> None:
    """``GET /originals/{id}`` (metadata) and ``GET /originals/{id}/thumbnail`` (JPEG)."""

    @router.get(
        "/originals/{item_id}",
        summary="One original's metadata",
        response_model=Original,
        responses=error_responses(404),
    )
    async def original(item_id: str) -> dict:
        return record_json(await _find(service, item_id))

    @router.get(
        "/originals/{item_id}/thumbnail",
        summary="One original's thumbnail (JPEG)",
        response_class=Response,
        responses={
            200: {
                "description": "The thumbnail (JPEG, longest side 160 px).",
                "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
            },
            **error_responses(404),
        },
    )
    async def thumbnail(item_id: str) -> Response:
        record = await _find(service, item_id, with_thumbnail=True)
        if not record.thumbnail:
            raise ApiError(404, f"original {item_id!r} has no thumbnail")
        return Response(
            record.thumbnail,
            media_type="image/jpeg",
            headers={"Cache-Control": "public, max-age=3600"},
        )


def _add_write_routes(router: APIRouter, service: Service) -> None:
    """``POST /originals`` (add or replace) and ``DELETE /originals/{id}``, each behind the
    service's token."""
    index = service.index

    @router.post(
        "/originals",
        status_code=201,
        summary="Add or replace an original (needs the token)",
        response_model=Original,
        responses=error_responses(400, 401, 403, 413, 415, 422, 503, 507),
        dependencies=[Depends(service.token_dependency())],
    )
    async def add_original(
        image: Annotated[UploadFile, File(description="The original's image.", **BINARY)],
        id: Annotated[str, Form(min_length=1, max_length=512)],
        group: Annotated[str | None, Form()] = None,
        title: Annotated[str, Form()] = "",
        artist: Annotated[str, Form()] = "",
        caption: Annotated[str, Form()] = "",
        lang: Annotated[str, Form()] = "",
    ) -> dict:
        item_id = check_upload_id(id)
        upload = await service.read_upload(image, "image")
        if upload is None:
            raise ApiError(400, "an original needs an image")
        record = OriginalRecord(
            id=item_id,
            group=(group or "").strip() or item_id,  # a blank group is no group
            title=title,
            artist=artist,
            caption=caption,
            lang=lang,
            source="upload",
        )
        added = await service.with_pictures(
            [upload],
            lambda picture: index.add_picture(
                picture, record, image_bytes=upload.data, image_format=upload.format
            ),
        )
        return record_json(added)

    @router.delete(
        "/originals/{item_id}",
        summary="Remove an original (needs the token)",
        response_model=Removed,
        responses=error_responses(401, 403, 404, 503, 507),
        dependencies=[Depends(service.token_dependency())],
    )
    async def delete_original(item_id: str) -> dict:
        if item_id in (".", ".."):
            raise ApiError(404, f"{item_id!r} is not an original's id")
        removed = await run_in_threadpool(index.remove, [item_id])
        if not removed:
            raise ApiError(404, f"no original with id {item_id!r} in the index")
        return {"removed": item_id, "count": await run_in_threadpool(len, index)}
