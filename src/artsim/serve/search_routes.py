"""``POST /search`` and ``POST /score``: the model work of the service, through
:class:`artsim.api.Index` (``search_response``, ``score``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from artsim.serve.limits import MAX_K, cut_text, merge_cuts
from artsim.serve.schemas import ScoreAnswer, SearchAnswer, error_responses
from artsim.serve.service import BINARY, ApiError, Service, thumbnail_url


def search_router(service: Service) -> APIRouter:
    """The search and score routes of ``service``."""
    router = APIRouter()
    index = service.index
    max_text_chars = service.max_text_chars

    @router.post(
        "/search",
        summary="Originals most similar to an image and/or a prompt",
        response_model=SearchAnswer,
        responses=error_responses(400, 413, 415, 422, 503),
    )
    # upload fields are typed UploadFile, not Optional, so the schema says plain binary (a
    # generated client sends a file); None when the field is not sent
    async def search(
        image: Annotated[UploadFile, File(description="Image to look up.", **BINARY)] = None,
        text: Annotated[
            str | None, Form(description="Prompt or description (cut to the text budget).")
        ] = None,
        k: Annotated[int, Form(ge=1, le=MAX_K, description="How many originals.")] = 10,
    ) -> dict:
        upload = await service.read_upload(image, "image")
        if upload is None and not (text or "").strip():
            raise ApiError(400, "give an image, a text, or both")
        truncated: list[dict] = []
        text = cut_text(text, "text", max_text_chars, truncated)
        chosen = service.calibration()

        def run(picture):
            return index.search_response(picture, text, k=k, calibration=chosen)

        response = await service.with_pictures([upload], run)
        data = response.to_json()
        for result in data["results"]:
            result["thumbnail_url"] = thumbnail_url(result["id"])
        data["truncated"] = merge_cuts(truncated, data.get("truncated", []))
        return data

    @router.post(
        "/score",
        summary="How similar two artworks are (A generated, B original)",
        response_model=ScoreAnswer,
        responses=error_responses(400, 413, 415, 422, 503),
    )
    async def score(
        image_a: Annotated[UploadFile, File(description="Artwork A's image.", **BINARY)] = None,
        image_b: Annotated[UploadFile, File(description="Artwork B's image.", **BINARY)] = None,
        text_a: Annotated[str | None, Form(description="Artwork A's prompt.")] = None,
        text_b: Annotated[str | None, Form(description="Artwork B's caption.")] = None,
    ) -> dict:
        upload_a = await service.read_upload(image_a, "image_a")
        upload_b = await service.read_upload(image_b, "image_b")
        for side, upload, text in (("A", upload_a, text_a), ("B", upload_b, text_b)):
            if upload is None and not (text or "").strip():
                raise ApiError(400, f"artwork {side}: give an image, a text, or both")
        truncated: list[dict] = []
        text_a = cut_text(text_a, "text_a", max_text_chars, truncated)
        text_b = cut_text(text_b, "text_b", max_text_chars, truncated)
        chosen = service.calibration()

        def compute(picture_a, picture_b):
            # verdicts calibrated on the collection may weigh A against its indexed originals
            return index.score(
                picture_a, picture_b, text_a=text_a, text_b=text_b, calibration=chosen
            )

        data = (await service.with_pictures([upload_a, upload_b], compute)).to_json()
        data["truncated"] = merge_cuts(truncated, data.get("truncated", []))
        return data

    return router
