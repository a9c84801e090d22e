"""The Python API with inputs a user can hand it by mistake: a feature cache it may not write, a
text that is not valid Unicode, a picture with no pixels. Each is one clear error or just works."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
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


def test_model_and_index_name_the_same_side_of_a_pair_in_errors(built_index: Path):
    """A blank picture B is named ``image_b`` by both (text sides are text_a / text_b)."""
    blank, fine = Image.new("RGB", (64, 64), "white"), Image.new("RGB", (64, 64), "white")
    fine.paste((200, 30, 30), (8, 8, 40, 56))
    with artsim.open_index(built_index, read_only=True) as index:
        for scorer in (index.model, index):
            with pytest.raises(ImageError, match=r"^image_b\b"):
                scorer.score(fine, blank)


def test_evaluate_measures_without_writing_unless_asked(
    synthetic_manifest: Path, write_run, tmp_path: Path
):
    run = write_run(tmp_path / "run", synthetic_manifest)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    result = artsim.evaluate(run, split="val")
    assert result.retrieval.tasks["image"]["n_queries"] > 0
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
    again = artsim.evaluate(run, split="val", write=True)
    assert again.retrieval == result.retrieval
    assert again.to_dict() == json.loads((run / "eval" / "val.json").read_text())
    assert (run / "eval" / "val.json").is_file()


def test_encode_gives_what_an_index_stores_and_similarity_compares_rows(
    built_index: Path, tiny_run: Path, synthetic_manifest: Path
):
    from artsim.data.manifest.manifest import load_manifest
    from artsim.errors import UserError
    from artsim.index.catalog import ArtIndex

    model = artsim.load_model(tiny_run)
    index = ArtIndex.open(built_index, read_only=True)
    records = index.store.get(index.store.ids()[:3])
    index.close()
    manifest_items = {item.id: item for item in load_manifest(synthetic_manifest).items}
    images = [manifest_items[i].image for i in records]
    texts = [records[i].caption for i in records]
    fused = model.encode(images, texts)
    assert fused.shape == (3, model.dim)
    expected = model.embedder.fuse(
        model.embed_images(images), model.embed_texts(texts), np.ones(3, bool)
    )
    np.testing.assert_allclose(fused, expected, atol=1e-6)
    # the index stored exactly these fused vectors for them
    with artsim.open_index(built_index, read_only=True) as opened:
        stored = opened._index.store.search("fused", fused, 1, list(records))
    assert [hits.ids[0] for hits in stored] == list(records)
    np.testing.assert_allclose([hits.scores[0] for hits in stored], 1.0, atol=1e-5)
    # one modality alone, and a work without text gets its image's vector
    np.testing.assert_allclose(model.encode(images), model.embed_images(images), atol=1e-6)
    np.testing.assert_allclose(model.encode(texts=texts), model.embed_texts(texts), atol=1e-6)
    alone = model.encode(images[:1], [""])
    np.testing.assert_allclose(
        alone,
        model.embedder.fuse(
            model.embed_images(images[:1]), np.zeros((1, model.dim), np.float32), np.zeros(1, bool)
        ),
        atol=1e-6,
    )
    with pytest.raises(UserError, match="one text per image"):
        model.encode(images, texts[:1])

    similarity = model.similarity(fused, fused[:2])
    assert similarity.shape == (3, 2)
    np.testing.assert_allclose(np.diag(similarity[:2]), 1.0, atol=1e-5)
    np.testing.assert_allclose(similarity, fused @ fused[:2].T, atol=1e-5)
    np.testing.assert_allclose(model.similarity(2 * fused, fused), fused @ fused.T, atol=1e-5)
