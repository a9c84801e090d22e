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

Which faiss index each modality gets (exact ``IndexFlatIP``, or ``IndexIVFFlat`` with a measured
``nprobe``) is decided by :mod:`artsim.index.vector_index` and revisited as the collection grows;
the plan (kind, nprobe, measured recall@10) is committed with the generation and reported by
:meth:`FaissStore.search_plans`. A hash-table direct map keeps ``reconstruct`` working on IVF,
so scores of other modalities are computed exactly for a search's candidates.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import faiss
import numpy as np

from artsim.errors import UserError
from artsim.index.faults import fault_point
from artsim.index.locking import index_write_lock
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
    replan,
)

DEFAULT_IVF_THRESHOLD = DEFAULT_EXACT_LIMIT
T = TypeVar("T")
META_FILE = "meta.sqlite"
VECTOR_DIR = "vectors"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS originals (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    grp TEXT NOT NULL,
    title TEXT NOT NULL,
    artist TEXT NOT NULL,
    caption TEXT NOT NULL,
    lang TEXT NOT NULL,
    image_path TEXT NOT NULL,
    source TEXT NOT NULL,
    metadata TEXT NOT NULL,
    in_text INTEGER NOT NULL,
    thumbnail BLOB
);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_RECORD_COLUMNS = "id, grp, title, artist, caption, lang, image_path, source, metadata"


def _fsync_write(index: faiss.Index, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    faiss.write_index(index, str(temporary))
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    fault_point("commit:before-rename")
    os.replace(temporary, path)


class FaissStore(VectorStore):
    """faiss + SQLite in one folder. Create with :meth:`create`, open with the constructor.

    >>> store = FaissStore.create(tmp_path / "store", dim=16)  # doctest: +SKIP
    >>> store.add(["a"], {"image": v, "text": t, "fused": f}, [OriginalRecord("a", "g")])  # doctest: +SKIP
    >>> store.search("image", v, k=1)[0].ids  # doctest: +SKIP
    ['a']
    """

    def __init__(self, folder: str | Path, *, read_only: bool = False):
        self.folder = Path(folder)
        self.read_only = read_only
        meta = self.folder / META_FILE
        if not meta.is_file():
            raise UserError(f"{self.folder}: not an artsim index store (no {META_FILE})")
        try:
            if read_only:
                # mode=ro: a read-only service cannot change the file even by accident.
                uri = f"{meta.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                self._db = sqlite3.connect(meta, check_same_thread=False, timeout=30)
                # indexes made before WAL mode move to it at their first writable open
                if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._db.execute("PRAGMA journal_mode=WAL")
            self._db.isolation_level = None  # explicit BEGIN/COMMIT: we decide what is atomic
            self._meta_inode = os.stat(meta).st_ino
            self._db_lock = threading.Lock()
            self._write_lock = threading.Lock()
            state = self._state()
        except sqlite3.DatabaseError as error:
            raise UserError(
                f"{meta}: cannot read the index metadata ({error}); if a writer was killed, "
                "open it once for writing (artsim index add/remove) to recover it"
            ) from None
        self.dim = int(state["dim"])
        self.ivf_threshold = int(state.get("ivf_threshold", DEFAULT_IVF_THRESHOLD))
        self.generation = -1
        self._indexes: dict[str, faiss.Index] = {}
        self._plans: dict[str, dict] = {}
        self._refresh()

    # ----------------------------------------------------------------- creation and state

    @classmethod
    def create(
        cls, folder: str | Path, dim: int, ivf_threshold: int = DEFAULT_IVF_THRESHOLD
    ) -> FaissStore:
        """Make an empty store in ``folder`` (created; must not hold a store already).

        ``ivf_threshold``: a modality with fewer vectors is searched exactly; above it an IVF
        index is tried and kept only if its measured recall@10 reaches the target.
        """
        folder = Path(folder)
        if (folder / META_FILE).exists():
            raise UserError(f"{folder}: already holds an index store")
        (folder / VECTOR_DIR).mkdir(parents=True, exist_ok=True)
        for modality in MODALITIES:
            _fsync_write(create_flat_index(dim), folder / VECTOR_DIR / f"000000-{modality}.faiss")
        db = sqlite3.connect(folder / META_FILE)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                db.executescript(_SCHEMA)
                db.executemany(
                    "INSERT INTO state (name, value) VALUES (?, ?)",
                    [
                        ("dim", str(dim)),
                        ("generation", "0"),
                        ("ivf_threshold", str(ivf_threshold)),
                        ("search_plan", json.dumps({m: exact_plan(0) for m in MODALITIES})),
                    ],
                )
        finally:
            db.close()
        return cls(folder)

    def _state(self) -> dict[str, str]:
        with self._db_lock:
            return dict(self._db.execute("SELECT name, value FROM state").fetchall())

    def _vector_path(self, generation: int, modality: str) -> Path:
        return self.folder / VECTOR_DIR / f"{generation:06d}-{modality}.faiss"

    def _refresh(self) -> None:
        """Load the committed generation if it is not the one in memory (another writer ran)."""
        for attempt in range(5):
            state = self._state()
            try:
                self._load_generation(int(state["generation"]), state)
                return
            except RuntimeError:
                # a writer in another process committed again and removed these files
                if attempt == 4:
                    raise

    def _load_generation(self, generation: int, state: Mapping[str, str]) -> None:
        if generation == self.generation:
            return
        plans = json.loads(state.get("search_plan", "{}"))
        indexes = {
            modality: faiss.read_index(str(self._vector_path(generation, modality)))
            for modality in MODALITIES
        }
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
            state = dict(self._db.execute("SELECT name, value FROM state").fetchall())
            self._load_generation(int(state["generation"]), state)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _remove_orphans(self) -> None:
        """Delete every vector file but the current generation's: older generations and what a
        killed writer left. Only called under the write lock, right after a commit, so no other
        writer can be writing a file here."""
        keep = {self._vector_path(self.generation, m).name for m in MODALITIES}
        for path in sorted((self.folder / VECTOR_DIR).iterdir()):
            if path.name not in keep:
                path.unlink(missing_ok=True)
                fault_point("commit:removing-old-files")

    def search_plans(self) -> dict[str, dict]:
        """The committed search plan of each modality (kind, nprobe, measured recall@10)."""
        self._refresh()
        return {modality: dict(plan) for modality, plan in self._plans.items()}

    @property
    def kind(self) -> str:
        """``flat`` (exact) or ``ivf`` (approximate) for the fused vectors."""
        self._refresh()
        return "ivf" if isinstance(self._indexes["fused"], faiss.IndexIVF) else "flat"

    def describe(self) -> str:
        search = describe_plan(self.search_plans().get("fused"))
        return f"faiss + SQLite at {self.folder} ({self.count()} originals; fused: {search})"

    # ----------------------------------------------------------------- reads

    def count(self) -> int:
        with self._db_lock:
            return int(self._db.execute("SELECT COUNT(*) FROM originals").fetchone()[0])

    def ids(self) -> list[str]:
        with self._db_lock:
            return [row[0] for row in self._db.execute("SELECT id FROM originals ORDER BY key")]

    def get(self, ids: Sequence[str], with_thumbnails: bool = False) -> dict[str, OriginalRecord]:
        columns = _RECORD_COLUMNS + (", thumbnail" if with_thumbnails else "")
        found: dict[str, OriginalRecord] = {}
        ids = list(ids)
        with self._db_lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT {columns} FROM originals WHERE id IN ({marks})", chunk
                ).fetchall()
                for row in rows:
                    found[row[0]] = OriginalRecord(
                        id=row[0],
                        group=row[1],
                        title=row[2],
                        artist=row[3],
                        caption=row[4],
                        lang=row[5],
                        image_path=row[6],
                        source=row[7],
                        metadata=json.loads(row[8]),
                        thumbnail=row[9] if with_thumbnails else None,
                    )
        return found

    def _keys_for(self, ids: Sequence[str], modality: str) -> dict[str, int]:
        text_only = " AND in_text = 1" if modality == "text" else ""
        with self._db_lock:
            return dict(self._select_id_keys(list(ids), text_only))

    def _ids_for(self, keys: Sequence[int]) -> dict[int, str]:
        keys = [int(key) for key in keys]
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        with self._db_lock:
            rows = self._db.execute(
                f"SELECT key, id FROM originals WHERE key IN ({marks})", keys
            ).fetchall()
        return dict(rows)

    def search(
        self,
        modality: str,
        queries: np.ndarray,
        k: int,
        restrict_to: Sequence[str] | None = None,
    ) -> list[Hits]:
        self._check_modality(modality)
        self._refresh()
        index = self._indexes[modality]
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if restrict_to is not None:
            return self._search_among(index, modality, queries, k, restrict_to)
        if index.ntotal == 0 or k <= 0:
            return [Hits([], []) for _ in queries]
        scores, keys = index.search(queries, min(k, index.ntotal))
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
            old_keys = self._select_keys(ids)
            first_key = 1 + int(
                self._db.execute(
                    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'originals'), 0)"
                ).fetchone()[0]
            )
            keys = np.arange(first_key, first_key + len(ids), dtype=np.int64)
            self._delete_rows(ids)
            self._db.executemany(
                "INSERT INTO originals (key, id, grp, title, artist, caption, lang, "
                "image_path, source, metadata, in_text, thumbnail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        int(key),
                        record.id,
                        record.group,
                        record.title,
                        record.artist,
                        record.caption,
                        record.lang,
                        record.image_path,
                        record.source,
                        json.dumps(dict(record.metadata), ensure_ascii=False),
                        int(flag),
                        record.thumbnail,
                    )
                    for key, record, flag in zip(keys, records, in_text, strict=True)
                ],
            )
            fault_point("add:rows-written")
            indexes = {}
            for modality in MODALITIES:
                index = faiss.clone_index(self._indexes[modality])
                if old_keys:
                    index.remove_ids(np.asarray(old_keys, dtype=np.int64))
                rows = in_text if modality == "text" else slice(None)
                index.add_with_ids(vectors[modality][rows], keys[rows])
                indexes[modality] = index
            return indexes, None

        self._write(change)

    def remove(self, ids: Sequence[str]) -> list[str]:
        self._check_writable()
        ids = list(dict.fromkeys(ids))

        def change() -> tuple[dict[str, faiss.Index] | None, list[str]]:
            found = dict(self._select_id_keys(ids))
            if not found:
                return None, []
            self._delete_rows(list(found))
            fault_point("remove:rows-deleted")
            indexes = {}
            for modality in MODALITIES:
                index = faiss.clone_index(self._indexes[modality])
                index.remove_ids(np.asarray(list(found.values()), dtype=np.int64))
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
                            indexes[modality], self._plans.get(modality), self.ivf_threshold
                        )
                    self._commit(indexes, plans)
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            fault_point("commit:after-sqlite-commit")
            self._remove_orphans()
            self._notify_commit()
        return result

    def _select_id_keys(self, ids: Sequence[str], condition: str = "") -> list[tuple[str, int]]:
        """(id, faiss key) of the given ids, in chunks under SQLite's variable limit; the caller
        holds the lock. ``condition`` is a fixed SQL fragment (``" AND in_text = 1"``)."""
        pairs: list[tuple[str, int]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            pairs.extend(
                self._db.execute(
                    f"SELECT id, key FROM originals WHERE id IN ({marks}){condition}", chunk
                ).fetchall()
            )
        return pairs

    def _select_keys(self, ids: Sequence[str]) -> list[int]:
        return [key for _, key in self._select_id_keys(ids)]

    def _delete_rows(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self._db.execute(f"DELETE FROM originals WHERE id IN ({marks})", chunk)

    def _commit(self, indexes: dict[str, faiss.Index], plans: dict[str, dict]) -> None:
        """Write the next generation's files, then commit it (caller holds the transaction)."""
        generation = self.generation + 1
        written = []
        try:
            for modality, index in indexes.items():
                path = self._vector_path(generation, modality)
                _fsync_write(index, path)
                written.append(path)
                fault_point("commit:vector-file")
            directory = os.open(self.folder / VECTOR_DIR, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
            self._db.execute(
                "UPDATE state SET value = ? WHERE name = 'generation'", (str(generation),)
            )
            self._db.execute(
                "INSERT OR REPLACE INTO state (name, value) VALUES ('search_plan', ?)",
                (json.dumps(plans),),
            )
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
