"""The Python API with inputs a user can hand it by mistake: a feature cache it may not write, a
text that is not valid Unicode, a picture with no pixels. Each is one clear error or just works."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image

import artsim
from artsim.errors import DataError, ImageError
from artsim.model.features import CacheNotWritten


@pytest.fixture(autouse=True)
def _feature_cache(isolated_feature_cache):
    yield


def test_a_read_only_index_searches_where_the_feature_cache_cannot_be_written(
    built_index: Path, read_only_folder: Path, monkeypatch
):
    monkeypatch.setenv("ARTSIM_CACHE", str(read_only_folder))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with artsim.open_index(built_index, read_only=True) as index:
            caption = index._index.store.get(["g002-orig"])["g002-orig"].caption
            results = index.search(text=caption, k=2)
            again = index.search(text=caption, k=2)  # the rows stay in memory
    assert results[0].id == "g002-orig" and again[0].id == "g002-orig"
    assert list(read_only_folder.iterdir()) == []
    assert sum(issubclass(w.category, CacheNotWritten) for w in caught) == 1


def test_a_lone_surrogate_is_one_clear_error(built_index: Path):
    with artsim.open_index(built_index, read_only=True) as index:
        with pytest.raises(DataError, match=r"text: holds U\+D800 at character 4"):
            index.search(text="fox \ud800")
        with pytest.raises(DataError, match=r"text 1: holds U\+DC80"):
            index.model.embed_texts(["fine", "bad \udc80 text"])


def test_a_picture_without_pixels_is_refused(built_index: Path):
    with artsim.open_index(built_index, read_only=True) as index:
        for size in ((0, 0), (0, 5), (7, 0)):
            with pytest.raises(ImageError, match=f"{size[0]}x{size[1]} pixels"):
                index.search(image=Image.new("RGB", size))
        with pytest.raises(ImageError, match="0x0 pixels"):
            index.model.score(Image.new("RGB", (0, 0)), Image.new("RGB", (8, 8)))


def test_evaluate_measures_without_writing_unless_asked(
    synthetic_manifest: Path, write_run, tmp_path: Path
):
    run = write_run(tmp_path / "run", synthetic_manifest)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    result = artsim.evaluate(run, split="val")
    assert result["tasks"]["image"]["n_queries"] > 0
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
    again = artsim.evaluate(run, split="val", write=True)
    assert again["tasks"]["image"]["recall@1"] == result["tasks"]["image"]["recall@1"]
    assert (run / "eval" / "val.json").is_file()
