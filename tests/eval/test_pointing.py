"""The pointing game: pairs with boxes from the held-out family, hits, baselines, sign tests."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artsim.data.corpora.synthetic import make_synthetic_manifest
from artsim.data.families.heldout.derive import derive_heldout_manifest
from artsim.data.families.heldout.transforms import PATTERN_NAMES
from artsim.data.manifest.manifest import load_manifest
from artsim.eval.pointing import (
    MAX_BOX_SHARE,
    POINTING_PATTERNS,
    inside,
    pattern_group,
    play,
    pointing_pairs,
    pointing_table,
)
from artsim.model.embedder import Embedder
from artsim.model.explain import MatchMap, SideMap, WindowGrid, match_map
from artsim.stats import sign_test


@pytest.fixture(scope="module")
def derived(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pointing")
    originals = load_manifest(make_synthetic_manifest(folder / "src", n_groups=4, image_size=96))
    return derive_heldout_manifest(originals, folder / "heldout", per_original=len(PATTERN_NAMES))


def _digest(picture: Image.Image) -> str:
    return hashlib.sha256(picture.tobytes()).hexdigest()


def _pointing_at(where: dict[str, tuple[float, float]]):
    """An explain function whose map peaks at a given point of each picture A (fractions)."""

    def explain(embedder, picture_a, picture_b) -> MatchMap:
        x, y = where[_digest(picture_a)]
        cells = 32
        grid = np.zeros((cells, cells), np.float32)
        grid[min(cells - 1, int(y * cells)), min(cells - 1, int(x * cells))] = 1.0
        window = np.array([[0.0, 0.0, 1.0, 1.0]])
        side = SideMap(grid, window, np.ones(1))
        return MatchMap("image", "given", 1.0, side, side, ((0, 0, 1, 1), (0, 0, 1, 1), 1.0))

    return explain


def test_pairs_are_the_framed_patterns_with_a_partial_box(derived: Path) -> None:
    manifest = load_manifest(derived)
    pairs = pointing_pairs(manifest)
    assert pairs and {pattern_group(p.pattern) for p in pairs} <= set(POINTING_PATTERNS)
    for pair in pairs:
        with Image.open(pair.generated) as picture:
            width, height = picture.size
        box = pair.box
        assert (box[2] - box[0]) * (box[3] - box[1]) < MAX_BOX_SHARE * width * height
        assert Path(pair.original).name.endswith("-orig.png")
    # mosaics always frame the original: every one of them is a pair
    mosaics = [i for i in manifest.generated() if i.metadata["pattern"] == "mosaic"]
    assert len([p for p in pairs if p.pattern == "mosaic"]) == len(mosaics)
    fewer = pointing_pairs(manifest, per_pattern=1)
    groups = [pattern_group(p.pattern) for p in fewer]
    assert len(groups) == len(set(groups))
    assert fewer == pointing_pairs(manifest, per_pattern=1)  # seeded


def test_hits_baselines_and_sign_tests_against_a_plain_count(derived: Path) -> None:
    pairs = pointing_pairs(load_manifest(derived))
    where = {}
    truth = {}
    for k, pair in enumerate(pairs):
        with Image.open(pair.generated) as picture:
            picture = picture.convert("RGB")
            width, height = picture.size
        box = pair.box
        centre = ((box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height)
        # every third map points at the box's centre, the others at the top left corner
        where[_digest(picture)] = centre if k % 3 == 0 else (0.0, 0.0)
        truth[pair.id] = k % 3 == 0 or inside((width / 64, height / 64), box)
    records = play(None, pairs, explain=_pointing_at(where), seed=3)
    assert [r.map_hit for r in records] == [truth[p.id] for p in pairs]
    table = pointing_table(records)
    everything = table["rows"][-1]
    assert everything["pattern"] == "all" and everything["pairs"] == len(pairs)
    wins = sum(r.map_hit and not r.centre_hit for r in records)
    losses = sum(r.centre_hit and not r.map_hit for r in records)
    assert (everything["centre_wins"], everything["centre_losses"]) == (wins, losses)
    assert everything["p_vs_centre"] == sign_test(wins, losses)
    assert everything["map"] == pytest.approx(np.mean([r.map_hit for r in records]))
    assert everything["random"] == pytest.approx(np.mean([r.random_hit for r in records]))
    per_group = {row["pattern"]: row["pairs"] for row in table["rows"][:-1]}
    assert sum(per_group.values()) == len(pairs)
    # the random points are seeded
    again = play(None, pairs, explain=_pointing_at(where), seed=3)
    assert [r.random_hit for r in again] == [r.random_hit for r in records]


def test_a_real_map_beats_the_centre_on_pasted_corners(tiny_run: Path, tmp_path: Path) -> None:
    """Known answers: originals pasted into a corner of a noisy ground, boxes written as the
    held-out family writes them; the map finds each, the centre none."""
    from artsim.data.manifest.items import Item
    from artsim.data.manifest.manifest import write_manifest

    rng = np.random.default_rng(0)
    items = []
    for k in range(4):
        original = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize(
            (64, 64), Image.Resampling.NEAREST
        )
        ground = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize(
            (128, 128), Image.Resampling.BICUBIC
        )
        left, top = [(0, 0), (64, 0), (0, 64), (64, 64)][k]
        ground.paste(original, (left, top))
        original.save(tmp_path / f"o{k}.png")
        ground.save(tmp_path / f"g{k}.png")
        items.append(Item(id=f"o{k}", group=f"o{k}", role="original", image=tmp_path / f"o{k}.png"))
        box = f"{left},{top},{left + 64},{top + 64}"
        metadata = {"family": "heldout", "pattern": "collage", "box": box}
        items.append(
            Item(
                id=f"o{k}~ho0",
                group=f"o{k}",
                role="generated",
                image=tmp_path / f"g{k}.png",
                metadata=metadata,
            )
        )
    manifest = load_manifest(write_manifest(items, tmp_path / "manifest.csv"))
    embedder = Embedder.from_run(tiny_run, cache_dir=False)
    # half-side windows: one of them is exactly each pasted original
    halves = functools.partial(match_map, grid=WindowGrid((0.5,), (3,)))
    records = play(embedder, pointing_pairs(manifest), explain=halves)
    assert [r.map_hit for r in records] == [True] * 4
    assert [r.centre_hit for r in records] == [True] * 4  # the centre is every box's corner
    row = pointing_table(records)["rows"][0]
    assert row["pattern"] == "collage" and row["map"] == 1.0 and row["box_share"] == 0.25
