"""Where the held-out family puts the original: the ``box`` and ``source_box`` of each derivative."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from artsim.data.corpora.synthetic import make_synthetic_manifest
from artsim.data.families.heldout.canvas import Placement
from artsim.data.families.heldout.derive import derive_heldout_manifest, parse_box
from artsim.data.families.heldout.transforms import PATTERN_NAMES, apply_pattern, derive_one
from artsim.data.manifest.manifest import load_manifest

# patterns that move, cut or frame the picture without repeating it outside the box
FRAMING = ("collage", "mosaic", "screenshot_frame", "meme_caption", "inset")


def _red_box(picture: Image.Image) -> tuple[int, int, int, int]:
    pixels = np.asarray(picture, dtype=np.int32)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    ys, xs = np.nonzero(red)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _coded(size: tuple[int, int] = (200, 150)) -> Image.Image:
    """Each pixel's red and green say where it is in the picture (its x and y fractions)."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack(
        [xs / (width - 1) * 255, ys / (height - 1) * 255, np.full_like(xs, 128)], axis=-1
    )
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


@pytest.mark.parametrize("name", FRAMING)
def test_the_box_is_where_the_original_went(name: str) -> None:
    original = Image.new("RGB", (180, 120), (255, 0, 0))
    pool = [Image.new("RGB", (60, 60), (0, 0, 255))]
    for seed in range(6):
        derived = derive_one(original, name, np.random.default_rng(seed), pool)
        assert derived.placement.box is not None
        box = np.array(derived.placement.box)
        found = np.array(_red_box(derived.picture))
        # a tilted collage has soft edges: a pixel or two either way
        assert np.abs(box - found).max() <= 3, (name, seed, box, found)
        assert derived.placement.source == pytest.approx((0, 0, 1, 1), abs=1e-6) or name in (
            "mosaic",  # a mosaic cell is a square crop of the original
        )


@pytest.mark.parametrize(
    "name", ["crop_pad", "mosaic", "screenshot_frame", "collage", "inset", "detail"]
)
def test_the_source_box_is_the_part_of_the_original_shown(name: str) -> None:
    original = _coded()
    for seed in range(6):
        derived = derive_one(original, name, np.random.default_rng(seed))
        left, top, right, bottom = derived.placement.box
        s0, t0, s1, t1 = derived.placement.source
        assert 0 <= s0 < s1 <= 1 and 0 <= t0 < t1 <= 1
        pixels = np.asarray(derived.picture, dtype=np.float32)
        # the pixel a third of the way into the box shows the point a third into the source
        for u, v in ((0.3, 0.3), (0.5, 0.5), (0.7, 0.6)):
            x, y = left + u * (right - left), top + v * (bottom - top)
            red, green, _ = pixels[int(y), int(x)]
            expected = (s0 + u * (s1 - s0)) * 255, (t0 + v * (t1 - t0)) * 255
            # a tilted collage moves a point off-centre by up to sin(15 degrees) of the box
            tolerance = 40 if name == "collage" and (u, v) != (0.5, 0.5) else 12
            assert abs(red - expected[0]) <= tolerance, (name, seed, u, v)
            assert abs(green - expected[1]) <= tolerance, (name, seed, u, v)


def test_placements_do_not_change_the_pictures() -> None:
    original = _coded((160, 120))
    for name in PATTERN_NAMES:
        for seed in range(3):
            picture, applied = apply_pattern(original, name, np.random.default_rng(seed))
            derived = derive_one(original, name, np.random.default_rng(seed))
            assert derived.pattern == applied
            assert derived.picture.tobytes() == picture.tobytes()
            box = derived.placement.box
            if box is not None:
                assert 0 <= box[0] < box[2] <= picture.width + 1e-6
                assert 0 <= box[1] < box[3] <= picture.height + 1e-6


def test_placement_arithmetic() -> None:
    whole = Placement.whole((100, 50))
    # the right half of the input, pasted at 10,10 in a picture twice as big
    moved = whole.after((50, 0, 100, 50), (10, 10, 110, 110))
    assert moved.box == pytest.approx((10, 10, 110, 110))
    assert moved.source == pytest.approx((0.5, 0, 1, 1))
    assert moved.scaled((200, 200), (100, 100)).box == pytest.approx((5, 5, 55, 55))
    assert whole.after((200, 200, 300, 300), (0, 0, 10, 10)).box is None


def test_manifest_records_boxes(tmp_path) -> None:
    manifest = load_manifest(make_synthetic_manifest(tmp_path / "src", n_groups=3, image_size=96))
    written = derive_heldout_manifest(manifest, tmp_path / "out", per_original=len(PATTERN_NAMES))
    derived = load_manifest(written)
    assert not derived.errors
    originals = {item.group: item for item in derived.originals()}
    for item in derived.generated():
        box = parse_box(item.metadata.get("box"))
        source = parse_box(item.metadata.get("source_box"))
        assert box is not None and source is not None, item.id
        with Image.open(item.image) as picture:
            assert box[2] <= picture.width + 1 and box[3] <= picture.height + 1
        with Image.open(originals[item.group].image) as picture:
            assert source[2] <= picture.width + 1 and source[3] <= picture.height + 1
    assert parse_box("") is None and parse_box("1,2,3") is None and parse_box("5,5,5,9") is None


def test_inset_is_drawn_only_when_asked_for(tmp_path) -> None:
    from artsim.data.families.heldout.transforms import EXTRA_PATTERNS, derive_heldout_placed
    from artsim.errors import DataError

    assert {"inset", "detail"} <= set(EXTRA_PATTERNS) and not set(EXTRA_PATTERNS) & set(
        PATTERN_NAMES
    )
    original = _coded((160, 120))
    drawn = derive_heldout_placed(original, np.random.default_rng(0), 3, patterns=["inset"])
    assert [d.pattern for d in drawn] == ["inset"] * 3
    for derived in drawn:
        left, top, right, bottom = derived.placement.box
        share = (right - left) * (bottom - top) / (derived.picture.width * derived.picture.height)
        assert 0.02 < share < 0.25  # a small part of the picture
    manifest = load_manifest(make_synthetic_manifest(tmp_path / "src", n_groups=2, image_size=64))
    written = derive_heldout_manifest(
        manifest, tmp_path / "out", per_original=2, patterns=["inset"]
    )
    assert {i.metadata["pattern"] for i in load_manifest(written).generated()} == {"inset"}
    with pytest.raises(DataError, match="unknown heldout pattern"):
        derive_heldout_manifest(manifest, tmp_path / "bad", patterns=["nope"])


def test_cli_derives_the_opt_in_patterns(synthetic_manifest, tmp_path, capsys) -> None:
    from artsim.cli.data import main

    out = tmp_path / "detail"
    args = ["derive", str(synthetic_manifest), "--out", str(out), "--family", "heldout"]
    assert main([*args, "--patterns", "detail,inset", "--per-original", "2"]) == 0
    derived = load_manifest(out / "manifest.csv")
    assert {i.metadata["pattern"] for i in derived.generated()} == {"detail", "inset"}
    assert main([*args, "--patterns", "bogus"]) != 0
    assert "unknown heldout pattern" in capsys.readouterr().err
    training = ["derive", str(synthetic_manifest), "--out", str(tmp_path / "t"), "--patterns", "x"]
    assert main(training) == 2
    assert "go with --family heldout" in capsys.readouterr().err
