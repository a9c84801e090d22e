"""The service's contract: the models of its answers and its one error model.

``/openapi.json`` is built from these, so a client generated from it (openapi-python-client) reads
typed results and every error the same way. Answer models let keys they do not name pass
through (``extra="allow"``): a field added to an answer reaches clients before the model names it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorResponse(BaseModel):
    """Every error the service answers, whatever its status."""

    model_config = ConfigDict(extra="forbid")
    error: str = Field(description="What went wrong, in one line (no server paths).")


class CalibrationSummary(_Open):
    """How verdicts are decided: ``calibrated`` (thresholds measured on the collection or the
    run), or ``uncalibrated`` (then every verdict is ``uncalibrated``)."""

    status: str
    note: str = ""
    source: str = ""


class Truncation(BaseModel):
    """A text field cut before model work: its given and used length, and the tokens of the
    text tower it was cut to (``None`` when only the character budget cut it)."""

    field: str
    given_chars: int
    used_chars: int
    used_tokens: int | None = None


class SearchHit(_Open):
    """One ranked original."""

    rank: int
    id: str
    group: str
    title: str
    artist: str
    caption: str
    task: str = Field(description="image, text, fused, or t2i (a prompt against images).")
    score: float = Field(description="The score of the query's task, which ranks.")
    scores: dict[str, float] = Field(description="Every score the query allows.")
    verdict: str = Field(description="copy, derived, related, unrelated or uncalibrated.")
    threshold: float | None
    decided_by: str = ""
    probability: float | None = None
    thumbnail_url: str


class SearchAnswer(_Open):
    """``POST /search``: the originals closest to the query, best first."""

    model_id: str
    task: str
    k: int
    calibration: CalibrationSummary
    derived_threshold: float | None = None
    search: dict[str, Any] = Field(description="How the ranking modality was searched.")
    results: list[SearchHit]
    truncated: list[Truncation] = []


class ScoreAnswer(_Open):
    """``POST /score``: how similar artwork A is to artwork B."""

    model_id: str
    task: str
    score: float
    scores: dict[str, float]
    verdict: str
    threshold: float | None
    calibration: CalibrationSummary
    decided_by: str = ""
    probability: float | None = None
    truncated: list[Truncation] = []


class Original(_Open):
    """An original's metadata (its image stays on the server; ``thumbnail_url`` shows it)."""

    id: str
    group: str
    title: str = ""
    artist: str = ""
    caption: str = ""
    lang: str = ""
    source: str = ""
    metadata: dict[str, Any] = {}
    thumbnail_url: str


class Removed(BaseModel):
    """``DELETE /originals/{id}``: the id removed and how many originals remain."""

    removed: str
    count: int


class Health(_Open):
    """``GET /health``: the model, the index's size and how verdicts are decided."""

    status: str
    model_id: str
    count: int
    store: str
    writable: bool
    max_upload_bytes: int
    calibration: CalibrationSummary


STATUS_MEANINGS = {
    400: "Neither image nor text, or a malformed field.",
    401: "A change without the right Authorization: Bearer token.",
    403: "A change to a service started without a token (read-only).",
    404: "No such original.",
    413: "A body or upload over the size limit.",
    415: "An upload that is not an image.",
    422: "An image that cannot be used (too many pixels, unreadable, no pixels), a file field "
    "sent without a filename, or an id that cannot name an original.",
    500: "The server failed (a disk it could not write, a damaged index).",
    503: "Busy: try again shortly (see Retry-After).",
    507: "The server's disk is full: nothing was changed.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: each status given, and any other error (``default``), all
    answered as :class:`ErrorResponse`."""
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorResponse, "description": STATUS_MEANINGS[status]}
        for status in (*statuses, 500)
    }
    responses["default"] = {"model": ErrorResponse, "description": "Any other error."}
    return responses
