"""Ids are kept exactly from the manifest to the index to search results; an id with leading or
trailing whitespace is refused with its row and file (never silently changed)."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import load_manifest, write_manifest
from artsim.data.pictures.images import load_rgb
from artsim.errors import DataError
from artsim.index.build import build_index
from artsim.index.catalog import ArtIndex
from artsim.index.query import search_index
from artsim.model.embedder import Embedder
from artsim.progress import LineReporter

# rows 1..5 of the manifest written below; rows 1, 2 and 4 are refused
IDS = [" lead", "trail ", "inner  two spaces, a comma", "tab\t", "plain"]
KEPT = ["inner  two spaces, a comma", "plain"]


def write_awkward_manifest(synthetic_manifest: Path, folder: Path) -> Path:
    originals = load_manifest(synthetic_manifest, check_images=False).originals()
    (folder / "images").mkdir(parents=True)
    path = folder / "manifest.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "group", "role", "image", "text"])
        for k, (item_id, original) in enumerate(zip(IDS, originals, strict=False)):
            shutil.copyfile(original.image, folder / "images" / f"{k}.png")
            writer.writerow([item_id, f"g-{item_id.strip()}", "original", f"images/{k}.png", ""])
    return path


def test_a_manifest_refuses_ids_with_outer_whitespace_naming_row_and_file(
    synthetic_manifest: Path, tmp_path: Path
):
    path = write_awkward_manifest(synthetic_manifest, tmp_path / "data")
    manifest = load_manifest(path, check_images=False)
    assert [item.id for item in manifest.items] == KEPT
    refused = {problem.row: problem for problem in manifest.errors}
    assert sorted(refused) == [1, 2, 4]
    line = refused[1].format(str(path))
    assert line.startswith(f"{path}: row 1") and "' lead'" in line and "whitespace" in line
    assert "\n" not in line
    assert "'tab\\t'" in refused[4].reason


def test_exact_ids_round_trip_through_index_and_search(
    tiny_run: Path, synthetic_manifest: Path, tmp_path: Path
):
    path = write_awkward_manifest(synthetic_manifest, tmp_path / "data")
    stream = io.StringIO()
    index = build_index(tiny_run, path, tmp_path / "index", reporter=LineReporter(stream))
    try:
        notes = stream.getvalue()
        assert notes.count("skipped:") == 3 and f"{path}: row 2 (id trail )" in notes
        assert sorted(index.store.get(KEPT)) == sorted(KEPT)
        assert index.count() == 2
        embedder = Embedder.from_run(tiny_run, cache_dir=False)
        for item in load_manifest(path, check_images=False).items:
            results = search_index(index, embedder, image=load_rgb(item.image), k=2).results
            assert results[0].id == item.id  # its own image: exactly its id back
            assert {result.id for result in results} == set(KEPT)
    finally:
        index.close()
    reopened = ArtIndex.open(tmp_path / "index", read_only=True)
    try:
        assert sorted(reopened.store.get(KEPT)) == sorted(KEPT)
    finally:
        reopened.close()


def test_writing_a_manifest_refuses_an_id_it_could_not_read_back(tmp_path: Path):
    item = Item(id="x ", group="x", role="original", image=tmp_path / "x.png")
    with pytest.raises(DataError, match=r"'x ' has leading or trailing whitespace"):
        write_manifest([item], tmp_path / "manifest.csv")
    assert not (tmp_path / "manifest.csv").exists()
