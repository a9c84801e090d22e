"""The embedded store: one faiss file per modality plus SQLite metadata, inside the index folder.

Layout of the folder::

    meta.sqlite                 originals (id, metadata, thumbnail) and the store's state (WAL)
    write.lock                  held by the one process writing (see artsim.index.locking)
    vectors/000003-image.faiss  one file per modality for the current generation

Every change takes the folder's write lock, writes the next *generation* of faiss files under
new names, then commits, in one SQLite transaction, the metadata rows together with the new
generation number and the search plan. Only then, still under the lock, are the files of older
generations (and any left by a writer that died) removed. So:

* a change killed at any point (``kill -9`` included) leaves the last committed generation and
  its rows as they were; readers open that generation whatever other files lie beside it;
* SQLite runs in WAL mode, so a reader (even one opened read-only) is never blocked by a
  writer's journal, live or left by a killed writer, and a running ``artsim serve`` keeps
  answering; it notices a new generation and reloads it;
* two writers never interleave: the second waits for the lock (``ARTSIM_INDEX_LOCK_TIMEOUT``
  seconds, 60 by default), then fails with one line naming the holder.

Which faiss index each modality gets (exact ``IndexFlatIP``, ``IndexIVFFlat`` with a measured
``nprobe``, or a PQ fast-scan pass with exact re-ranking of a measured number of candidates) is
decided by :mod:`artsim.index.vector_index` and revisited as the collection grows; the plan
(kind, parameters, measured recall@10) is committed with the generation and reported by
:meth:`FaissStore.search_plans`. Every kind keeps every dimension of the vectors (``reconstruct`` works),
so scores of other modalities are computed for a search's candidates; from ``int8_from``
vectors a modality holds them in one byte a dimension (:mod:`artsim.index.storage`).

The SQLite side is :mod:`artsim.index.faiss_meta`, the files of a generation
:mod:`artsim.index.faiss_files`; this module is the store that ties them into transactions.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import faiss
import numpy as np

from artsim.errors import StorageError, UserError
from artsim.index import faiss_files, faiss_meta
from artsim.index.faiss_files import VECTOR_DIR
from artsim.index.faiss_meta import META_FILE
from artsim.index.faults import fault_point
from artsim.index.locking import index_write_lock
from artsim.index.storage import DEFAULT_INT8_FROM
from artsim.index.store import (
    MODALITIES,
    Hits,
    OriginalRecord,
    VectorStore,
    text_rows,
)
from artsim.index.vector_index import (
    DEFAULT_EXACT_LIMIT,
    apply_plan,
    create_flat_index,
    describe_plan,
    exact_plan,
    plan_of,
    remove_keys,
    replan,
)
from artsim.index.vector_index import search as search_index

DEFAULT_IVF_THRESHOLD = DEFAULT_EXACT_LIMIT
T = TypeVar("T")
__all__ = ["DEFAULT_IVF_THRESHOLD", "META_FILE", "VECTOR_DIR", "FaissStore"]


def _disk_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has (almost) no room left."""
    try:
        return shutil.disk_usage(folder).free < 256 * 1024
    except OSError:
        return False


class FaissStore(VectorStore):
    """faiss + SQLite in one folder. Create with :meth:`create`, open with the constructor.

    >>> store = FaissStore.create(tmp_path / "store", dim=16)
    >>> v = np.eye(16, dtype=np.float32)[:1]  # one unit vector per modality
    >>> store.add(["a"], {"image": v, "text": v, "fused": v}, [OriginalRecord("a", "g")])
    >>> store.search("image", v, k=1)[0].ids
    ['a']
    >>> store.close()
    """

    def __init__(self, folder: str | Path, *, read_only: bool = False):
        self.folder = Path(folder)
        self.read_only = read_only
        meta = self.folder / META_FILE
        if not meta.is_file():
            raise UserError(f"{self.folder}: not an artsim index store (no {META_FILE})")
        try:
            self._db = faiss_meta.connect(meta, read_only)
            self._meta_inode = os.stat(meta).st_ino
            self._db_lock = threading.Lock()
            self._write_lock = threading.Lock()
            state = self._state()
        except sqlite3.DatabaseError as error:
            if _disk_full(self.folder):
                # SQLite needs room beside meta.sqlite for its write-ahead log and shared
                # memory file: "disk I/O error" on a full disk
                raise StorageError(
                    f"{meta}: cannot open the index metadata: no space left on the device "
                    "(SQLite needs a little room beside it); free some space, then try again",
                    "the server could not open its index: no space left on the device",
                    full=True,
                ) from None
            raise UserError(
                f"{meta}: cannot read the index metadata ({error}); if a writer was killed, "
                "open it once for writing (artsim index add/remove) to recover it"
            ) from None
        self.dim = int(state["dim"])
        self.ivf_threshold = int(state.get("ivf_threshold", DEFAULT_IVF_THRESHOLD))
        self.int8_from = int(state.get("int8_from", DEFAULT_INT8_FROM))
        self.generation = -1
        self._indexes: dict[str, faiss.Index] = {}
        self._plans: dict[str, dict] = {}
        self._refresh()

    # ----------------------------------------------------------------- creation and state

    @classmethod
    def create(
        cls,
        folder: str | Path,
        dim: int,
        ivf_threshold: int = DEFAULT_IVF_THRESHOLD,
        int8_from: int = DEFAULT_INT8_FROM,
    ) -> FaissStore:
        """Make an empty store in ``folder`` (created; must not hold a store already).

        ``ivf_threshold``: a modality with fewer vectors is searched exactly; above it an IVF
        index is tried and kept only if its measured recall@10 reaches the target.
        ``int8_from``: a modality with this many vectors holds them in one byte a dimension
        (:mod:`artsim.index.storage`).
        """
        folder = Path(folder)
        if (folder / META_FILE).exists():
            raise UserError(f"{folder}: already holds an index store")
        (folder / VECTOR_DIR).mkdir(parents=True, exist_ok=True)
        for modality in MODALITIES:
            faiss_files.fsync_write(
                create_flat_index(dim), faiss_files.vector_path(folder, 0, modality)
            )
        faiss_meta.create_meta(
            folder / META_FILE,
            {
                "dim": str(dim),
                "generation": "0",
                "ivf_threshold": str(ivf_threshold),
                "int8_from": str(int8_from),
                "search_plan": json.dumps({m: exact_plan(0) for m in MODALITIES}),
            },
        )
        return cls(folder)

    def _state(self) -> dict[str, str]:
        with self._db_lock:
            return faiss_meta.read_state(self._db)

    def _refresh(self) -> None:
        """Load the committed generation if it is not the one in memory (another writer ran).

        A file that cannot be read because a writer in another process committed again (and
        removed it) is read again from the newer generation; a file of the generation still
        committed that is missing, empty or corrupt is one line saying how to recover.
        """
        for attempt in range(5):
            state = self._state()
            try:
                self._load_generation(int(state["generation"]), state)
                return
            except faiss_files.UnreadableVectorFile as error:
                if self._state().get("generation") != state["generation"] and attempt < 4:
                    continue  # a newer commit removed these files: read that one
                raise UserError(
                    f"{error}; the index cannot be used as it is: rebuild it with `artsim "
                    f"index build --run RUN --data MANIFEST --out {self.folder} --force`",
                    status_code=500,
                ) from None

    def _load_generation(self, generation: int, state: Mapping[str, str]) -> None:
        if generation == self.generation:
            return
        plans = json.loads(state.get("search_plan", "{}"))
        indexes = faiss_files.read_generation(self.folder, generation, MODALITIES)
        for modality, index in indexes.items():
            if modality in plans:
                apply_plan(index, plans[modality])
            else:  # an index written before plans were kept: say what it is
                plans[modality] = plan_of(index)
        self._indexes, self._plans, self.generation = indexes, plans, generation

    def _begin_write(self) -> None:
        """Start the write transaction and make sure we change the newest committed state.

        The caller holds the folder's write lock, so nobody else can commit until we finish.
        """
        if os.stat(self.folder / META_FILE).st_ino != self._meta_inode:
            raise UserError(
                f"{self.folder}: the index was replaced (build --force) while open here; "
                "open it again to change it"
            )
        self._db.execute("BEGIN IMMEDIATE")
        try:
            state = faiss_meta.read_state(self._db)
            self._load_generation(int(state["generation"]), state)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def search_plans(self) -> dict[str, dict]:
        """The committed search plan of each modality (kind, nprobe, measured recall@10)."""
        self._refresh()
        return {modality: dict(plan) for modality, plan in self._plans.items()}

    @property
    def kind(self) -> str:
        """``flat`` (exact), ``ivf`` or ``pq`` (approximate) for the fused vectors."""
        self._refresh()
        return str(self._plans.get("fused", {}).get("kind", "flat"))

    def describe(self) -> str:
        search = describe_plan(self.search_plans().get("fused"))
        return f"faiss + SQLite at {self.folder} ({self.count()} originals; fused: {search})"

    # ----------------------------------------------------------------- reads

    def count(self) -> int:
        with self._db_lock:
            return faiss_meta.count(self._db)

    def ids(self) -> list[str]:
        with self._db_lock:
            return faiss_meta.all_ids(self._db)

    def get(self, ids: Sequence[str], with_thumbnails: bool = False) -> dict[str, OriginalRecord]:
        with self._db_lock:
            return faiss_meta.get_records(self._db, ids, with_thumbnails)

    def _keys_for(self, ids: Sequence[str], modality: str) -> dict[str, int]:
        text_only = " AND in_text = 1" if modality == "text" else ""
        with self._db_lock:
            return dict(faiss_meta.select_id_keys(self._db, list(ids), text_only))

    def _ids_for(self, keys: Sequence[int]) -> dict[int, str]:
        with self._db_lock:
            return faiss_meta.ids_for_keys(self._db, keys)

    def search(
        self,
        modality: str,
        queries: np.ndarray,
        k: int,
        restrict_to: Sequence[str] | None = None,
    ) -> list[Hits]:
        self._check_modality(modality)
        self._refresh()
        index, plan = self._indexes[modality], self._plans.get(modality)
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if restrict_to is not None:
            return self._search_among(index, modality, queries, k, restrict_to)
        if index.ntotal == 0 or k <= 0:
            return [Hits([], []) for _ in queries]
        scores, keys = search_index(index, queries, min(k, index.ntotal), plan)
        names = self._ids_for(np.unique(keys[keys >= 0]))
        results = []
        for row_scores, row_keys in zip(scores, keys, strict=True):
            # a key without a row was removed by a writer that committed after our refresh
            pairs = [
                (names[key], float(score))
                for score, key in zip(row_scores, row_keys, strict=True)
                if key >= 0 and key in names
            ]
            results.append(Hits([p[0] for p in pairs], [p[1] for p in pairs]))
        return results

    def _search_among(
        self,
        index: faiss.Index,
        modality: str,
        queries: np.ndarray,
        k: int,
        restrict_to: Sequence[str],
    ) -> list[Hits]:
        """Exact scores against a few given ids, from their stored vectors."""
        keys = self._keys_for(restrict_to, modality)
        if not keys:
            return [Hits([], []) for _ in queries]
        names = list(keys)
        vectors = index.reconstruct_batch(np.asarray([keys[n] for n in names], dtype=np.int64))
        scores = queries @ vectors.T
        results = []
        for row in scores:
            order = np.argsort(-row, kind="stable")[:k]
            results.append(Hits([names[i] for i in order], [float(row[i]) for i in order]))
        return results

    # ----------------------------------------------------------------- writes

    def add(
        self,
        ids: Sequence[str],
        vectors: Mapping[str, np.ndarray],
        records: Sequence[OriginalRecord],
    ) -> None:
        ids, vectors = self._checked_batch(ids, vectors, records)
        if not ids:
            return
        in_text = text_rows(vectors["text"])

        def change() -> tuple[dict[str, faiss.Index], None]:
            db = self._db
            old_keys = [key for _, key in faiss_meta.select_id_keys(db, ids)]
            old_text = [key for _, key in faiss_meta.select_id_keys(db, ids, " AND in_text = 1")]
            keys = faiss_meta.next_keys(db, len(ids))
            faiss_meta.delete_rows(db, ids)
            faiss_meta.insert_records(db, keys, records, in_text)
            fault_point("add:rows-written")
            indexes = {}
            for modality in MODALITIES:
                rows = in_text if modality == "text" else slice(None)
                gone = old_text if modality == "text" else old_keys
                if not gone and not len(keys[rows]):
                    indexes[modality] = self._indexes[modality]  # unchanged: not rewritten
                    continue
                index = faiss.clone_index(self._indexes[modality])
                if gone:
                    remove_keys(index, np.asarray(gone, dtype=np.int64))
                index.add_with_ids(vectors[modality][rows], keys[rows])
                indexes[modality] = index
            return indexes, None

        self._write(change)

    def remove(self, ids: Sequence[str]) -> list[str]:
        self._check_writable()
        ids = list(dict.fromkeys(ids))

        def change() -> tuple[dict[str, faiss.Index] | None, list[str]]:
            found = dict(faiss_meta.select_id_keys(self._db, ids))
            if not found:
                return None, []
            text = [key for _, key in faiss_meta.select_id_keys(self._db, ids, " AND in_text = 1")]
            faiss_meta.delete_rows(self._db, list(found))
            fault_point("remove:rows-deleted")
            indexes = {}
            for modality in MODALITIES:
                keys = text if modality == "text" else list(found.values())
                index = self._indexes[modality]
                if keys:  # an original without a caption has no text vector
                    index = faiss.clone_index(index)
                    remove_keys(index, np.asarray(keys, dtype=np.int64))
                indexes[modality] = index
            return indexes, [i for i in ids if i in found]

        return self._write(change)

    def _write(self, change: Callable[[], tuple[dict[str, faiss.Index] | None, T]]) -> T:
        """One committed change: under the folder's write lock, in one SQLite transaction,
        ``change()`` updates the rows and returns the new indexes (``None``: nothing to
        commit) and a result; then the plans are revisited, the generation committed and the
        files of older generations removed."""
        with index_write_lock(self.folder), self._write_lock:
            with self._db_lock:
                self._begin_write()
                try:
                    indexes, result = change()
                    if indexes is None:
                        self._db.execute("ROLLBACK")
                        return result
                    plans = {}
                    for modality in MODALITIES:
                        indexes[modality], plans[modality] = replan(
                            indexes[modality],
                            self._plans.get(modality),
                            self.ivf_threshold,
                            int8_from=self.int8_from,
                        )
                    self._commit(indexes, plans)
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            fault_point("commit:after-sqlite-commit")
            faiss_files.remove_orphans(self.folder, self.generation, MODALITIES)
            self._notify_commit()
        return result

    def _commit(self, indexes: dict[str, faiss.Index], plans: dict[str, dict]) -> None:
        """Write the next generation's files, then commit it (caller holds the transaction).
        A modality whose index and plan did not change is linked, not written again."""
        generation = self.generation + 1
        unchanged = {
            m
            for m, index in indexes.items()
            if index is self._indexes.get(m) and plans[m] == self._plans.get(m)
        }
        written = faiss_files.write_generation(self.folder, generation, indexes, unchanged)
        try:
            faiss_meta.write_state(self._db, generation, plans)
            fault_point("commit:before-sqlite-commit")
            self._db.execute("COMMIT")
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        self._indexes, self._plans, self.generation = indexes, plans, generation

    def set_nprobe(self, nprobe: int) -> None:
        """Probe ``nprobe`` lists per IVF search in this process (recall against speed)."""
        for index in self._indexes.values():
            if isinstance(index, faiss.IndexIVF):
                index.nprobe = nprobe

    def close(self) -> None:
        with self._db_lock:
            self._db.close()
