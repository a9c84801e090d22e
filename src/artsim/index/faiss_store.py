"""The embedded store: one faiss file per modality plus SQLite metadata, inside the index folder.

Layout of the folder::

    meta.sqlite                 originals (id, metadata, thumbnail) and the store's state
    vectors/000003-image.faiss  one file per modality for the current generation

Every change writes the next *generation* of faiss files under new names, then commits, in one
SQLite transaction, the metadata rows together with the new generation number. A change that is
interrupted before that commit leaves the previous generation (and its rows) as they were; the
files it had written are orphans, removed by the next change. Readers (for instance a running
``artsim serve``) notice a new generation and reload it.

Small collections use exact search (``IndexFlatIP`` behind ``IndexIDMap2``); from
``ivf_threshold`` originals on, the store switches to ``IndexIVFFlat`` (inner product, trained on
a sample), which carries the ids itself. A hash-table direct map keeps ``reconstruct`` working on
both, so scores of other modalities are computed exactly for a search's candidates.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import faiss
import numpy as np

from artsim.errors import UserError
from artsim.index.store import (
    MODALITIES,
    Hits,
    OriginalRecord,
    VectorStore,
    text_rows,
)

DEFAULT_IVF_THRESHOLD = 50_000
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


def ivf_parameters(n: int) -> tuple[int, int]:
    """(nlist, nprobe) for ``n`` vectors: about sqrt(n) lists, a quarter of them probed.

    Few lists keep k-means training short on small machines. Probing a quarter reads about 25%
    of the vectors per query: still 4-20x faster than exact search at 100k-1M, and on random
    (unclustered, worst-case) vectors it keeps recall@10 near 0.5 where 1/16 gave 0.2-0.25
    (see BENCHMARKS.md); clustered real embeddings do better. ``set_nprobe`` trades it off.
    """
    nlist = int(min(max(round(math.sqrt(max(n, 1))), 16), 16_384))
    return nlist, max(1, nlist // 4)


def create_flat_index(dim: int) -> faiss.Index:
    """Exact inner-product search with arbitrary int64 ids."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def create_ivf_index(training: np.ndarray, nlist: int, nprobe: int, seed: int = 0) -> faiss.Index:
    """An empty ``IndexIVFFlat`` (inner product) whose lists are trained on ``training``.

    IVF stores the given ids in its inverted lists, so it needs no ``IndexIDMap`` (wrapping one
    around it would break ``remove_ids``, which assumes a compacting inner index). A hash-table
    direct map makes ``reconstruct(id)`` work.
    """
    dim = training.shape[1]
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()  # the IVF index frees its quantizer
    # 64 points per list is plenty for k-means and keeps training to seconds at a million.
    sample_size = min(len(training), 64 * nlist)
    if sample_size < len(training):
        rng = np.random.default_rng(seed)
        training = training[np.sort(rng.choice(len(training), sample_size, replace=False))]
    index.cp.niter = 12
    index.cp.seed = seed
    index.train(np.ascontiguousarray(training, dtype=np.float32))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.nprobe = nprobe
    return index


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """Every (key, vector) of a flat or IVF index, for rebuilding it as another kind."""
    if isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        keys = faiss.vector_to_array(index.id_map).astype(np.int64)
        vectors = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else None
    else:
        ivf = faiss.extract_index_ivf(index)
        invlists = ivf.invlists
        key_parts, vector_parts = [], []
        for list_no in range(ivf.nlist):
            size = invlists.list_size(list_no)
            if not size:
                continue
            key_parts.append(
                faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy().astype(np.int64)
            )
            codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * ivf.code_size)
            vector_parts.append(np.frombuffer(codes.copy(), dtype=np.float32).reshape(size, -1))
        keys = np.concatenate(key_parts) if key_parts else np.zeros(0, np.int64)
        vectors = np.concatenate(vector_parts) if vector_parts else None
    if vectors is None:
        vectors = np.zeros((0, index.d), dtype=np.float32)
    return keys, np.asarray(vectors, dtype=np.float32)


def _fsync_write(index: faiss.Index, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    faiss.write_index(index, str(temporary))
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
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
        if read_only:
            # mode=ro: a read-only service cannot change the file even by accident.
            uri = f"{meta.resolve().as_uri()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self._db = sqlite3.connect(meta, check_same_thread=False)
        self._db.isolation_level = None  # explicit BEGIN/COMMIT: we decide what is atomic
        self._db_lock = threading.Lock()
        self._write_lock = threading.Lock()
        state = self._state()
        self.dim = int(state["dim"])
        self.ivf_threshold = int(state.get("ivf_threshold", DEFAULT_IVF_THRESHOLD))
        self.generation = -1
        self._indexes: dict[str, faiss.Index] = {}
        self._refresh()
        if not read_only:
            self._remove_orphans()

    # ----------------------------------------------------------------- creation and state

    @classmethod
    def create(
        cls, folder: str | Path, dim: int, ivf_threshold: int = DEFAULT_IVF_THRESHOLD
    ) -> FaissStore:
        """Make an empty store in ``folder`` (created; must not hold a store already)."""
        folder = Path(folder)
        if (folder / META_FILE).exists():
            raise UserError(f"{folder}: already holds an index store")
        (folder / VECTOR_DIR).mkdir(parents=True, exist_ok=True)
        for modality in MODALITIES:
            _fsync_write(create_flat_index(dim), folder / VECTOR_DIR / f"000000-{modality}.faiss")
        db = sqlite3.connect(folder / META_FILE)
        try:
            with db:
                db.executescript(_SCHEMA)
                db.executemany(
                    "INSERT INTO state (name, value) VALUES (?, ?)",
                    [
                        ("dim", str(dim)),
                        ("generation", "0"),
                        ("ivf_threshold", str(ivf_threshold)),
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
        for attempt in range(3):
            state = self._state()
            try:
                self._load_generation(int(state["generation"]), state)
                return
            except RuntimeError:
                # a writer in another process committed again and removed these files
                if attempt == 2:
                    raise

    def _load_generation(self, generation: int, state: Mapping[str, str]) -> None:
        if generation == self.generation:
            return
        indexes = {
            modality: faiss.read_index(str(self._vector_path(generation, modality)))
            for modality in MODALITIES
        }
        for index in indexes.values():
            if isinstance(index, faiss.IndexIVF):
                index.nprobe = int(state.get("nprobe", index.nprobe))
        self._indexes, self.generation = indexes, generation

    def _begin_write(self) -> None:
        """Start the write transaction and make sure we change the newest committed state."""
        self._db.execute("BEGIN IMMEDIATE")
        # another process may have committed between our last refresh and this BEGIN
        try:
            state = dict(self._db.execute("SELECT name, value FROM state").fetchall())
            self._load_generation(int(state["generation"]), state)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _remove_orphans(self) -> None:
        keep = {self._vector_path(self.generation, m).name for m in MODALITIES}
        for path in (self.folder / VECTOR_DIR).iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)

    @property
    def kind(self) -> str:
        """``flat`` (exact) or ``ivf`` (approximate)."""
        return "ivf" if isinstance(self._indexes["fused"], faiss.IndexIVF) else "flat"

    def describe(self) -> str:
        return f"faiss {self.kind} + SQLite at {self.folder} ({self.count()} originals)"

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
        with self._write_lock:
            self._refresh()
            self._db_lock.acquire()
            try:
                self._begin_write()
                try:
                    old_keys = self._select_keys(ids)
                    first_key = 1 + int(
                        self._db.execute(
                            "SELECT COALESCE((SELECT seq FROM sqlite_sequence "
                            "WHERE name = 'originals'), 0)"
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
                    total = int(self._db.execute("SELECT COUNT(*) FROM originals").fetchone()[0])
                    indexes = {}
                    for modality in MODALITIES:
                        index = faiss.clone_index(self._indexes[modality])
                        if old_keys:
                            index.remove_ids(np.asarray(old_keys, dtype=np.int64))
                        rows = in_text if modality == "text" else slice(None)
                        index.add_with_ids(vectors[modality][rows], keys[rows])
                        indexes[modality] = index
                    indexes = self._maybe_switch_to_ivf(indexes, total)
                    self._commit(indexes)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            finally:
                self._db_lock.release()

    def remove(self, ids: Sequence[str]) -> list[str]:
        self._check_writable()
        ids = list(dict.fromkeys(ids))
        with self._write_lock:
            self._refresh()
            self._db_lock.acquire()
            try:
                self._begin_write()
                try:
                    found = dict(self._select_id_keys(ids))
                    if not found:
                        self._db.execute("ROLLBACK")
                        return []
                    self._delete_rows(list(found))
                    indexes = {}
                    for modality in MODALITIES:
                        index = faiss.clone_index(self._indexes[modality])
                        index.remove_ids(np.asarray(list(found.values()), dtype=np.int64))
                        indexes[modality] = index
                    self._commit(indexes)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            finally:
                self._db_lock.release()
        return [i for i in ids if i in found]

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

    def _maybe_switch_to_ivf(
        self, indexes: dict[str, faiss.Index], total: int
    ) -> dict[str, faiss.Index]:
        if total < self.ivf_threshold or not isinstance(indexes["fused"], faiss.IndexIDMap2):
            return indexes
        nlist, nprobe = ivf_parameters(total)
        switched = {}
        for modality, index in indexes.items():
            keys, vectors = all_vectors(index)
            # the text index may hold few vectors: train its lists on the fused ones then
            training = vectors if len(vectors) >= nlist else all_vectors(indexes["fused"])[1]
            ivf = create_ivf_index(training, nlist, nprobe)
            if len(vectors):
                ivf.add_with_ids(vectors, keys)
            switched[modality] = ivf
        self._db.execute(
            "INSERT OR REPLACE INTO state (name, value) VALUES ('nprobe', ?)", (str(nprobe),)
        )
        return switched

    def _commit(self, indexes: dict[str, faiss.Index]) -> None:
        """Write the next generation's files, then commit it (caller holds the transaction)."""
        generation = self.generation + 1
        written = []
        try:
            for modality, index in indexes.items():
                path = self._vector_path(generation, modality)
                _fsync_write(index, path)
                written.append(path)
            directory = os.open(self.folder / VECTOR_DIR, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
            self._db.execute(
                "UPDATE state SET value = ? WHERE name = 'generation'", (str(generation),)
            )
            self._db.execute("COMMIT")
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        self._indexes, self.generation = indexes, generation
        self._remove_orphans()

    def set_nprobe(self, nprobe: int) -> None:
        """Probe ``nprobe`` lists per IVF search in this process (recall against speed)."""
        for index in self._indexes.values():
            if isinstance(index, faiss.IndexIVF):
                index.nprobe = nprobe

    def close(self) -> None:
        with self._db_lock:
            self._db.close()
