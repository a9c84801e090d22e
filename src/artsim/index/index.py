"""A search index of original artworks: build, add, remove, search, and the ``artsim index`` group.

An index is a folder. ``index.json`` says which model built it (``model_id`` and run folder) and
where its vectors live: the embedded faiss + SQLite store in the same folder (default) or a Milvus
server (``milvus://HOST:PORT``). Queries embedded by another model are refused
(:class:`~artsim.errors.ModelMismatchError`): their vectors live in another space.

Search ranks originals by the score of the query's *task* (``image`` for an image query,
``text`` for a prompt against captions, ``fused`` for image + prompt), reports every other
applicable score (image-image, text-caption, image->caption ``i2t``, prompt->image ``t2i``,
fused) for the same originals, and a verdict from the run's ``calibration.json``.

>>> index = build_index("runs/demo", "data/demo/manifest.csv", "indexes/demo")  # doctest: +SKIP
>>> search_index(index, embedder, text="a red circle", k=3).results[0].id  # doctest: +SKIP
'g000-orig'
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from artsim.commands import run_app
from artsim.data.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.data.items import Item
from artsim.data.manifest import load_manifest
from artsim.errors import DataError, ModelMismatchError, UserError
from artsim.eval.verdicts import (
    VERDICT_UNCALIBRATED,
    OpenSetCalibration,
    Verdict,
)
from artsim.index.faiss_store import DEFAULT_IVF_THRESHOLD, FaissStore
from artsim.index.store import OriginalRecord, VectorStore
from artsim.model.embedder import Embedder, fuse_embeddings

INDEX_FILE = "index.json"
CALIBRATION_FILE = "calibration.json"
FORMAT_VERSION = 1
THUMBNAIL_SIZE = 160
UPLOAD_DIR = "uploads"

VERDICT_DERIVED = "derived"

SCORE_NAMES = ("image", "text", "i2t", "t2i", "fused")

err_console = Console(stderr=True, highlight=False)


# --------------------------------------------------------------------------- what an index is


@dataclass(frozen=True)
class IndexInfo:
    """The contents of ``index.json``."""

    model_id: str
    run: str
    dim: int
    store: str = "faiss"  # or "milvus://HOST:PORT"
    milvus_prefix: str = ""
    created: str = ""
    format_version: int = FORMAT_VERSION
    # open-set verdict calibration fitted on this collection (artsim calibrate), or None
    calibration: dict | None = None

    @classmethod
    def read(cls, folder: Path) -> IndexInfo:
        path = folder / INDEX_FILE
        if not path.is_file():
            if not folder.exists():
                raise UserError(f"index not found: {folder}")
            raise UserError(f"{folder}: not an artsim index (no {INDEX_FILE})")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{key: raw[key] for key in cls.__dataclass_fields__ if key in raw})
        except (ValueError, TypeError) as error:
            raise UserError(f"{path}: unreadable index description ({error})") from None

    def write(self, folder: Path) -> None:
        temporary = folder / f".{INDEX_FILE}.tmp"
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, folder / INDEX_FILE)


def open_store(folder: Path, info: IndexInfo, read_only: bool = False) -> VectorStore:
    """The vector store an index folder describes."""
    if info.store == "faiss":
        return FaissStore(folder, read_only=read_only)
    if info.store.startswith("milvus://"):
        from artsim.index.milvus_store import MilvusStore

        store = MilvusStore(info.store, info.milvus_prefix, read_only=read_only)
        if store.dim == 0:
            raise UserError(
                f"{folder}: its Milvus collections {info.milvus_prefix}_* are gone from {info.store}"
            )
        return store
    raise UserError(f"{folder}: unknown store {info.store!r} in {INDEX_FILE}")


class ArtIndex:
    """An opened index: its description (:class:`IndexInfo`) and its :class:`VectorStore`."""

    def __init__(self, path: Path, info: IndexInfo, store: VectorStore):
        self.path, self.info, self.store = path, info, store

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False) -> ArtIndex:
        """Open an existing index folder (read-only: no file in it can change)."""
        path = Path(path)
        info = IndexInfo.read(path)
        return cls(path, info, open_store(path, info, read_only=read_only))

    @property
    def model_id(self) -> str:
        return self.info.model_id

    def count(self) -> int:
        return self.store.count()

    def check_model(self, embedder: Embedder) -> None:
        """Refuse an embedder whose vectors are not in this index's space."""
        if embedder.model_id != self.info.model_id:
            raise ModelMismatchError(
                f"the index {self.path} was built with model {self.info.model_id} "
                f"(run {self.info.run}), but the model asked to query it is {embedder.model_id}: "
                "its vectors are in another space. Search with the run the index was built "
                "with, or rebuild the index with `artsim index build --run RUN`."
            )

    def load_embedder(self, run: str | Path | None = None, cache_dir=None) -> Embedder:
        """The model the index was built with (or ``run``, if it is that same model)."""
        run_dir = Path(run) if run is not None else Path(self.info.run)
        if not run_dir.is_dir():
            raise UserError(
                f"the run folder {run_dir} that built the index {self.path} is gone; "
                "give the run with --run"
            )
        embedder = Embedder.from_run(run_dir, cache_dir=cache_dir)
        self.check_model(embedder)
        return embedder

    def close(self) -> None:
        self.store.close()


# --------------------------------------------------------------------------- embedding originals


def make_thumbnail(image: Image.Image, size: int = THUMBNAIL_SIZE) -> bytes:
    """A small JPEG (longest side ``size``) kept in the index for result pages."""
    thumbnail = image.convert("RGB")
    thumbnail.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    # no chroma subsampling: small flat-coloured artworks smear badly with 4:2:0
    thumbnail.save(buffer, format="JPEG", quality=88, optimize=True, subsampling=0)
    return buffer.getvalue()


def record_for_item(item: Item, thumbnail: bytes | None) -> OriginalRecord:
    """Metadata an index keeps for a manifest item."""
    return OriginalRecord(
        id=item.id,
        group=item.group,
        title=item.title,
        artist=item.artist,
        caption=item.text,
        lang=item.lang,
        image_path=str(item.image),
        source=item.source,
        metadata=dict(item.metadata),
        thumbnail=thumbnail,
    )


def vectors_for(
    embedder: Embedder, image_vectors: np.ndarray, captions: Sequence[str], progress=None
) -> dict[str, np.ndarray]:
    """The three vectors an index keeps per original, from its image vectors and captions."""
    text = embedder.embed_texts(list(captions), progress=progress)
    has_text = np.array([bool(caption.strip()) for caption in captions], dtype=bool)
    fused = fuse_embeddings(image_vectors, text, has_text)
    return {"image": image_vectors, "text": text, "fused": fused}


def _progress(console: Console | None):
    if console is None:
        return nullcontext(None)
    return Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _step(progress: Progress | None, description: str, total: int):
    """A progress callback ``advance(n)`` for one step, or ``None`` without a progress bar."""
    if progress is None:
        return None
    task = progress.add_task(description, total=total)
    return lambda n=1: progress.advance(task, n)


def add_items(
    index: ArtIndex,
    items: Sequence[Item],
    embedder: Embedder,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    console: Console | None = None,
    batch_size: int = 2048,
) -> int:
    """Embed ``items`` (originals) and insert or replace them in the index; returns how many.

    Works in batches, each committed on its own: an interruption keeps the batches already
    committed and leaves the index usable.
    """
    index.check_model(embedder)
    if index.store.dim != embedder.dim:
        raise ModelMismatchError(
            f"the index {index.path} holds {index.store.dim}-d vectors, the model makes "
            f"{embedder.dim}-d ones"
        )
    items = list(items)
    with _progress(console) as progress:
        embed_step = _step(progress, "embedding images", len(items))
        text_step = _step(progress, "embedding captions", sum(i.has_text for i in items))
        thumb_step = _step(progress, "thumbnails", len(items))
        store_step = _step(progress, "writing the index", len(items))
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            image_vectors = embedder.embed_images(
                [item.image for item in batch], max_pixels=max_pixels, progress=embed_step
            )
            vectors = vectors_for(embedder, image_vectors, [i.text for i in batch], text_step)
            records = []
            for item in batch:
                records.append(
                    record_for_item(item, make_thumbnail(load_rgb(item.image, max_pixels)))
                )
                if thumb_step:
                    thumb_step(1)
            index.store.add([item.id for item in batch], vectors, records)
            if store_step:
                store_step(len(batch))
    return len(items)


def add_picture(
    index: ArtIndex,
    embedder: Embedder,
    image: Image.Image,
    record: OriginalRecord,
    image_bytes: bytes | None = None,
    image_format: str = "png",
) -> OriginalRecord:
    """Add (or replace) one original given as a picture in memory, e.g. an upload.

    With ``image_bytes`` the file is kept under the index's ``uploads/`` folder, so the index
    still has the full picture; the record's ``image_path`` then points there.
    """
    index.check_model(embedder)
    image_path = record.image_path
    if image_bytes is not None:
        folder = index.path / UPLOAD_DIR
        folder.mkdir(exist_ok=True)
        # the id may hold any character: name the file by a hash of it
        name = f"{uuid.uuid5(uuid.NAMESPACE_URL, record.id).hex}.{image_format}"
        temporary = folder / f".{name}.tmp"
        temporary.write_bytes(image_bytes)
        os.replace(temporary, folder / name)
        image_path = str((folder / name).resolve())
    record = OriginalRecord(
        **{**asdict(record), "image_path": image_path, "thumbnail": make_thumbnail(image)}
    )
    vectors = vectors_for(embedder, embedder.embed_pil([image]), [record.caption])
    index.store.add([record.id], vectors, [record])
    return record


def remove_originals(index: ArtIndex, ids: Sequence[str]) -> list[str]:
    """Remove originals by id; returns those that were there. Uploaded files go with them."""
    records = index.store.get(ids)
    removed = index.store.remove(ids)
    uploads = (index.path / UPLOAD_DIR).resolve()
    for item_id in removed:
        path = Path(records[item_id].image_path) if item_id in records else None
        if path is not None and path.parent == uploads:
            path.unlink(missing_ok=True)
    return removed


def _originals_of(manifest_path: str | Path, max_pixels: int) -> list[Item]:
    manifest = load_manifest(manifest_path, max_pixels=max_pixels, check_images=True)
    for problem in manifest.errors[:10]:
        err_console.print(f"[yellow]skipped:[/] {problem.format(str(manifest.path))}")
    if len(manifest.errors) > 10:
        err_console.print(f"[yellow]... and {len(manifest.errors) - 10} more skipped rows[/]")
    originals = manifest.originals()
    if not originals:
        raise DataError(f"{manifest_path}: no usable original (role 'original') to index")
    return originals


def build_index(
    run_dir: str | Path,
    manifest_path: str | Path,
    out: str | Path,
    *,
    store: str | None = None,
    force: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    ivf_threshold: int = DEFAULT_IVF_THRESHOLD,
    console: Console | None = None,
    embedder: Embedder | None = None,
) -> ArtIndex:
    """Embed a manifest's originals with a run's model into a new index folder ``out``.

    The index is built in a hidden folder beside ``out`` and renamed into place at the end, so
    an interrupted build leaves any previous index at ``out`` as it was.
    """
    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        if not (out / INDEX_FILE).is_file():
            raise UserError(f"{out} exists and is not an artsim index: choose another --out")
        if not force:
            raise UserError(
                f"{out} already holds an index: use `artsim index add` to add to it, "
                "or --force to replace it"
            )
    originals = _originals_of(manifest_path, max_pixels)
    run_dir = Path(run_dir).resolve()
    embedder = embedder or Embedder.from_run(run_dir)
    info = IndexInfo(
        model_id=embedder.model_id,
        run=str(run_dir),
        dim=embedder.dim,
        store=store or "faiss",
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    building = out.parent / f".{out.name}.building-{uuid.uuid4().hex[:8]}"
    building.mkdir()
    vector_store: VectorStore | None = None
    try:
        if info.store == "faiss":
            vector_store = FaissStore.create(building, embedder.dim, ivf_threshold=ivf_threshold)
        elif info.store.startswith("milvus://"):
            from artsim.index.milvus_store import MilvusStore

            prefix = f"artsim_{uuid.uuid4().hex[:12]}"
            info = IndexInfo(**{**asdict(info), "milvus_prefix": prefix})
            vector_store = MilvusStore.create(info.store, prefix, embedder.dim)
        else:
            raise UserError(f"unknown --store {store!r}: leave it out, or give milvus://HOST:PORT")
        info.write(building)
        index = ArtIndex(building, info, vector_store)
        add_items(index, originals, embedder, max_pixels=max_pixels, console=console)
        vector_store.close()
    except BaseException:
        if vector_store is not None:
            vector_store.close()
            if info.milvus_prefix:
                _drop_milvus(info)
        shutil.rmtree(building, ignore_errors=True)
        raise
    _move_into_place(building, out)
    return ArtIndex.open(out)


def _drop_milvus(info: IndexInfo) -> None:
    from artsim.index.milvus_store import MilvusStore

    try:
        store = MilvusStore(info.store, info.milvus_prefix)
        store.drop()
        store.close()
    except Exception as error:  # cleanup must not hide the original problem
        err_console.print(
            f"[yellow]could not drop Milvus collections {info.milvus_prefix}_*: {error}"
        )


def _move_into_place(building: Path, out: Path) -> None:
    """Swap the finished index in for whatever was at ``out`` (two renames)."""
    old = None
    if out.exists():
        old_info = IndexInfo.read(out) if (out / INDEX_FILE).is_file() else None
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    os.replace(building, out)
    if old is not None:
        if old_info is not None and old_info.milvus_prefix:
            _drop_milvus(old_info)
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """Where verdicts come from: an open-set calibration (:mod:`artsim.eval.verdicts`), fitted
    on the indexed collection (``index.json``) or on the run's calibration part
    (``calibration.json``).

    ``status`` is ``calibrated`` when one applies to this model, else ``uncalibrated`` with
    ``note`` saying why (none measured, another model's, unreadable).
    """

    status: str
    note: str = ""
    open_set: OpenSetCalibration | None = None
    source: str = ""

    @property
    def rate(self) -> float | None:
        return self.open_set.rate if self.open_set else None

    def grade(self, task: str, score: float, scores: dict[str, float]) -> Verdict:
        """The graded verdict of one result (``uncalibrated`` without a calibration)."""
        if self.status != "calibrated" or self.open_set is None:
            return Verdict(VERDICT_UNCALIBRATED, task, score, None, None)
        return self.open_set.grade(task, score, scores)

    def to_json(self) -> dict:
        data = {"status": self.status, "note": self.note, "source": self.source}
        if self.open_set is not None:
            data["rate"] = self.open_set.rate
            data["copy_threshold"] = (self.open_set.copy or {}).get("threshold")
            data["thresholds"] = {
                task: calibration.threshold(self.open_set.rate)
                for task, calibration in self.open_set.tasks.items()
            }
            measured = self.open_set.about.get("measured")
            if measured:
                data["measured"] = measured
                on = self.open_set.about.get("on", {})
                data["distractor_queries"] = on.get("distractor_queries")
        return data


def _open_set_note(open_set: OpenSetCalibration, where: str) -> str:
    return (
        f"calibrated on {where}: at most {open_set.rate:.1%} of queries whose original is not "
        "indexed are called derived"
    )


def load_calibration(
    run_dir: str | Path, model_id: str, index_info: IndexInfo | None = None
) -> Calibration:
    """The verdict calibration: the index's own (``index.json``) first, else the run's
    ``calibration.json``; never invents a threshold when it cannot."""
    if index_info is not None and index_info.calibration:
        try:
            open_set = OpenSetCalibration.from_json(index_info.calibration)
        except (KeyError, TypeError, ValueError) as error:
            return Calibration("uncalibrated", f"the index's calibration is unreadable ({error})")
        if open_set.model_id == model_id:
            return Calibration(
                "calibrated", _open_set_note(open_set, "this collection"), open_set, "collection"
            )
    path = Path(run_dir) / CALIBRATION_FILE
    if not path.is_file():
        # the run's name, not its path: this note is also shown by the web service
        return Calibration(
            "uncalibrated",
            f"no {CALIBRATION_FILE} in the run folder {Path(run_dir).name!r} and no calibration "
            "in the index: run `artsim calibrate --index INDEX` to calibrate verdicts",
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if "open_set" not in raw:
            return Calibration(
                "uncalibrated",
                f"{CALIBRATION_FILE} of the run holds only per-pair thresholds (written before "
                "open-set calibration): run `artsim calibrate --index INDEX`",
            )
        open_set = OpenSetCalibration.from_json(raw["open_set"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return Calibration("uncalibrated", f"{CALIBRATION_FILE} of the run is unreadable ({error})")
    if open_set.model_id != model_id:
        return Calibration(
            "uncalibrated",
            f"{CALIBRATION_FILE} of the run was measured for model {open_set.model_id}, "
            f"not {model_id}",
        )
    where = f"the run's {raw.get('source', 'evaluation').split(' of ')[0]}"
    return Calibration("calibrated", _open_set_note(open_set, where), open_set, "run")


# --------------------------------------------------------------------------- searching


@dataclass(frozen=True)
class QueryVectors:
    """A query embedded: image and/or text vectors (``None`` where absent) and their fusion."""

    image: np.ndarray | None
    text: np.ndarray | None
    fused: np.ndarray

    @property
    def task(self) -> str:
        """What the query is: ``fused`` (image + text), ``image`` or ``text``."""
        if self.image is not None and self.text is not None:
            return "fused"
        return "image" if self.image is not None else "text"


def embed_query(
    embedder: Embedder, image: Image.Image | None = None, text: str | None = None
) -> QueryVectors:
    """Embed an image and/or a text; raises :class:`UserError` if neither is given."""
    text = (text or "").strip()
    if image is None and not text:
        raise UserError("give an image, a text, or both")
    image_vector = embedder.embed_pil([image])[0] if image is not None else None
    text_vector = embedder.embed_texts([text])[0] if text else None
    base = image_vector if image_vector is not None else np.zeros(embedder.dim, np.float32)
    other = text_vector if text_vector is not None else np.zeros(embedder.dim, np.float32)
    fused = fuse_embeddings(base[None], other[None], np.array([text_vector is not None]))[0]
    return QueryVectors(image_vector, text_vector, fused)


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

    def to_json(self) -> dict:
        return {
            "model_id": self.model_id,
            "task": self.task,
            "k": self.k,
            "calibration": self.calibration.to_json(),
            "results": [result.to_json() for result in self.results],
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
    query = embed_query(embedder, image, text)
    calibration = calibration or load_calibration(index.info.run, index.model_id, index.info)
    store = index.store
    task = query.task
    if task == "image":
        modality, vector = "image", query.image
    elif task == "text":
        modality, vector = "text", query.text
    else:
        modality, vector = "fused", query.fused
    hits = store.search(modality, vector[None], k)[0]
    if task == "text" and not hits.ids:
        # no original has a caption: compare the prompt with the images instead
        task, modality = "t2i", "image"
        hits = store.search(modality, vector[None], k)[0]
    candidates = hits.ids
    scores: dict[str, dict[str, float]] = {item_id: {} for item_id in candidates}

    def collect(name: str, store_modality: str, query_vector: np.ndarray | None) -> None:
        if query_vector is None or not candidates:
            return
        found = store.search(store_modality, query_vector[None], len(candidates), candidates)
        for item_id, score in zip(found[0].ids, found[0].scores, strict=True):
            scores[item_id][name] = _finite(score)

    collect("image", "image", query.image)
    collect("i2t", "text", query.image)
    collect("text", "text", query.text)
    collect("t2i", "image", query.text)
    collect("fused", "fused", query.fused)
    records = store.get(candidates)
    results = []
    for rank, (item_id, score) in enumerate(zip(hits.ids, hits.scores, strict=True), start=1):
        record = records.get(item_id)
        if record is None:  # removed by a writer between the search and this read
            continue
        own = {name: scores[item_id][name] for name in SCORE_NAMES if name in scores[item_id]}
        verdict = calibration.grade(task, _finite(score), own)
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
    return SearchResponse(index.model_id, task, k, calibration, results)


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

    def to_json(self) -> dict:
        data = asdict(self)
        data["calibration"] = self.calibration.to_json()
        return data


def pair_task(a: QueryVectors, b: QueryVectors) -> str:
    """Which calibrated task compares A (the query) with B (the candidate original)."""
    a_image, a_text = a.image is not None, a.text is not None
    b_image, b_text = b.image is not None, b.text is not None
    if a_image and a_text and b_image and b_text:
        return "fused"
    if a_image and b_image:
        return "image"
    if a_text and b_text:
        return "text"
    return "i2t" if a_image else "t2i"


def score_pair(
    embedder: Embedder,
    a: QueryVectors,
    b: QueryVectors,
    calibration: Calibration,
) -> PairScore:
    """Compare two embedded artworks; A plays the generated work, B the original."""
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
    task = pair_task(a, b)
    verdict = calibration.grade(task, scores[task], scores)
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
    )


# --------------------------------------------------------------------------- the `index` group

app = typer.Typer(
    name="index",
    help="Build and change the search index of original artworks.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("build")
def build_command(
    run: Annotated[Path, typer.Option("--run", help="Run folder with the trained model.")],
    data: Annotated[Path, typer.Option("--data", help="Manifest; its originals are indexed.")],
    out: Annotated[Path, typer.Option("--out", help="Index folder to create.")],
    store: Annotated[
        str | None,
        typer.Option("--store", help="Keep vectors in Milvus: milvus://HOST:PORT."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an index at --out.")] = False,
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", help="Refuse images larger than this.")
    ] = DEFAULT_MAX_PIXELS,
    calibrate_sample: Annotated[
        int,
        typer.Option(
            "--calibrate-sample",
            min=0,
            help="Groups drawn to calibrate verdicts on this collection (0: do not calibrate).",
        ),
    ] = 80,
) -> None:
    """Embed the ORIGINALS of a manifest (image, caption, fused vectors) into a new index."""
    index = build_index(
        run, data, out, store=store, force=force, max_pixels=max_pixels, console=err_console
    )
    try:
        err_console.print(
            f"indexed {index.count()} originals into {out} "
            f"(model {index.model_id}, {index.store.describe()})"
        )
        if calibrate_sample:
            try:
                _calibrate_and_say(index, index.load_embedder(run), calibrate_sample, 0, max_pixels)
            except UserError as error:  # the index is built and usable: say why, keep it
                err_console.print(f"[yellow]verdicts not calibrated: {error}[/]")
    finally:
        index.close()


def _calibrate_and_say(
    index: ArtIndex, embedder: Embedder, sample: int, seed: int, max_pixels: int
) -> None:
    from artsim.index.calibrate import calibrate_index

    with err_console.status("calibrating verdicts on this collection"):
        calibration = calibrate_index(
            index, embedder, sample=sample, seed=seed, max_pixels=max_pixels
        )
    for line in calibration_lines(index.info.calibration or {}):
        err_console.print(line)
    if not calibration.tasks:
        err_console.print("[yellow]too few usable queries: verdicts stay uncalibrated[/]")


def calibration_lines(raw: dict) -> list[str]:
    """What ``index.json``'s calibration says, in a few lines for people."""
    if not raw:
        return ["calibration: none (run `artsim calibrate --index INDEX`)"]
    about = raw.get("about", {})
    on = about.get("on", {})
    lines = [
        f"calibration: {on.get('match_queries', '?')} derivatives of indexed originals and "
        f"{on.get('distractor_queries', '?')} of originals left out of the gallery "
        f"({on.get('originals_in_index', '?')} originals, seed {on.get('seed', '?')}, "
        f"{about.get('seconds', '?')} s); 'derived' at a {raw.get('rate', 0):.1%} false rate"
    ]
    for task, rates in about.get("measured", {}).items():
        parts = []
        for rate, values in rates.items():
            if float(rate) > 0.05:
                continue
            high = values["false_rate_interval"][1]
            parts.append(
                f"{float(rate):.1%}: t={values['threshold']:.3f} recall {values['recall']:.2f} "
                f"(false {values['false_rate']:.1%}, <= {high:.1%} at 95%)"
            )
        lines.append(f"  {task}: " + "; ".join(parts))
    copy = raw.get("copy")
    if copy:
        lines.append(
            f"  copy: image score >= {copy['threshold']:.3f} "
            f"({copy['recall']:.0%} of {int(copy['n'])} near-duplicates)"
        )
    return lines


@app.command("calibrate")
def calibrate_command(
    index_path: Annotated[Path, typer.Option("--index", help="Index folder.")],
    sample: Annotated[
        int, typer.Option("--sample", min=4, help="Groups drawn (half stay indexed).")
    ] = 80,
    seed: Annotated[int, typer.Option("--seed", help="Which groups are drawn.")] = 0,
    run: Annotated[
        Path | None,
        typer.Option("--run", help="Run folder of the model (default: the one that built it)."),
    ] = None,
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", help="Refuse images larger than this.")
    ] = DEFAULT_MAX_PIXELS,
) -> None:
    """Fit the verdict thresholds on the indexed collection itself (written to index.json)."""
    index = ArtIndex.open(index_path)
    try:
        _calibrate_and_say(index, index.load_embedder(run), sample, seed, max_pixels)
    finally:
        index.close()


@app.command("add")
def add_command(
    index_path: Annotated[Path, typer.Option("--index", help="Index folder.")],
    data: Annotated[Path, typer.Option("--data", help="Manifest whose originals to add.")],
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", help="Refuse images larger than this.")
    ] = DEFAULT_MAX_PIXELS,
) -> None:
    """Add a manifest's originals to an index (an id already there is replaced)."""
    index = ArtIndex.open(index_path)
    try:
        originals = _originals_of(data, max_pixels)
        embedder = index.load_embedder()
        before = set(index.store.get([item.id for item in originals]))
        add_items(index, originals, embedder, max_pixels=max_pixels, console=err_console)
        err_console.print(
            f"added {len(originals) - len(before)} and replaced {len(before)} originals; "
            f"the index holds {index.count()}"
        )
    finally:
        index.close()


@app.command("remove")
def remove_command(
    index_path: Annotated[Path, typer.Option("--index", help="Index folder.")],
    ids: Annotated[str, typer.Option("--ids", help="Comma-separated ids to remove.")],
) -> None:
    """Remove originals from an index by id."""
    wanted = [part.strip() for part in ids.split(",") if part.strip()]
    if not wanted:
        raise UserError("--ids is empty: give comma-separated ids, e.g. --ids a,b")
    index = ArtIndex.open(index_path)
    try:
        removed = remove_originals(index, wanted)
        unknown = [item_id for item_id in wanted if item_id not in set(removed)]
        if not removed:
            raise UserError(f"none of these ids is in {index_path}: {', '.join(unknown)}")
        if unknown:
            err_console.print(f"[yellow]not in the index:[/] {', '.join(unknown)}")
        err_console.print(f"removed {len(removed)}; the index holds {index.count()}")
    finally:
        index.close()


@app.command("info")
def info_command(
    index_path: Annotated[Path, typer.Option("--index", help="Index folder.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Say what an index holds and which model built it."""
    index = ArtIndex.open(index_path, read_only=True)
    try:
        data = {
            **asdict(index.info),
            "count": index.count(),
            "store_detail": index.store.describe(),
        }
    finally:
        index.close()
    if json_output:
        print(json.dumps(data, indent=2))
    else:
        calibration = data.pop("calibration", None)
        for key, value in data.items():
            print(f"{key}: {value}")
        for line in calibration_lines(calibration or {}):
            print(line)


def main(argv: Sequence[str] | None = None) -> int:
    """``artsim index ...`` in-process: ``main(["build", "--run", ...])``."""
    return run_app(app, argv, prog_name="artsim index")
