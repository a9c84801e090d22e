"""The Python API: the few calls a user needs, returning numpy arrays and plain dataclasses.

``import artsim`` stays light: these names are loaded on first use (see ``artsim/__init__.py``),
and nothing here imports the command line's or the service's toolkits.

>>> import artsim
>>> model = artsim.load_model("runs/demo")
>>> model.embed_texts(["a red fox"]).shape == (1, model.dim)
True
>>> with artsim.open_index("runs/demo/index") as index:
...     hits = index.search(text="a red fox", k=3)
>>> [hit.rank for hit in hits]
[1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from artsim.data.pictures.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.defaults import DEFAULT_SAMPLE
from artsim.errors import UserError
from artsim.eval.result import EvalResult
from artsim.index.build import add_items, add_picture, originals_of, remove_originals
from artsim.index.calibrate import calibrate_index
from artsim.index.catalog import ArtIndex, IndexInfo
from artsim.index.query import (
    PairScore,
    SearchResponse,
    SearchResult,
    embed_pair,
    pair_background,
    pair_task,
    score_pair,
    search_index,
)
from artsim.index.store import OriginalRecord
from artsim.model.embedder import Embedder
from artsim.model.explain import DEFAULT_CELLS, MatchMap, match_map
from artsim.progress import Reporter, as_reporter
from artsim.verdicts.grades import OpenSetCalibration
from artsim.verdicts.source import Calibration, load_calibration

__all__ = [
    "EvalResult",
    "Index",
    "MatchMap",
    "Model",
    "OriginalRecord",
    "PairScore",
    "SearchResponse",
    "SearchResult",
    "evaluate",
    "load_model",
    "open_index",
    "train",
]

ImageInput = str | Path | Image.Image


def _picture(image: ImageInput | None, max_pixels: int) -> Image.Image | None:
    if image is None or isinstance(image, Image.Image):
        return image
    return load_rgb(image, max_pixels)


class Model:
    """A trained model: its two towers and heads, embedding into one shared space.

    Made by :func:`load_model`. Vectors are ``float32`` rows of unit length (an empty text gives
    a zero row); image and text vectors of the same work are close, so every pair of modalities
    can be compared with a dot product.
    """

    def __init__(self, embedder: Embedder, run_dir: Path):
        self.embedder = embedder
        self.run_dir = run_dir
        self.calibration: Calibration = load_calibration(run_dir, embedder.model_id)
        """Decision thresholds from the run's ``calibration.json`` (``status`` says if any)."""

    @property
    def model_id(self) -> str:
        """A short hash of the weights; indexes built with this model record it."""
        return self.embedder.model_id

    @property
    def dim(self) -> int:
        """The length of every vector."""
        return self.embedder.dim

    def embed_images(
        self,
        images: Sequence[ImageInput],
        *,
        batch_size: int | None = None,
        progress: bool | Reporter = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> np.ndarray:
        """One vector per image (file paths or PIL images), shape ``(len(images), dim)``.

        Files go through the feature cache (a second call is fast); PIL images are embedded
        directly. ``batch_size`` defaults to 4 on a CPU and 64 on a GPU.
        """
        images = list(images)
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        files = [i for i, image in enumerate(images) if not isinstance(image, Image.Image)]
        pictures = [i for i, image in enumerate(images) if isinstance(image, Image.Image)]
        advance = as_reporter(progress).task("embedding images", len(images))
        if files:
            out[files] = self.embedder.embed_images(
                [images[i] for i in files],
                max_pixels=max_pixels,
                progress=advance,
                batch_size=batch_size,
            )
        step = batch_size or 16
        for start in range(0, len(pictures), step):
            rows = pictures[start : start + step]
            out[rows] = self.embedder.embed_pil([images[i] for i in rows])
            advance(len(rows))
        return out

    def embed_texts(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: bool | Reporter = False,
    ) -> np.ndarray:
        """One vector per text, shape ``(len(texts), dim)``; an empty text gives a zero row."""
        texts = list(texts)
        advance = as_reporter(progress).task("embedding texts", len(texts))
        vectors = self.embedder.embed_texts(texts, progress=advance, batch_size=batch_size)
        advance.complete()
        return vectors

    def encode(
        self,
        images: Sequence[ImageInput] | None = None,
        texts: Sequence[str] | None = None,
        *,
        batch_size: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> np.ndarray:
        """The vectors an index stores for works: with ``images`` and ``texts`` (one per work,
        the same length) the fused image + text vectors (a work whose text is empty gets its
        image's); with one of them, that modality's vectors. Shape ``(works, dim)``.

        >>> model.encode(["generated.png"], ["a fox, watercolor"]).shape == (1, model.dim)
        True
        """
        if images is None and texts is None:
            raise UserError("encode needs images, texts or both")
        if images is None:
            return self.embed_texts(list(texts))
        image_vectors = self.embed_images(images, batch_size=batch_size, max_pixels=max_pixels)
        if texts is None:
            return image_vectors
        texts = list(texts)
        if len(texts) != len(image_vectors):
            raise UserError(
                f"encode needs one text per image: {len(image_vectors)} images, {len(texts)} texts"
            )
        has_text = np.array([bool(text.strip()) for text in texts])
        text_vectors = self.embed_texts([text if text.strip() else " " for text in texts])
        return self.embedder.fuse(image_vectors, text_vectors, has_text)

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarity of every row of ``a`` with every row of ``b`` (``(len(a), len(b))``);
        the model's vectors are of unit length, so it is their dot product.

        >>> works = model.encode(["generated.png"], ["a fox, watercolor"])
        >>> model.similarity(works, model.encode(texts=["a fox", "a red fox"])).shape
        (1, 2)
        """
        a, b = np.atleast_2d(np.asarray(a, np.float32)), np.atleast_2d(np.asarray(b, np.float32))
        norms = np.linalg.norm(a, axis=1, keepdims=True) * np.linalg.norm(b, axis=1)[None, :]
        return (a @ b.T) / np.where(norms > 0, norms, 1.0)

    def score(
        self,
        image_a: ImageInput | None = None,
        image_b: ImageInput | None = None,
        *,
        text_a: str | None = None,
        text_b: str | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> PairScore:
        """How similar work A (e.g. a generated one) is to work B (e.g. an original).

        Each side is an image, a text or both. Returns every score the two sides allow
        (``image``, ``text``, ``i2t``, ``t2i``, ``fused``; with a copy tower, for two images, also
        ``copy``, the copy descriptor's cosine, and ``content``, what is drawn), the score of the
        calibrated task and
        the graded verdict (``copy``, ``derived``, ``related``, ``unrelated`` or
        ``uncalibrated``).

        >>> pair = model.score("generated.png", "original.png", text_a="a fox, watercolor")
        >>> pair.task, pair.score == pair.scores["image"]  # A image + text, B image: image
        ('image', True)
        """
        a, b = embed_pair(
            self.embedder,
            self.calibration,
            (_picture(image_a, max_pixels), text_a),
            (_picture(image_b, max_pixels), text_b),
        )
        return score_pair(self.embedder, a, b, self.calibration)

    def explain(
        self,
        image_a: ImageInput,
        image_b: ImageInput,
        *,
        part: str | None = None,
        method: str = "crops",
        cells: int = DEFAULT_CELLS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        names: tuple[str, str] = ("image A", "image B"),
    ) -> MatchMap:
        """Where picture A (e.g. the generated one) and picture B (the original) match.

        Returns a :class:`~artsim.model.explain.MatchMap`: ``a.grid`` and ``b.grid`` are
        ``cells`` x ``cells`` float arrays (rows top to bottom) saying how well each region of A
        matches the whole of B and the other way round, ``a.peak()`` where A matches best (x, y
        as fractions), ``link`` the best-matching pair of regions, ``score`` the pair's cosine of
        the ``part`` mapped (default: ``copy`` where the model has a copy descriptor, else
        ``image``; see :func:`~artsim.model.explain.available_parts`). ``names``: how errors
        name the two pictures.

        >>> found = model.explain("generated.png", "original.png", cells=4)
        >>> found.a.grid.shape, found.b.grid.shape
        ((4, 4), (4, 4))
        >>> x, y = found.a.peak()  # fractions of A's width and height
        >>> 0 <= x <= 1 and 0 <= y <= 1
        True
        """
        return match_map(
            self.embedder,
            _picture(image_a, max_pixels),
            _picture(image_b, max_pixels),
            part=part,
            method=method,
            cells=cells,
            names=names,
        )


def load_model(
    run_or_model_dir: str | Path,
    *,
    device: str | None = None,
    cache_dir: str | Path | bool | None = None,
) -> Model:
    """Load a trained model from a run folder (or any folder with ``model.safetensors`` and
    ``model.json``).

    ``cache_dir`` is the tower feature cache (default ``~/.cache/artsim/features``; ``False``
    for none); ``device`` defaults to a GPU when there is one.
    """
    folder = Path(run_or_model_dir)
    cache = False if cache_dir is False else (None if cache_dir is True else cache_dir)
    return Model(Embedder.from_run(folder, cache_dir=cache, device=device), folder)


class Index:
    """A search index of originals, opened with :func:`open_index`; close it (or use ``with``).

    The command line and the service reach an index through this class: ``artsim search`` is
    :meth:`search_response`, ``POST /score`` :meth:`score`, ``POST /originals`` :meth:`add_picture`.
    """

    def __init__(self, index: ArtIndex, model: Model | None):
        self._index = index
        self.model = model
        """The model that built the index (:class:`Model`); ``None`` when opened without it
        (``open_index(..., with_model=False)``: what needs no embedding still works)."""

    @property
    def _embedder(self) -> Embedder:
        if self.model is None:
            raise UserError(
                f"{self.path}: opened without its model (with_model=False); searching, scoring, "
                "adding and calibrating embed pictures: open it with its model"
            )
        return self.model.embedder

    @property
    def path(self) -> Path:
        """The index folder."""
        return self._index.path

    @property
    def info(self) -> IndexInfo:
        """What ``index.json`` says (the model, its run, the store, the calibration), as read
        when the index was opened or last calibrated."""
        return self._index.info

    @property
    def catalog(self) -> ArtIndex:
        """The library's opened index (:class:`~artsim.index.catalog.ArtIndex`: its store, its
        write lock), for what this class does not wrap."""
        return self._index

    def __len__(self) -> int:
        return self._index.count()

    def describe(self) -> dict[str, Any]:
        """What ``artsim index info --json`` prints: ``index.json``'s fields, how each modality
        is searched (``search``: the store's committed plans), ``count`` and ``store_detail``.

        >>> description = index.describe()
        >>> description["count"] == len(index), sorted(description["search"])
        (True, ['fused', 'image', 'text'])
        """
        return {
            **asdict(self._index.info),
            "search": self._index.store.search_plans(),
            "count": self._index.count(),
            "store_detail": self._index.store.describe(),
        }

    def search(
        self,
        image: ImageInput | None = None,
        text: str | None = None,
        *,
        k: int = 10,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> list[SearchResult]:
        """The ``k`` originals closest to an image and/or a text, best first.

        Each :class:`~artsim.index.query.SearchResult` has the original's ``id``, ``group``,
        ``title``, the ranking ``score`` of the query's ``task``, every per-modality score in
        ``scores`` and a graded ``verdict`` (the index's own calibration first, else the run's).
        """
        return self.search_response(image, text, k=k, max_pixels=max_pixels).results

    def search_response(
        self,
        image: ImageInput | None = None,
        text: str | None = None,
        *,
        k: int = 10,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        calibration: Calibration | None = None,
    ) -> SearchResponse:
        """:meth:`search` with what comes around its results: the query's ``task``, the
        ``calibration`` that graded them, the ``derived_threshold`` of this query, how the
        ranking modality was ``search``-ed (exact, or approximate with its measured recall) and
        how a long text was ``truncated``; ``to_json()`` is what ``artsim search --json`` prints.
        ``calibration`` replaces the default (the index's own, else its run's).

        >>> response = index.search_response(text="a red fox", k=2)
        >>> response.task, len(response.results), response.search["exact"]
        ('text', 2, True)
        """
        return search_index(
            self._index,
            self._embedder,
            image=_picture(image, max_pixels),
            text=text,
            k=k,
            calibration=calibration,
        )

    def score(
        self,
        image_a: ImageInput | None = None,
        image_b: ImageInput | None = None,
        *,
        text_a: str | None = None,
        text_b: str | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        calibration: Calibration | None = None,
    ) -> PairScore:
        """:meth:`Model.score` graded on this collection: with the index's calibration (or
        ``calibration``) and, where that calibration grades a task's score against the query's
        background, A's background searched among the indexed originals.

        >>> index.score("generated.png", text_b="a red fox").task  # A's image, B's caption
        'i2t'
        """
        if calibration is None:
            calibration = load_calibration(
                self._index.info.run, self._index.model_id, self._index.info.calibration
            )
        embedder = self._embedder
        a, b = embed_pair(
            embedder,
            calibration,
            (_picture(image_a, max_pixels), text_a),
            (_picture(image_b, max_pixels), text_b),
        )
        background = pair_background(self._index, calibration, a, pair_task(a, b))
        return score_pair(embedder, a, b, calibration, background)

    def get(self, ids: Sequence[str], *, thumbnails: bool = False) -> dict[str, OriginalRecord]:
        """The indexed originals among ``ids``, by id (an id not there is left out); with
        ``thumbnails`` their JPEG thumbnails too.

        >>> first = index.search(text="a red fox", k=1)[0]
        >>> list(index.get([first.id, "not-an-id"])) == [first.id]
        True
        """
        return self._index.store.get(list(ids), thumbnails)

    def add(
        self,
        manifest: str | Path,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        progress: bool | Reporter = False,
    ) -> int:
        """Add the originals of a manifest (an id already there is replaced); returns how many."""
        reporter = as_reporter(progress)
        originals = originals_of(manifest, max_pixels, reporter)
        return add_items(
            self._index, originals, self._embedder, max_pixels=max_pixels, reporter=reporter
        )

    def add_picture(
        self,
        image: ImageInput,
        record: OriginalRecord,
        *,
        image_bytes: bytes | None = None,
        image_format: str = "png",
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> OriginalRecord:
        """Add (or replace) one original given as a picture, described by ``record`` (its id,
        group, caption...); returns the record stored. With ``image_bytes`` (the picture's file,
        e.g. an upload, in ``image_format``) the index keeps that file in its ``uploads/``
        folder; without, it keeps the thumbnail and ``record.image_path``."""
        return add_picture(
            self._index,
            self._embedder,
            _picture(image, max_pixels),
            record,
            image_bytes,
            image_format,
        )

    def remove(self, ids: Sequence[str]) -> list[str]:
        """Remove originals by id; returns the ids that were there."""
        return remove_originals(self._index, list(ids))

    def calibrate(
        self, *, sample: int = DEFAULT_SAMPLE, seed: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> OpenSetCalibration:
        """Fit the verdict thresholds on the indexed collection itself, from derivatives of
        ``sample`` drawn groups (``seed`` draws them), and record them in ``index.json``
        (:attr:`info` then holds them); returns the calibration (see ``docs/verdicts.md``)."""
        return calibrate_index(
            self._index, self._embedder, sample=sample, seed=seed, max_pixels=max_pixels
        )

    def close(self) -> None:
        """Release the store (files, connections)."""
        self._index.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_index(
    path: str | Path,
    *,
    run: str | Path | None = None,
    read_only: bool = False,
    cache_dir: str | Path | bool | None = None,
    with_model: bool = True,
) -> Index:
    """Open an index folder with the model that built it (or ``run``, if it is that model).

    ``read_only``: no file of the index can change (searches only). ``cache_dir`` is the
    tower feature cache, as for :func:`load_model` (``False``: none, so a query writes nothing).
    ``with_model=False``: the model is not loaded (fast, and its run folder need not exist):
    :meth:`Index.describe`, :meth:`Index.get` and :meth:`Index.remove` work, what embeds a
    picture or a text says it needs the model.
    """
    index = ArtIndex.open(path, read_only=read_only)
    if not with_model:
        return Index(index, None)
    cache = False if cache_dir is False else (None if cache_dir is True else cache_dir)
    try:
        embedder = index.load_embedder(run, cache_dir=cache)
    except BaseException:
        index.close()
        raise
    return Index(index, Model(embedder, Path(run) if run is not None else Path(index.info.run)))


def train(config: Any = None, /, **options: Any) -> dict[str, Any]:
    """Train a run and return its summary (what ``RUN_DIR/summary.json`` holds).

    ``config`` is a :class:`~artsim.training.config.TrainConfig`, a dict of its fields or a YAML
    file; ``options`` override it (``data=``, ``out=``, ``max_epochs=``, ...). The run folder is
    ``summary["config"]["out"]``. A non-empty ``out`` is refused unless ``resume=True`` (continue
    the run in it) or ``overwrite=True`` (replace its run files).
    """
    from artsim.training.run import train_and_summarise  # lightning is heavy: only to train

    return train_and_summarise(config, **options)


def evaluate(
    run: str | Path,
    manifest: str | Path | None = None,
    *,
    split: str | None = None,
    name: str | None = None,
    seed: int = 0,
    write: bool = False,
    progress: bool | Reporter = False,
) -> EvalResult:
    """Evaluate a run on a manifest; returns the typed result (:class:`EvalResult`) of what
    ``artsim evaluate`` measures: ``result.retrieval``, ``result.verification``,
    ``result.baselines`` and ``result.generalisation``, read by attribute;
    ``result.to_dict()`` is the JSON ``artsim evaluate`` writes.

    ``split`` is ``"val"``, ``"calib"`` or ``"train"`` (ids of the run's ``split.csv``) or
    ``None`` (every item); ``manifest`` defaults to the run's training data. Nothing is written
    unless ``write``: then the result goes to ``RUN_DIR/eval/<name>.json`` (and
    ``calibration.json`` for the run's own calibration part), as ``artsim evaluate`` does.

    >>> result = artsim.evaluate("runs/demo", split="val")
    >>> sorted(result.retrieval.tasks)
    ['fused', 'i2t', 'image', 't2i', 'text']
    >>> 0.0 <= result.retrieval.figure("fused", "recall@1") <= 1.0
    True
    """
    from artsim.eval.evaluate import evaluate_run

    return evaluate_run(
        run, manifest, split=split, name=name, seed=seed, write=write,
        reporter=as_reporter(progress),
    )  # fmt: skip
