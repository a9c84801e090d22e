"""Changing an index: build one from a manifest's originals, add, add one picture, remove.

Originals are embedded with the run's model (image, caption and fused vectors) and stored with a
small thumbnail. Builds happen in a hidden folder renamed into place at the end; adds commit in
batches; so an interruption never leaves a half-written index.

>>> index = build_index("runs/demo", "data/demo/manifest.csv", tmp_path / "index")
>>> index.count()  # the manifest's originals
6
>>> index.close()
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from PIL import Image

from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import load_manifest
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS, content_share, load_rgb
from artsim.errors import DataError, ModelMismatchError, UserError
from artsim.index.catalog import (
    INDEX_FILE,
    UPLOAD_DIR,
    ArtIndex,
    IndexInfo,
    mirror_search_plans,
)
from artsim.index.faiss_store import DEFAULT_IVF_THRESHOLD, FaissStore
from artsim.index.locking import index_write_lock
from artsim.index.query import CONTENT_KEY, blank_original
from artsim.index.storage import DEFAULT_INT8_FROM
from artsim.index.store import OriginalRecord, VectorStore
from artsim.model.embedder import Embedder
from artsim.progress import Reporter, or_silent
from artsim.runfolder import replacing

THUMBNAIL_SIZE = 160


def make_thumbnail(image: Image.Image, size: int = THUMBNAIL_SIZE) -> bytes:
    """A small JPEG (longest side ``size``) kept in the index for result pages."""
    thumbnail = image.convert("RGB")
    thumbnail.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    # no chroma subsampling: small flat-coloured artworks smear badly with 4:2:0
    thumbnail.save(buffer, format="JPEG", quality=88, optimize=True, subsampling=0)
    return buffer.getvalue()


def record_for_item(
    item: Item, thumbnail: bytes | None, picture: Image.Image | None = None
) -> OriginalRecord:
    """Metadata an index keeps for a manifest item; with its ``picture``, also the share of it
    that is not its dominant colour (:data:`~artsim.index.query.CONTENT_KEY`)."""
    metadata = dict(item.metadata)
    if picture is not None:
        metadata[CONTENT_KEY] = f"{content_share(picture):.4f}"
    return OriginalRecord(
        id=item.id,
        group=item.group,
        title=item.title,
        artist=item.artist,
        caption=item.text,
        lang=item.lang,
        image_path=str(item.image),
        source=item.source,
        metadata=metadata,
        thumbnail=thumbnail,
    )


def vectors_for(
    embedder: Embedder, image_vectors: np.ndarray, captions: Sequence[str], progress=None
) -> dict[str, np.ndarray]:
    """The three vectors an index keeps per original, from its image vectors and captions."""
    text = embedder.embed_texts(list(captions), progress=progress)
    has_text = np.array([bool(caption.strip()) for caption in captions], dtype=bool)
    fused = embedder.fuse(image_vectors, text, has_text)
    return {"image": image_vectors, "text": text, "fused": fused}


def add_items(
    index: ArtIndex,
    items: Sequence[Item],
    embedder: Embedder,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    reporter: Reporter | None = None,
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
    reporter = or_silent(reporter)
    embed_step = reporter.task("embedding images", len(items))
    text_step = reporter.task("embedding captions", sum(i.has_text for i in items))
    thumb_step = reporter.task("thumbnails", len(items))
    store_step = reporter.task("writing the index", len(items))
    blank: list[str] = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        image_vectors = embedder.embed_images(
            [item.image for item in batch], max_pixels=max_pixels, progress=embed_step
        )
        vectors = vectors_for(embedder, image_vectors, [i.text for i in batch], text_step)
        records = []
        for item in batch:
            picture = load_rgb(item.image, max_pixels)
            records.append(record_for_item(item, make_thumbnail(picture), picture))
            thumb_step(1)
        blank += [record.id for record in records if blank_original(record.metadata)]
        index.store.add([item.id for item in batch], vectors, records)
        store_step(len(batch))
    if blank:
        shown = ", ".join(repr(item_id) for item_id in blank[:5])
        more = f" and {len(blank) - 5} more" if len(blank) > 5 else ""
        reporter.note(
            f"{len(blank)} original(s) are almost one colour once transparency is flattened on "
            f"white ({shown}{more}): a match of their image says nothing and is graded "
            "uninformative",
            "warning",
        )
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
    still has the full picture; the record's ``image_path`` then points there. The file and the
    store's row change together: if the change fails (a full disk) the new file is removed and
    an original it was to replace keeps its own.
    """
    index.check_model(embedder)
    vectors = vectors_for(embedder, embedder.embed_pil([image]), [record.caption])
    thumbnail = make_thumbnail(image)
    record = replace(
        record, metadata={**record.metadata, CONTENT_KEY: f"{content_share(image):.4f}"}
    )
    # the kept file and the store's row change together, with no other writer in between
    with index.write_lock():
        image_path, kept = record.image_path, None
        if image_bytes is not None:
            folder = index.path / UPLOAD_DIR
            folder.mkdir(exist_ok=True)
            # the id may hold any character: name the file by a hash of it, and of the bytes,
            # so a replacement never overwrites the file the committed original points to
            digest = hashlib.sha256(image_bytes).hexdigest()[:16]
            name = f"{uuid.uuid5(uuid.NAMESPACE_URL, record.id).hex}-{digest}.{image_format}"
            kept = folder / name
            with replacing(kept) as temporary:
                temporary.write_bytes(image_bytes)
            image_path = str(kept.resolve())
        previous = index.store.get([record.id]).get(record.id)
        record = OriginalRecord(
            **{**asdict(record), "image_path": image_path, "thumbnail": thumbnail}
        )
        try:
            index.store.add([record.id], vectors, [record])
        except BaseException:
            if kept is not None and (previous is None or previous.image_path != image_path):
                kept.unlink(missing_ok=True)
            raise
        if previous is not None and previous.image_path != image_path:
            _remove_upload(index, previous.image_path)
    return record


def _remove_upload(index: ArtIndex, image_path: str) -> None:
    """Delete a file the index kept for an upload (files elsewhere are the user's)."""
    path = Path(image_path)
    if path.parent == (index.path / UPLOAD_DIR).resolve():
        path.unlink(missing_ok=True)


def remove_originals(index: ArtIndex, ids: Sequence[str]) -> list[str]:
    """Remove originals by id; returns those that were there. Uploaded files go with them."""
    with index.write_lock():  # no other writer re-adds an id between its removal and its file's
        records = index.store.get(ids)
        removed = index.store.remove(ids)
        for item_id in removed:
            if item_id in records:
                _remove_upload(index, records[item_id].image_path)
    return removed


def originals_of(
    manifest_path: str | Path, max_pixels: int, reporter: Reporter | None = None
) -> list[Item]:
    """The usable originals of a manifest; skipped rows are noted (the first ten by name)."""
    reporter = or_silent(reporter)
    manifest = load_manifest(manifest_path, max_pixels=max_pixels, check_images=True)
    for problem in manifest.errors[:10]:
        reporter.note(f"skipped: {problem.format(str(manifest.path))}", "warning")
    if len(manifest.errors) > 10:
        reporter.note(f"... and {len(manifest.errors) - 10} more skipped rows", "warning")
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
    int8_from: int = DEFAULT_INT8_FROM,
    reporter: Reporter | None = None,
    embedder: Embedder | None = None,
) -> ArtIndex:
    """Embed a manifest's originals with a run's model into a new index folder ``out``.

    The embedded (faiss) store searches a modality exactly below ``ivf_threshold`` vectors and
    holds them in one byte a dimension from ``int8_from`` on (:mod:`artsim.index.storage`).

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
    originals = originals_of(manifest_path, max_pixels, reporter)
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
    remove_abandoned(out)
    building = _hidden_sibling(out, "building")
    building.mkdir()
    vector_store: VectorStore | None = None
    try:
        if info.store == "faiss":
            vector_store = FaissStore.create(
                building, embedder.dim, ivf_threshold=ivf_threshold, int8_from=int8_from
            )
        elif info.store.startswith("milvus://"):
            from artsim.index.milvus_store import MilvusStore

            prefix = f"artsim_{uuid.uuid4().hex[:12]}"
            info = IndexInfo(**{**asdict(info), "milvus_prefix": prefix})
            vector_store = MilvusStore.create(
                info.store, prefix, embedder.dim, lock_folder=building
            )
        else:
            raise UserError(f"unknown --store {store!r}: leave it out, or give milvus://HOST:PORT")
        info.write(building)
        vector_store.on_commit = mirror_search_plans(building)
        index = ArtIndex(building, info, vector_store)
        add_items(index, originals, embedder, max_pixels=max_pixels, reporter=reporter)
        vector_store.close()
    except BaseException:
        if vector_store is not None:
            vector_store.close()
            if info.milvus_prefix:
                _drop_milvus(info, reporter)
        shutil.rmtree(building, ignore_errors=True)
        raise
    _move_into_place(building, out, reporter)
    return ArtIndex.open(out)


def _hidden_sibling(out: Path, kind: str) -> Path:
    """``.NAME.KIND-PID-RANDOM`` beside ``out``: a build's work folder (``building``) or the
    index it replaces, on its way out (``old``). The pid says whose it is."""
    return out.parent / f".{out.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def remove_abandoned(out: Path) -> list[Path]:
    """Remove the hidden work folders of builds of ``out`` whose process is gone (a build
    killed with ``kill -9`` or a full disk leaves its folder behind); returns those removed.
    A folder of a process that still runs is left alone."""
    removed = []
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(building|old)-(\d+)-[0-9a-f]{{8}}")
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return removed
    for path in siblings:
        found = pattern.fullmatch(path.name)
        if found is None or not path.is_dir() or _process_alive(int(found.group(2))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _drop_milvus(info: IndexInfo, reporter: Reporter | None) -> None:
    from artsim.index.milvus_store import MilvusStore

    try:
        store = MilvusStore(info.store, info.milvus_prefix)
        store.drop()
        store.close()
    except Exception as error:  # cleanup must not hide the original problem
        or_silent(reporter).note(
            f"could not drop Milvus collections {info.milvus_prefix}_*: {error}", "warning"
        )


def _move_into_place(building: Path, out: Path, reporter: Reporter | None) -> None:
    """Swap the finished index in for whatever was at ``out`` (two renames).

    An index being replaced is swapped under its write lock: no writer is half-way through a
    change of it, and writers waiting for the lock notice the swap and refuse to write into
    the old folder.
    """
    old = None
    if out.exists():
        old_info = IndexInfo.read(out) if (out / INDEX_FILE).is_file() else None
        old = _hidden_sibling(out, "old")
        with index_write_lock(out) if old_info is not None else nullcontext():
            os.replace(out, old)
            os.replace(building, out)
    else:
        os.replace(building, out)
    if old is not None:
        if old_info is not None and old_info.milvus_prefix:
            _drop_milvus(old_info, reporter)
        shutil.rmtree(old, ignore_errors=True)
