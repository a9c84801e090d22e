"""Faults and races on the embedded index: kill -9 at every named point of a change, two writers
at once, readers during writes. After each: the index opens (read-only too), holds exactly a
committed version, and nothing committed is lost."""

from __future__ import annotations

import multiprocessing
import signal
import sys
import time
from pathlib import Path

import pytest

from artsim.index.faiss_store import FaissStore
from artsim.index.locking import IndexLockTimeout

sys.path.insert(0, str(Path(__file__).parent))
from fault_worker import DIM, add_ids, hold, run, vector_of

# a forkserver imports artsim once; every worker is then a fork of it (fast, and no threads of
# this test process are forked)
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(["artsim.index.faiss_store"])

ADD_POINTS = [
    "add:rows-written",
    "commit:before-rename@1",
    "commit:vector-file@1",
    "commit:before-rename@3",
    "commit:vector-file@3",
    "commit:before-sqlite-commit",
    "commit:after-sqlite-commit",
    "commit:removing-old-files",
]
REMOVE_POINTS = [
    "remove:rows-deleted",
    "commit:vector-file@2",
    "commit:before-sqlite-commit",
    "commit:after-sqlite-commit",
    "commit:removing-old-files@2",
]


def worker(folder: Path, *args, fault: str = "") -> multiprocessing.Process:
    """Start ``fault_worker.run(folder, *args)`` in another process."""
    process = CONTEXT.Process(target=run, args=(folder, *args), kwargs={"fault": fault})
    process.start()
    return process


def finish(process: multiprocessing.Process, timeout: float = 60) -> int:
    process.join(timeout)
    return process.exitcode


def make_store(folder: Path, count: int = 6) -> None:
    store = FaissStore.create(folder, DIM)
    if count:
        add_ids(store, [f"x{i}" for i in range(count)])
    store.close()


def check_committed(folder: Path, allowed: list[set[str]]) -> set[str]:
    """The store opens read-only and then for writing; its ids are one of ``allowed``; every
    id is found first by its own vector in every modality. Returns the ids."""
    reader = FaissStore(folder, read_only=True)
    ids = set(reader.ids())
    assert ids in allowed, f"ids {sorted(ids)} are no committed version"
    assert reader.count() == len(ids)
    for item_id in sorted(ids):
        for modality in ("image", "text", "fused"):
            assert reader.search(modality, vector_of(item_id), 1)[0].ids == [item_id]
    reader.close()
    writer = FaissStore(folder)  # and a writer can go on
    add_ids(writer, ["after"])
    assert set(writer.ids()) == ids | {"after"}
    writer.remove(["after"])
    # what a killed writer left is gone after the next commit
    assert len(list((folder / "vectors").iterdir())) == 3
    writer.close()
    return ids


@pytest.mark.parametrize("point", ADD_POINTS)
def test_kill_9_during_add_leaves_a_committed_version(tmp_path: Path, point: str):
    folder = tmp_path / "s"
    make_store(folder)
    before = {f"x{i}" for i in range(6)}
    after = before | {f"x{i}" for i in range(6, 10)}
    running = FaissStore(folder, read_only=True)  # like a server already serving
    assert finish(worker(folder, "add", 6, 4, fault=point)) == -signal.SIGKILL
    ids = check_committed(folder, [before, after])
    # the point decides which version survived: before the SQLite commit the old one
    committed = point in ("commit:after-sqlite-commit", "commit:removing-old-files")
    assert ids == (after if committed else before)
    # the reader that was open all along still answers, at the committed version
    assert running.search("image", vector_of("x0"), 1)[0].ids == ["x0"]
    assert running.count() == len(ids)


@pytest.mark.parametrize("point", REMOVE_POINTS)
def test_kill_9_during_remove_leaves_a_committed_version(tmp_path: Path, point: str):
    folder = tmp_path / "s"
    make_store(folder)
    before = {f"x{i}" for i in range(6)}
    after = before - {"x1", "x2"}
    assert finish(worker(folder, "remove", 1, 2, fault=point)) == -signal.SIGKILL
    ids = check_committed(folder, [before, after])
    committed = point.startswith(("commit:after-sqlite-commit", "commit:removing-old-files"))
    assert ids == (after if committed else before)


def test_kill_9_at_random_moments_of_many_adds(tmp_path: Path):
    """Not only the named points: kills at arbitrary moments (inside SQLite's commit too)."""
    folder = tmp_path / "s"
    make_store(folder, count=0)
    committed: set[str] = set()
    start = 0
    for delay in (0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0):
        process = worker(folder, "add", start, 40, 2)
        time.sleep(delay)
        process.kill()
        finish(process)
        # every add is a batch of 2 in id order: a committed version is a prefix of the batches
        reader = FaissStore(folder, read_only=True)
        ids = set(reader.ids())
        reader.close()
        new = ids - committed
        assert committed <= ids, "a committed original was lost"
        expected = {f"x{i}" for i in range(start, start + len(new))}
        assert new == expected and len(new) % 2 == 0
        committed = ids
        start += 40
    check_committed(folder, [committed])


def test_two_writers_at_once_lose_nothing_and_readers_keep_answering(tmp_path: Path):
    folder = tmp_path / "s"
    make_store(folder, count=0)
    reader = FaissStore(folder, read_only=True)
    writers = [worker(folder, "add", start, 30, 3) for start in (0, 1000)]
    seen = 0
    while any(w.is_alive() for w in writers):
        count = reader.count()
        assert count >= seen  # only adds: a reader never sees the collection shrink
        seen = count
        if count:
            first = reader.ids()[0]
            assert reader.search("fused", vector_of(first), 1)[0].ids == [first]
    assert [finish(w, 120) for w in writers] == [0, 0]
    expected = {f"x{i}" for i in [*range(30), *range(1000, 1030)]}
    check_committed(folder, [expected])


def test_a_second_writer_waits_then_names_the_holder(tmp_path: Path, monkeypatch):
    folder = tmp_path / "s"
    make_store(folder)
    locked = CONTEXT.Event()
    holder = CONTEXT.Process(target=hold, args=(folder, 30, locked))
    holder.start()
    try:
        assert locked.wait(30)
        monkeypatch.setenv("ARTSIM_INDEX_LOCK_TIMEOUT", "0.3")
        store = FaissStore(folder)  # opening is fine: only writing waits
        with pytest.raises(IndexLockTimeout) as caught:
            add_ids(store, ["late"])
        message = str(caught.value)
        assert str(folder.resolve()) in message and f"pid {holder.pid}" in message
        assert "\n" not in message
        # and a reader is not held up by the writer
        assert FaissStore(folder, read_only=True).count() == 6
    finally:
        holder.kill()
        holder.join()
    add_ids(store, ["late"])  # the holder is gone: the lock is free again
    assert store.count() == 7
