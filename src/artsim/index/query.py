"""Asking an index: embed a query (image and/or text), rank originals, score a pair.

Search ranks originals by the score of the query's *task* (``image`` for an image query,
``text`` for a prompt against captions, ``fused`` for image + prompt), reports every other
applicable score (image-image, text-caption, image->caption ``i2t``, prompt->image ``t2i``,
fused) for the same originals, and a verdict from the run's ``calibration.json``
(:class:`artsim.verdicts.source.Calibration`).

>>> index = ArtIndex.open("runs/demo/index", read_only=True)
>>> response = search_index(index, index.load_embedder(), text="a red circle", k=3)
>>> response.task, [result.rank for result in response.results]
('text', [1, 2, 3])
>>> index.close()
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from PIL import Image

from artsim.data.pictures.images import MIN_CONTENT_SHARE, check_picture, uninformative_problem
from artsim.errors import ImageError, UserError
from artsim.index.catalog import ArtIndex
from artsim.index.crops import (
    QueryCrops,
    best_of_crops,
    default_query_crops,
    embed_crops,
    search_with_crops,
)
from artsim.model.embedder import Embedder
from artsim.verdicts.grades import VERDICT_UNINFORMATIVE
from artsim.verdicts.source import Calibration, load_calibration

SCORE_NAMES = ("image", "text", "i2t", "t2i", "fused", "copy", "content")
# The metadata key an index build sets on each original: the share of its picture that is not
# its dominant colour (artsim.data.pictures.images.content_share). Below MIN_CONTENT_SHARE its image
# matches say nothing: they are graded VERDICT_UNINFORMATIVE.
CONTENT_KEY = "artsim.content_share"
# tasks whose score reads the original's picture
IMAGE_TASKS = ("image", "fused", "t2i", "copy")


def blank_original(metadata) -> bool:
    """Whether an original's picture was found (almost) one colour when it was indexed."""
    try:
        return float(metadata.get(CONTENT_KEY, 1.0)) < MIN_CONTENT_SHARE
    except (TypeError, ValueError):
        return False


# the two readings of an image score of a model with a copy descriptor (ArtSimModel.part_weights)
PART_SCORES = ("copy", "content")


class CopyQuery:
    """``copy_query(vector) -> (partial vector, weight)``: the copy part of an image vector alone;
    its dot product with an original's image vector over ``weight`` is the copy cosine."""

    def __init__(self, embedder: Embedder, weight: float):
        self.embedder, self.weight = embedder, weight

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        for name, partial, weight in part_queries(self.embedder, image):
            if name == "copy":
                return partial, weight
        raise ValueError("this model has no copy descriptor")


def copy_query(embedder: Embedder) -> CopyQuery | None:
    """The copy part of the model's image vectors (:class:`CopyQuery`), or None without one."""
    weight = embedder.model.part_weights().get("copy", 0.0)
    return CopyQuery(embedder, weight) if weight > 0 else None


def part_queries(embedder: Embedder, image: np.ndarray | None):
    """``(name, partial query, weight)`` per part score of the model (``copy``, ``content``): the
    image vector with every other part zeroed, whose dot product with an original's image vector
    is ``weight`` times the part's cosine. Empty without a copy descriptor or an image."""
    weights = embedder.model.part_weights()
    if image is None or not weights:
        return []
    slices = embedder.model.part_slices()
    columns = {"copy": [slices["copy"]], "content": [slices["trained"], slices["content"]]}
    parts = []
    for name in PART_SCORES:
        if weights[name] <= 0:
            continue
        partial = np.zeros_like(image)
        for where in columns[name]:
            partial[where] = image[where]
        parts.append((name, partial, weights[name]))
    return parts


# A query's text is cut to what the text tower reads in this many tokens (one e5 window), so its
# cost is bounded in every script: 2,000 characters of CJK are ~2,000 tokens (four windows).
MAX_QUERY_TOKENS = 512


@dataclass(frozen=True)
class QueryVectors:
    """A query embedded: image and/or text vectors (``None`` where absent) and their fusion;
    ``truncated`` says how its text was cut (``{"field", "given_chars", "used_chars",
    "used_tokens"}``), if it was."""

    image: np.ndarray | None
    text: np.ndarray | None
    fused: np.ndarray
    truncated: tuple[dict, ...] = ()
    # the image's query crops (crops x dim) and their margin, when it is scored with them
    crops: np.ndarray | None = None
    crop_margin: float = 0.0

    def image_scores(self, originals: np.ndarray) -> np.ndarray:
        """The image score against each row of ``originals`` (image vectors): the cosine of the
        whole picture, or with query crops :func:`artsim.index.crops.best_of_crops`."""
        whole = np.atleast_2d(originals) @ self.image
        if self.crops is None:
            return whole
        return best_of_crops(whole, self.crops @ np.atleast_2d(originals).T, self.crop_margin)

    @property
    def task(self) -> str:
        """What the query is: ``fused`` (image + text), ``image`` or ``text``."""
        if self.image is not None and self.text is not None:
            return "fused"
        return "image" if self.image is not None else "text"


def embed_query(
    embedder: Embedder,
    image: Image.Image | None = None,
    text: str | None = None,
    *,
    image_name: str = "image",
    text_name: str = "text",
    max_tokens: int = MAX_QUERY_TOKENS,
    query_crops: QueryCrops | None = None,
) -> QueryVectors:
    """Embed an image and/or a text; raises :class:`UserError` if neither is given, and
    :class:`ImageError` (named ``image_name``) for a picture with (almost) no content: one
    colour matches every other picture of one colour, so no verdict could mean anything. The
    text is cut to ``max_tokens`` of the text tower (:meth:`Embedder.cut_to_tokens`).
    ``query_crops``: also embed the image's crops (:mod:`artsim.index.crops`)."""
    text = (text or "").strip()
    if image is None and not text:
        raise UserError("give an image, a text, or both")
    truncated: tuple[dict, ...] = ()
    if text:
        text, cut = embedder.cut_to_tokens(text, max_tokens)
        truncated = ({"field": text_name, **cut},) if cut else ()
    if image is not None:
        problem = uninformative_problem(check_picture(image, image_name), image_name)
        if problem:
            raise ImageError(problem)
    image_vector = embedder.embed_pil([image])[0] if image is not None else None
    text_vector = embedder.embed_texts([text])[0] if text else None
    base = image_vector if image_vector is not None else np.zeros(embedder.dim, np.float32)
    other = text_vector if text_vector is not None else np.zeros(embedder.dim, np.float32)
    fused = embedder.fuse(base[None], other[None], np.array([text_vector is not None]))[0]
    if image is None or query_crops is None:
        return QueryVectors(image_vector, text_vector, fused, truncated)
    crop_vectors = embed_crops(embedder, [image], query_crops)[0]
    return QueryVectors(
        image_vector, text_vector, fused, truncated, crop_vectors, query_crops.margin
    )


def query_crops_for(calibration: Calibration, embedder: Embedder, task: str) -> QueryCrops | None:
    """The query crops a query of ``task`` is scored with: for the ``image`` task those the
    calibration grading it was fitted with (none for one fitted on whole pictures), or the
    model's default when no calibration applies; none for every other task."""
    if task != "image":
        return None
    if calibration.status == "calibrated" and calibration.open_set is not None:
        try:
            return QueryCrops.from_json(calibration.open_set.query_crops)
        except (KeyError, TypeError, ValueError):
            return None
    return default_query_crops(embedder)


@dataclass
class SearchResult:
    """One ranked original."""

    rank: int
    id: str
    group: str
    title: str
    artist: str
    caption: str
    task: str
    score: float
    scores: dict[str, float]
    verdict: str
    threshold: float | None
    decided_by: str = ""
    probability: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class SearchResponse:
    """Ranked originals for one query, with the query's task and the calibration used."""

    model_id: str
    task: str
    k: int
    calibration: Calibration
    results: list[SearchResult]
    # how the ranking modality was searched: its plan (kind, recall_at_10 measured against
    # exact search...) plus "modality"; "exact" is True when no neighbour can have been missed
    search: dict = field(default_factory=dict)
    # the score a result of THIS query needs to be called derived (the calibrated threshold,
    # in plain score units once the query's background is added back); None if uncalibrated
    derived_threshold: float | None = None
    # how the query's text was cut to the token budget (QueryVectors.truncated), if it was
    truncated: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "model_id": self.model_id,
            "task": self.task,
            "k": self.k,
            "calibration": self.calibration.to_json(),
            "derived_threshold": self.derived_threshold,
            "search": self.search,
            "results": [result.to_json() for result in self.results],
            "truncated": [dict(cut) for cut in self.truncated],
        }


def _finite(value: float) -> float:
    return round(float(value), 6) if math.isfinite(value) else 0.0


def search_index(
    index: ArtIndex,
    embedder: Embedder,
    *,
    image: Image.Image | None = None,
    text: str | None = None,
    k: int = 10,
    calibration: Calibration | None = None,
) -> SearchResponse:
    """The ``k`` originals closest to an image and/or text query, best first."""
    if k < 1:
        raise UserError(f"k must be at least 1 (got {k})")
    index.check_model(embedder)
    calibration = calibration or load_calibration(
        index.info.run, index.model_id, index.info.calibration
    )
    crops = query_crops_for(
        calibration, embedder, "image" if image is not None and not (text or "").strip() else ""
    )
    query = embed_query(embedder, image, text, query_crops=crops)
    store = index.store
    task, modality, hits, background = _ranked_hits(store, query, calibration, k)
    scores = _candidate_scores(store, embedder, query, hits)
    records = store.get(hits.ids)
    results = []
    for rank, (item_id, score) in enumerate(zip(hits.ids, hits.scores, strict=True), start=1):
        record = records.get(item_id)
        if record is None:  # removed by a writer between the search and this read
            continue
        own = {name: scores[item_id][name] for name in SCORE_NAMES if name in scores[item_id]}
        verdict = calibration.grade(task, _finite(score), own, background, rank)
        if task in IMAGE_TASKS and blank_original(record.metadata):
            verdict = replace(
                verdict, verdict=VERDICT_UNINFORMATIVE, probability=None, threshold=None
            )
        results.append(
            SearchResult(
                rank=rank,
                id=item_id,
                group=record.group,
                title=record.title,
                artist=record.artist,
                caption=record.caption,
                task=task,
                score=_finite(score),
                scores=own,
                verdict=verdict.verdict,
                threshold=verdict.threshold,
                decided_by=verdict.decided_by,
                probability=verdict.probability,
            )
        )
    plan = store.search_plans().get(modality, {})
    search = {"modality": modality, **plan, "exact": plan.get("kind") == "flat"}
    threshold = (
        calibration.open_set.derived_threshold(task, background)
        if calibration.status == "calibrated" and calibration.open_set is not None
        else None
    )
    return SearchResponse(
        index.model_id, task, k, calibration, results, search, threshold, list(query.truncated)
    )


def _ranked_hits(store, query: QueryVectors, calibration: Calibration, k: int):
    """``(task, modality searched, the k best originals, the query's background)``: the
    originals ranked by the query's task score (an image with its crops), a prompt compared
    with the images where no original has a caption, and the score at the calibrated rank."""
    task = query.task
    modality = task
    vector = {"image": query.image, "text": query.text, "fused": query.fused}[task]
    rank = calibration.background_rank(task)
    if query.crops is not None:
        hits = search_with_crops(
            store, vector[None], [query.crops], max(k, rank), query.crop_margin
        )[0]
    else:
        hits = store.search(modality, vector[None], max(k, rank))[0]
    if task == "text" and not hits.ids:
        # no original has a caption: compare the prompt with the images instead
        task, modality = "t2i", "image"
        rank = calibration.background_rank(task)
        hits = store.search(modality, vector[None], max(k, rank))[0]
    # what an unrelated original scores for this query: the score at the calibrated rank
    background = float(hits.scores[rank - 1]) if rank and len(hits.scores) >= rank else None
    return task, modality, replace(hits, ids=hits.ids[:k], scores=hits.scores[:k]), background


def _candidate_scores(store, embedder: Embedder, query: QueryVectors, hits) -> dict:
    """Every score the query allows for each ranked original (``{id: {name: score}}``): exact,
    from the stored vectors of those originals only."""
    candidates = hits.ids
    scores: dict[str, dict[str, float]] = {item_id: {} for item_id in candidates}

    def collect(name: str, store_modality: str, query_vector: np.ndarray | None) -> None:
        if query_vector is None or not candidates:
            return
        found = store.search(store_modality, query_vector[None], len(candidates), candidates)
        for item_id, score in zip(found[0].ids, found[0].scores, strict=True):
            scores[item_id][name] = _finite(score)

    for name, part, scale in part_queries(embedder, query.image):
        collect(name, "image", part)
        for item_id in candidates:  # the part's own cosine, not its share of the image score
            if name in scores[item_id]:
                scores[item_id][name] = _finite(scores[item_id][name] / scale)
    if query.crops is not None:  # the ranking scores: whole picture or its best crop
        for item_id, score in zip(hits.ids, hits.scores, strict=True):
            scores[item_id]["image"] = _finite(score)
    else:
        collect("image", "image", query.image)
    collect("i2t", "text", query.image)
    collect("text", "text", query.text)
    collect("t2i", "image", query.text)
    collect("fused", "fused", query.fused)
    return scores


@dataclass
class PairScore:
    """How similar two artworks are: per-modality scores, the fused score, and the verdict."""

    model_id: str
    task: str
    score: float
    scores: dict[str, float]
    verdict: str
    threshold: float | None
    calibration: Calibration
    decided_by: str = ""
    probability: float | None = None
    # how the texts of A and B were cut to the token budget, if they were
    truncated: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        data = asdict(self)
        data["calibration"] = self.calibration.to_json()
        return data


def pair_task(a: QueryVectors, b: QueryVectors) -> str:
    """Which calibrated task compares A (the query) with B (the candidate original)."""
    return _pair_task(
        a.image is not None, a.text is not None, b.image is not None, b.text is not None
    )


def _pair_task(a_image: bool, a_text: bool, b_image: bool, b_text: bool) -> str:
    if a_image and a_text and b_image and b_text:
        return "fused"
    if a_image and b_image:
        return "image"
    if a_text and b_text:
        return "text"
    return "i2t" if a_image else "t2i"


def embed_pair(
    embedder: Embedder,
    calibration: Calibration,
    a: tuple[Image.Image | None, str | None],
    b: tuple[Image.Image | None, str | None],
    names: tuple[str, str] = ("image_a", "image_b"),
) -> tuple[QueryVectors, QueryVectors]:
    """Two artworks (each ``(image, text)``) embedded for :func:`score_pair`: A, when the pair
    is compared on images, with the query crops ``calibration`` scores that task with."""
    texts = [bool((text or "").strip()) for _, text in (a, b)]
    task = _pair_task(a[0] is not None, texts[0], b[0] is not None, texts[1])
    crops = query_crops_for(calibration, embedder, task)
    return (
        embed_query(
            embedder, a[0], a[1], image_name=names[0], text_name="text_a", query_crops=crops
        ),
        embed_query(embedder, b[0], b[1], image_name=names[1], text_name="text_b"),
    )


def score_pair(
    embedder: Embedder,
    a: QueryVectors,
    b: QueryVectors,
    calibration: Calibration,
    background: float | None = None,
) -> PairScore:
    """Compare two embedded artworks; A plays the generated work, B the original.
    ``background``: A's score at the calibrated rank of a search of the collection, when the
    calibration normalises this task (:func:`pair_background`)."""
    scores: dict[str, float] = {}
    pairs = {
        "image": (a.image, b.image),
        "text": (a.text, b.text),
        "i2t": (a.image, b.text),
        "t2i": (a.text, b.image),
        "fused": (a.fused, b.fused),
    }
    for name, (left, right) in pairs.items():
        if left is not None and right is not None:
            scores[name] = _finite(float(np.dot(left, right)))
    if a.image is not None and b.image is not None:
        scores["image"] = _finite(float(a.image_scores(b.image[None])[0]))
    if b.image is not None:
        for name, partial, weight in part_queries(embedder, a.image):
            scores[name] = _finite(float(np.dot(partial, b.image)) / weight)
    task = pair_task(a, b)
    verdict = calibration.grade(task, scores[task], scores, background)
    return PairScore(
        embedder.model_id,
        task,
        scores[task],
        scores,
        verdict.verdict,
        verdict.threshold,
        calibration,
        verdict.decided_by,
        verdict.probability,
        [*a.truncated, *b.truncated],
    )


def pair_background(index: ArtIndex, calibration: Calibration, a: QueryVectors, task: str):
    """A's score at the calibration's background rank among the indexed originals (None when
    the task's decisions are plain scores or the index holds too few)."""
    rank = calibration.background_rank(task)
    vector = {"image": a.image, "fused": a.fused}.get(task)
    if not rank or vector is None:
        return None
    if task == "image" and a.crops is not None:
        found = search_with_crops(index.store, vector[None], [a.crops], rank, a.crop_margin)[0]
    else:
        found = index.store.search(task, vector[None], rank)[0]
    return float(found.scores[rank - 1]) if len(found.scores) >= rank else None
