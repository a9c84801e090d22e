"""Indexes on disks that refuse writes, and committed files that went missing.

A full disk (a small tmpfs where the machine allows it; else ``OSError(ENOSPC)`` injected at each
write point of a change) costs the change, never what was committed: one line from the command
line, no temporary file left. A committed vector file that is missing, empty or corrupt is one
line saying how to recover, and ``build --force`` recovers. A build killed half-way leaves a
hidden work folder that the next build of the same index removes.
"""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pytest

from artsim.cli.index import main
from artsim.cli.search import search_main
from artsim.errors import StorageError, storage_error
from artsim.index import faults
from artsim.index.faiss_store import FaissStore
from artsim.index.store import OriginalRecord

DIM = 8


def vectors(ids: list[str]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(len(ids))
    rows = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return {"image": rows, "text": rows, "fused": rows}


def add(store: FaissStore, ids: list[str]) -> None:
    store.add(ids, vectors(ids), [OriginalRecord(i, i) for i in ids])


def leftovers(folder: Path) -> list[str]:
    """Temporary files and vector files of no committed generation."""
    names = sorted(p.name for p in folder.rglob("*") if p.is_file())
    vector_files = [n for n in names if n.endswith(".faiss")]
    return [n for n in names if n.endswith(".tmp")] + (
        vector_files if len(vector_files) != 3 else []
    )


def one_line(capsys) -> str:
    """The one error line (progress bars drawn before it aside), never a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    return errors[0]


# points of a change before its commit: a full disk there must cost the change only
BEFORE_COMMIT = [
    "add:rows-written",
    "commit:before-rename@1",
    "commit:vector-file@1",
    "commit:before-rename@3",
    "commit:before-sqlite-commit",
]


@pytest.mark.parametrize("point", BEFORE_COMMIT)
def test_injected_enospc_at_each_write_point_loses_nothing(tmp_path: Path, point, monkeypatch):
    folder = tmp_path / "store"
    store = FaissStore.create(folder, DIM)
    add(store, ["a", "b"])
    faults._reached.clear()
    monkeypatch.setenv(faults.ENV_VARIABLE, f"{point}:enospc")
    with pytest.raises(OSError) as raised:
        add(store, ["c", "d"])
    refused = storage_error(raised.value)
    assert isinstance(refused, StorageError) and refused.status_code == 507
    assert "no space left" in str(refused)
    monkeypatch.delenv(faults.ENV_VARIABLE)
    assert sorted(store.ids()) == ["a", "b"] and leftovers(folder) == []
    reader = FaissStore(folder, read_only=True)
    assert sorted(reader.ids()) == ["a", "b"]
    assert reader.search("image", vectors(["a", "b"])["image"][:1], 1)[0].ids == ["a"]
    reader.close()
    add(store, ["c"])  # the next change goes through
    assert sorted(store.ids()) == ["a", "b", "c"] and leftovers(folder) == []
    store.close()


def test_a_full_tmpfs_costs_the_change_only(tmp_path: Path, small_disk, filled):
    folder = small_disk(2048) / "store"
    store = FaissStore.create(folder, DIM)
    add(store, ["a", "b"])
    filled(folder.parent, leave=16 * 1024)
    many = [f"n{i}" for i in range(4000)]
    with pytest.raises(OSError) as raised:  # 4000 x 3 x 32 bytes do not fit in 16 KB
        add(store, many)
    assert storage_error(raised.value).full
    assert sorted(store.ids()) == ["a", "b"] and leftovers(folder) == []
    store.close()
    reader = FaissStore(folder, read_only=True)
    assert sorted(reader.ids()) == ["a", "b"]
    reader.close()


def test_index_add_on_a_full_disk_is_one_line(
    built_index: Path, synthetic_manifest, small_disk, filled, capsys
):
    index = small_disk(4096) / "index"
    shutil.copytree(built_index, index)
    filled(index.parent, leave=8 * 1024)
    capsys.readouterr()
    code = main(["add", "--index", str(index), "--data", str(synthetic_manifest)])
    line = one_line(capsys)
    assert code == 4 and "no space left" in line, line
    assert leftovers(index) == []
    (index.parent / ".filler").unlink()
    capsys.readouterr()
    assert main(["info", "--index", str(index)]) == 0
    assert "6 originals" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["missing", "empty", "corrupt"])
def test_a_damaged_committed_vector_file_is_one_line_and_build_force_recovers(
    index_copy: Path, synthetic_manifest, tiny_run, damage, capsys
):
    text_file = next((index_copy / "vectors").glob("*-text.faiss"))
    if damage == "missing":
        text_file.unlink()
    elif damage == "empty":
        text_file.write_bytes(b"")
    else:
        text_file.write_bytes(text_file.read_bytes()[:40])
    wanted = {"missing": "is missing", "empty": "is empty", "corrupt": "cannot be read"}[damage]
    capsys.readouterr()
    for run in (
        lambda: main(["info", "--index", str(index_copy)]),
        lambda: main(["add", "--index", str(index_copy), "--data", str(synthetic_manifest)]),
        lambda: search_main(["--index", str(index_copy), "--text", "a red circle"]),
    ):
        assert run() == 2
        line = one_line(capsys)
        assert text_file.name in line and wanted in line and "--force" in line, line
    build = ["build", "--run", str(tiny_run), "--data", str(synthetic_manifest)]
    assert main([*build, "--out", str(index_copy), "--force", "--calibrate-sample", "0"]) == 0
    capsys.readouterr()
    assert main(["info", "--index", str(index_copy)]) == 0
    assert leftovers(index_copy) == []


def _exit_at_once() -> None:
    pass


def test_a_killed_builds_hidden_folder_is_removed_by_the_next_build(
    synthetic_manifest, tiny_run, tmp_path: Path, capsys
):
    from artsim.index.build import remove_abandoned

    gone = multiprocessing.get_context("spawn").Process(target=_exit_at_once)
    gone.start()
    gone.join()
    out = tmp_path / "idx"
    abandoned = tmp_path / f".idx.building-{gone.pid}-0123abcd"
    abandoned.mkdir()
    (abandoned / "meta.sqlite").write_bytes(b"half a build")
    # a build of another process that still runs (our parent) is left alone
    running = tmp_path / f".idx.building-{__import__('os').getppid()}-0123abcd"
    running.mkdir()
    assert remove_abandoned(out) == [abandoned]
    abandoned.mkdir()
    build = ["build", "--run", str(tiny_run), "--data", str(synthetic_manifest)]
    assert main([*build, "--out", str(out), "--calibrate-sample", "0"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [running.name, "idx"]


def test_build_force_and_remove_on_a_full_disk_lose_nothing(
    built_index: Path, synthetic_manifest, tiny_run, small_disk, filled, capsys
):
    disk = small_disk(4096)
    index = disk / "index"
    shutil.copytree(built_index, index)
    filled(disk, leave=8 * 1024)
    build = ["build", "--run", str(tiny_run), "--data", str(synthetic_manifest)]
    capsys.readouterr()
    assert main([*build, "--out", str(index), "--force", "--calibrate-sample", "0"]) == 4
    assert "no space left" in one_line(capsys)
    assert sorted(p.name for p in disk.iterdir()) == [".filler", "index"]  # no work folder left
    code = main(["remove", "--index", str(index), "--id", "g000-orig"])
    if code != 0:  # the change did not fit: one line, and nothing changed
        assert code == 4 and "no space left" in one_line(capsys)
    capsys.readouterr()
    (disk / ".filler").unlink()
    assert main(["info", "--index", str(index)]) == 0
    held = 5 if code == 0 else 6
    assert f"{held} originals" in capsys.readouterr().out
    assert leftovers(index) == []
    assert main(["remove", "--index", str(index), "--id", "g001-orig"]) == 0
