"""The SQLite half of the embedded store: originals (id, metadata, thumbnail, faiss key) and the
store's state (dimension, committed generation, search plans), in ``meta.sqlite`` (WAL mode).

Functions here take an open connection; the caller (:class:`artsim.index.faiss_store.FaissStore`)
holds its lock and decides what one transaction is. Lists of ids are sent in chunks of 500,
under SQLite's limit on bound variables.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from artsim.index.store import OriginalRecord

META_FILE = "meta.sqlite"
CHUNK = 500

SCHEMA = """
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

RECORD_COLUMNS = "id, grp, title, artist, caption, lang, image_path, source, metadata"


def create_meta(path: Path, state: Mapping[str, str]) -> None:
    """A new metadata file with the schema and the given state rows."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        with db:
            db.executescript(SCHEMA)
            db.executemany("INSERT INTO state (name, value) VALUES (?, ?)", list(state.items()))
    finally:
        db.close()


def connect(path: Path, read_only: bool) -> sqlite3.Connection:
    """Open the metadata; transactions are explicit (``BEGIN``/``COMMIT``) from then on."""
    if read_only:
        # mode=ro: a read-only service cannot change the file even by accident.
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
    else:
        db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        # indexes made before WAL mode move to it at their first writable open
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode=WAL")
    db.isolation_level = None
    return db


def read_state(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT name, value FROM state").fetchall())


def write_state(db: sqlite3.Connection, generation: int, plans: Mapping[str, dict]) -> None:
    """Record the committed generation and its search plans (inside the caller's transaction)."""
    db.execute("UPDATE state SET value = ? WHERE name = 'generation'", (str(generation),))
    db.execute(
        "INSERT OR REPLACE INTO state (name, value) VALUES ('search_plan', ?)",
        (json.dumps(dict(plans)),),
    )


def _chunks(items: Sequence) -> Iterable[tuple[list, str]]:
    """(chunk, "?,?,...") pairs of at most ``CHUNK`` items."""
    items = list(items)
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM originals").fetchone()[0])


def all_ids(db: sqlite3.Connection) -> list[str]:
    return [row[0] for row in db.execute("SELECT id FROM originals ORDER BY key")]


def get_records(
    db: sqlite3.Connection, ids: Sequence[str], with_thumbnails: bool
) -> dict[str, OriginalRecord]:
    columns = RECORD_COLUMNS + (", thumbnail" if with_thumbnails else "")
    found: dict[str, OriginalRecord] = {}
    for chunk, marks in _chunks(ids):
        rows = db.execute(f"SELECT {columns} FROM originals WHERE id IN ({marks})", chunk)
        for row in rows.fetchall():
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


def select_id_keys(
    db: sqlite3.Connection, ids: Sequence[str], condition: str = ""
) -> list[tuple[str, int]]:
    """(id, faiss key) of the given ids. ``condition`` is a fixed SQL fragment
    (``" AND in_text = 1"``), never user input."""
    pairs: list[tuple[str, int]] = []
    for chunk, marks in _chunks(ids):
        pairs.extend(
            db.execute(
                f"SELECT id, key FROM originals WHERE id IN ({marks}){condition}", chunk
            ).fetchall()
        )
    return pairs


def ids_for_keys(db: sqlite3.Connection, keys: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk, marks in _chunks([int(key) for key in keys]):
        found.update(
            db.execute(f"SELECT key, id FROM originals WHERE key IN ({marks})", chunk).fetchall()
        )
    return found


def delete_rows(db: sqlite3.Connection, ids: Sequence[str]) -> None:
    for chunk, marks in _chunks(ids):
        db.execute(f"DELETE FROM originals WHERE id IN ({marks})", chunk)


def next_keys(db: sqlite3.Connection, count: int) -> np.ndarray:
    """``count`` fresh faiss keys: never one used before, even by a removed original."""
    last = db.execute(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'originals'), 0)"
    ).fetchone()[0]
    return np.arange(int(last) + 1, int(last) + 1 + count, dtype=np.int64)


def insert_records(
    db: sqlite3.Connection,
    keys: np.ndarray,
    records: Sequence[OriginalRecord],
    in_text: np.ndarray,
) -> None:
    db.executemany(
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
