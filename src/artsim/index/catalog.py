"""What an index is: a folder with ``index.json`` (which model built it, where its vectors live)
and a :class:`~artsim.index.store.VectorStore` (faiss + SQLite in the folder, or Milvus).

Queries embedded by another model are refused (:class:`~artsim.errors.ModelMismatchError`): their
vectors live in another space.

``index.json`` also mirrors, under ``search``, how each modality is searched (exact, or IVF with
its nprobe and measured recall@10): rewritten after every committed change, under the index's
write lock. The store's own record (SQLite for faiss) is the authority; the mirror is for
people and tools reading the folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from artsim.errors import ModelMismatchError, UserError
from artsim.index.faiss_store import FaissStore
from artsim.index.locking import index_write_lock
from artsim.index.store import VectorStore
from artsim.model.embedder import Embedder

INDEX_FILE = "index.json"
FORMAT_VERSION = 1
UPLOAD_DIR = "uploads"


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
    search: dict = field(default_factory=dict)  # per modality: kind, nprobe, recall_at_10...

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
        """Replace ``index.json`` atomically, keeping keys this version does not know."""
        path = folder / INDEX_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except ValueError:
            data = {}
        data.update(asdict(self))
        temporary = folder / f".{INDEX_FILE}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)


def mirror_search_plans(folder: Path) -> Callable[[VectorStore], None]:
    """A store's ``on_commit``: copy its search plans into ``index.json`` (under the lock)."""

    def write(store: VectorStore) -> None:
        try:
            info = IndexInfo.read(folder)
            replace(info, search=store.search_plans()).write(folder)
        except (OSError, UserError):
            pass  # the mirror only: the store holds the plans; the next commit rewrites it

    return write


def open_store(folder: Path, info: IndexInfo, read_only: bool = False) -> VectorStore:
    """The vector store an index folder describes."""
    store: VectorStore
    if info.store == "faiss":
        store = FaissStore(folder, read_only=read_only)
    elif info.store.startswith("milvus://"):
        from artsim.index.milvus_store import MilvusStore

        store = MilvusStore(
            info.store,
            info.milvus_prefix,
            read_only=read_only,
            lock_folder=folder,
            plans=info.search,
            plans_loader=lambda: IndexInfo.read(folder).search,
        )
        if store.dim == 0:
            raise UserError(
                f"{folder}: its Milvus collections {info.milvus_prefix}_* are gone from {info.store}"
            )
    else:
        raise UserError(f"{folder}: unknown store {info.store!r} in {INDEX_FILE}")
    if not read_only:
        store.on_commit = mirror_search_plans(folder)
    return store


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

    def write_lock(self):
        """The index's write lock (re-entrant in this thread): hold it around a change made of
        several steps, e.g. a store change and the uploaded files that go with it."""
        return index_write_lock(self.path)

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
