"""A writer process for the index fault tests: ``run(FOLDER, OP, START, COUNT[, BATCH])``.

The tests start it with multiprocessing's forkserver (artsim imported once, each worker a fork),
so a kill -9 test costs milliseconds, not an interpreter start.

``OP`` is ``add`` (ids ``x{START}`` .. ``x{START+COUNT-1}``, in batches of ``BATCH``, each batch
opening the store afresh like a separate CLI call) or ``remove`` (the same ids, one call).
Vectors are a pure function of the id (:func:`vector_of`), so a checker can verify them.
:func:`hold` takes the write lock, sets an event and sleeps (a writer that is busy).
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

import numpy as np

from artsim.index.faiss_store import FaissStore
from artsim.index.locking import index_write_lock
from artsim.index.store import OriginalRecord

DIM = 8


def vector_of(item_id: str) -> np.ndarray:
    """The unit vector of an id (the same in every process)."""
    seed = zlib.crc32(item_id.encode())
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def add_ids(store: FaissStore, ids: list[str]) -> None:
    matrix = np.stack([vector_of(i) for i in ids])
    store.add(
        ids,
        {"image": matrix, "text": matrix, "fused": matrix},
        [OriginalRecord(id=i, group=i, caption="c") for i in ids],
    )


def hold(folder: Path, seconds: float, locked, argv: list[str] | None = None) -> None:
    """Keep the index's write lock for ``seconds``; ``locked.set()`` once it is held. ``argv``
    is the command line the holder says it runs (the lock file records it)."""
    if argv is not None:
        import sys

        sys.argv = list(argv)
    with index_write_lock(folder):
        locked.set()
        time.sleep(seconds)


def run(folder: Path, op: str, start: int, count: int, batch: int = 0, fault: str = "") -> None:
    """Add or remove ids ``x{start}`` ..; ``fault`` names an ``ARTSIM_FAULT_POINT`` to die at."""
    if fault:
        os.environ["ARTSIM_FAULT_POINT"] = fault
    ids = [f"x{i}" for i in range(start, start + count)]
    if op == "remove":
        store = FaissStore(folder)
        store.remove(ids)
        store.close()
        return
    batch = batch or count
    for first in range(0, len(ids), batch):
        store = FaissStore(folder)
        add_ids(store, ids[first : first + batch])
        store.close()
