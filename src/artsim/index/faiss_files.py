"""The faiss half of the embedded store: one file per modality and *generation*.

``vectors/000003-image.faiss`` holds the image vectors of generation 3. A change writes the
next generation's files under new names (each written to a temporary name, fsynced, then
renamed), fsyncs the folder, and only then does the store commit the generation number in
SQLite. Files of other generations are removed after that commit. A modality that did not
change is not written again: its file is hard-linked under the new generation's name (same
bytes, no copy), so a change of one modality costs one file.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

import faiss

from artsim.errors import UserError
from artsim.index.faults import fault_point
from artsim.runfolder import replacing

VECTOR_DIR = "vectors"


def vector_path(folder: Path, generation: int, modality: str) -> Path:
    return folder / VECTOR_DIR / f"{generation:06d}-{modality}.faiss"


class UnreadableVectorFile(UserError):
    """A vector file of the committed generation is missing, empty or corrupt."""


def fsync_write(index: faiss.Index, path: Path) -> None:
    """Write ``index`` to a temporary file, fsync it and rename it to ``path``. faiss writes
    through Python's file object, so a full disk raises ``OSError`` (ENOSPC), not faiss's
    message; a failed write leaves no temporary file."""
    with replacing(path) as temporary:
        with temporary.open("wb") as handle:
            faiss.write_index(index, faiss.PyCallbackIOWriter(handle.write))
            handle.flush()
            os.fsync(handle.fileno())
        fault_point("commit:before-rename")


def read_vector_file(path: Path) -> faiss.Index:
    """One vector file, or :class:`UnreadableVectorFile` saying what is wrong with it."""
    try:
        return faiss.read_index(str(path))
    except RuntimeError as error:
        if not path.exists():
            state = "is missing"
        elif path.stat().st_size == 0:
            state = "is empty (0 bytes)"
        else:
            detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
            state = f"cannot be read (truncated or corrupt: {detail.rpartition('failed: ')[2]})"
        raise UnreadableVectorFile(f"{path}: this vector file of the index {state}") from None


def read_generation(folder: Path, generation: int, modalities: Collection[str]) -> dict:
    """The indexes of one generation (:class:`UnreadableVectorFile` when a file is missing or
    unreadable, e.g. because a newer commit removed it)."""
    return {m: read_vector_file(vector_path(folder, generation, m)) for m in modalities}


def write_generation(
    folder: Path,
    generation: int,
    indexes: Mapping[str, faiss.Index],
    unchanged: Collection[str] = (),
) -> list[Path]:
    """Write the files of ``generation`` (``unchanged`` modalities linked from generation - 1)
    and fsync the folder; the paths written. On failure what was written is removed."""
    written = []
    try:
        for modality, index in indexes.items():
            path = vector_path(folder, generation, modality)
            if not (modality in unchanged and _link(folder, generation, modality, path)):
                fsync_write(index, path)
            written.append(path)
            fault_point("commit:vector-file")
        directory = os.open(folder / VECTOR_DIR, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def _link(folder: Path, generation: int, modality: str, path: Path) -> bool:
    """Hard-link the previous generation's file of ``modality`` as ``path``; False when the
    file system cannot (then it is written)."""
    previous = vector_path(folder, generation - 1, modality)
    try:
        path.unlink(missing_ok=True)  # left by a writer killed before its commit
        os.link(previous, path)
    except OSError:
        return False
    return True


def remove_orphans(folder: Path, generation: int, modalities: Collection[str]) -> None:
    """Delete every vector file but ``generation``'s: older generations and what a killed
    writer left. Only called under the write lock, right after a commit, so no other writer
    can be writing a file here."""
    keep = {vector_path(folder, generation, m).name for m in modalities}
    for path in sorted((folder / VECTOR_DIR).iterdir()):
        if path.name not in keep:
            path.unlink(missing_ok=True)
            fault_point("commit:removing-old-files")
