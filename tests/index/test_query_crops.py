"""Query crops: an image query scores each original by the best of its whole picture and its
crops (less a margin), exactly, and every path that grades with a calibration scores the way
that calibration was fitted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artsim.data.corpora.synthetic import make_synthetic_manifest
from artsim.data.manifest.manifest import load_manifest, write_manifest
from artsim.data.pictures.crops import QUERY_CROP_WINDOWS, crops
from artsim.index.build import build_index
from artsim.index.calibrate import calibrate_index
from artsim.index.catalog import ArtIndex
from artsim.index.crops import (
    DEFAULT_QUERY_CROPS,
    QueryCrops,
    best_of_crops,
    default_query_crops,
    search_with_crops,
)
from artsim.index.query import embed_pair, pair_background, score_pair, search_index
from artsim.model.embedder import Embedder
from artsim.verdicts.source import load_calibration


def test_crops_cut_the_grid_and_the_centre_and_leave_out_tiny_pieces():
    noise = np.random.default_rng(0).integers(0, 256, (60, 100, 3), dtype=np.uint8)
    sizes = [piece.size for piece in crops(Image.fromarray(noise))]
    assert sizes == [(50, 30), (50, 30), (50, 30), (50, 30), (60, 36)]
    tiny = Image.fromarray(noise[:10, :10])
    assert crops(tiny) == []  # 5-pixel tiles and a 6-pixel centre
    assert len(QUERY_CROP_WINDOWS) == 5


def test_crops_of_almost_one_colour_are_left_out():
    # a drawing in the top-left quarter of a white page: the other three tiles are plain white
    picture = Image.new("RGB", (100, 100), "white")
    picture.paste(Image.new("RGB", (30, 30), (200, 30, 30)), (10, 10))
    pieces = crops(picture)
    assert [piece.size for piece in pieces] == [(50, 50), (60, 60)]  # its tile and the centre
    assert crops(Image.new("RGB", (100, 100), "white")) == []


def test_a_crop_counts_only_where_it_beats_the_whole_picture_by_the_margin():
    whole = np.array([0.50, 0.50, 0.50])
    crop_scores = np.array([[0.55, 0.57, 0.70], [0.10, 0.20, 0.30]])
    np.testing.assert_allclose(best_of_crops(whole, crop_scores, 0.06), [0.50, 0.51, 0.64])
    np.testing.assert_allclose(best_of_crops(whole, np.zeros((0, 3)), 0.06), whole)


def test_query_crops_read_back_what_they_wrote_and_refuse_other_shapes():
    assert QueryCrops.from_json(DEFAULT_QUERY_CROPS.to_json()) == DEFAULT_QUERY_CROPS
    assert QueryCrops.from_json(None) is None
    with pytest.raises(ValueError):
        QueryCrops.from_json({"windows": [[0, 0, 1]], "margin": 0.1})


def test_the_search_with_crops_is_the_exhaustive_best_of_crops(built_index):
    index = ArtIndex.open(built_index, read_only=True)
    store = index.store
    everyone = store.ids()
    rng = np.random.default_rng(3)
    whole = rng.normal(size=(4, store.dim)).astype(np.float32)
    views = [rng.normal(size=(n, store.dim)).astype(np.float32) for n in (5, 0, 2, 5)]
    # the bias makes crops win for some originals and lose for others
    for margin in (0.0, 0.5):
        found = search_with_crops(store, whole, views, 4, margin)
        for row, hits in enumerate(found):
            vectors = np.vstack([whole[row][None], views[row]])
            exact = store.search("image", vectors, len(everyone), everyone)
            table = np.array([[h.as_dict()[i] for i in everyone] for h in exact])
            expected = best_of_crops(table[0], table[1:], margin)
            order = np.argsort(-expected, kind="stable")[:4]
            assert hits.ids == [everyone[i] for i in order]
            np.testing.assert_allclose(hits.scores, expected[order], rtol=1e-5, atol=1e-5)
    index.close()


@pytest.fixture(scope="module")
def paired(synthetic_manifest, tmp_path_factory) -> tuple[Path, Path, Path]:
    """A model with a copy descriptor and an index of 20 originals it calibrated with crops."""
    from artsim.cli.train import main as train_main

    folder = tmp_path_factory.mktemp("paired")
    run = folder / "run"
    args = ["--data", str(synthetic_manifest), "--out", str(run), "--image-tower", "tiny+tiny-copy"]
    args += ["--text-tower", "tiny", "--cache-dir", str(folder / "cache"), "--max-epochs", "1"]
    assert train_main([*args, "--blend", "frozen", "--no-progress"]) == 0
    manifest = load_manifest(make_synthetic_manifest(folder / "full", n_groups=20, seed=5))
    originals = write_manifest(manifest.originals(), folder / "full" / "originals.csv")
    build_index(run, originals, folder / "index").close()
    index = ArtIndex.open(folder / "index")
    calibrate_index(index, Embedder.from_run(run, cache_dir=False), sample=10)
    index.close()
    return run, folder / "index", originals


def _inset(original: Path, size: int = 160) -> Image.Image:
    """A generated work holding the original in its top-left quarter."""
    canvas = Image.new("RGB", (size, size), (240, 230, 200))
    canvas.paste(Image.open(original).convert("RGB").resize((size // 2, size // 2)), (0, 0))
    return canvas


def test_search_score_and_background_agree_with_the_crops_the_calibration_recorded(paired):
    run, folder, originals = paired
    index = ArtIndex.open(folder, read_only=True)
    embedder = Embedder.from_run(run, cache_dir=False)
    calibration = load_calibration(run, embedder.model_id, index.info.calibration)
    assert default_query_crops(embedder) == DEFAULT_QUERY_CROPS
    assert QueryCrops.from_json(calibration.open_set.query_crops) == DEFAULT_QUERY_CROPS
    assert calibration.to_json()["query_crops"] == DEFAULT_QUERY_CROPS.to_json()
    item = load_manifest(originals).items[3]
    query = _inset(item.image)
    response = search_index(index, embedder, image=query, k=20)
    ranked = {result.id: result.scores["image"] for result in response.results}
    # by hand: the whole picture and its five crops against the original's stored vector
    vectors = embedder.embed_pil([query, *crops(query)])
    stored = index.store.search("image", vectors, 1, [item.id])
    cosines = np.array([hits.scores[0] for hits in stored])
    expected = best_of_crops(cosines[:1], cosines[1:, None], DEFAULT_QUERY_CROPS.margin)[0]
    assert ranked[item.id] == pytest.approx(expected, abs=1e-5)
    # a pair scores as the search ranks, and its background is the search's rank-4 score
    picture = Image.open(item.image).convert("RGB")
    a, b = embed_pair(embedder, calibration, (query, None), (picture, None))
    assert a.crops is not None and b.crops is None
    pair = score_pair(embedder, a, b, calibration)
    assert pair.scores["image"] == pytest.approx(expected, abs=1e-4)
    rank = calibration.background_rank("image")
    if rank:
        background = pair_background(index, calibration, a, "image")
        assert background == pytest.approx(sorted(ranked.values())[-rank], abs=1e-5)
    # with a prompt on both sides the pair is fused: no crops are embedded
    a, _ = embed_pair(embedder, calibration, (query, "a cat"), (picture, "a cat"))
    assert a.crops is None
    index.close()


def test_a_calibration_fitted_on_whole_pictures_keeps_searches_on_whole_pictures(paired, tmp_path):
    import shutil

    run, folder, _ = paired

    shutil.copytree(folder, tmp_path / "index")
    index = ArtIndex.open(tmp_path / "index")
    embedder = Embedder.from_run(run, cache_dir=False)
    calibration = calibrate_index(index, embedder, sample=10, query_crops=False)
    assert calibration.query_crops is None
    raw = json.loads((tmp_path / "index" / "index.json").read_text())
    assert raw["calibration"]["query_crops"] is None
    query = Image.new("RGB", (96, 96), (20, 40, 60))
    query.paste(Image.new("RGB", (40, 40), (200, 10, 10)), (10, 10))
    response = search_index(index, embedder, image=query, k=3)
    whole = embedder.embed_pil([query])[0]
    for result in response.results:
        exact = index.store.search("image", whole[None], 1, [result.id])[0].scores[0]
        assert result.scores["image"] == pytest.approx(exact, abs=1e-5)
    index.close()
