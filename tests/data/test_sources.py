"""The full corpus's extra packages: icons, emoji and game art read from (fake) unpacked trees."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artsim.data.corpora.demo import PackageTree, corpus_finders, select_originals
from artsim.data.corpora.sources import GameArt, find_faenza_icons, find_game_art, find_noto_emoji
from artsim.errors import DataError


def _png(path: Path, seed: int, size: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _tree(root: Path, name: str = "fake-data") -> PackageTree:
    return PackageTree(name, "1.0", "GPL-2", root)


def test_game_art_skips_ui_folders_and_collapses_animation_frames(tmp_path: Path) -> None:
    images = tmp_path / "usr/share/games/fake/images"
    for k in range(3):
        _png(images / "creatures" / "mr_tree" / f"walk-{k}.png", k)
    _png(images / "creatures" / "snowball" / "left-0.png", 5)
    _png(images / "engine" / "editor" / "cursor.png", 6)
    spec = GameArt("fake-data", "usr/share/games/fake/images", "someone", skip_parts=("engine",))
    found = find_game_art(_tree(tmp_path), spec)
    assert len(found) == 4  # the engine's picture is not artwork
    walk = [c for c in found if "mr_tree" in c.id]
    assert {c.variant_key for c in walk} == {"fake-data/creatures/mr_tree/walk"}
    assert walk[0].text == "mr tree walk, fake game art" and walk[0].category == "creatures"
    chosen = select_originals({"fake-data": found}, 10)
    assert len(chosen) == 2  # one frame of the walk, the snowball


def test_faenza_keeps_the_largest_real_file_per_icon(tmp_path: Path) -> None:
    root = tmp_path / "usr/share/icons/Faenza"
    _png(root / "apps" / "48" / "gimp.png", 1, 48)
    _png(root / "apps" / "96" / "gimp.png", 2, 96)
    _png(root / "places" / "64" / "folder.png", 3, 64)
    (root / "places" / "96").mkdir(parents=True)
    (root / "places" / "96" / "folder-alias.png").symlink_to(root / "places" / "64" / "folder.png")
    _png(tmp_path / "usr/share/icons/Faenza-Dark/apps/96/gimp.png", 4, 96)
    found = find_faenza_icons(_tree(tmp_path, "faenza-icon-theme"))
    by_title = {c.title: c for c in found}
    assert set(by_title) == {"gimp", "folder"}
    assert by_title["gimp"].image == root / "apps" / "96" / "gimp.png"
    assert by_title["gimp"].text == "gimp icon"


DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@pytest.mark.skipif(not DEJAVU.is_file(), reason="needs a TrueType font with symbols")
def test_emoji_are_rendered_once_and_named(tmp_path: Path) -> None:
    font = tmp_path / "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
    font.parent.mkdir(parents=True)
    shutil.copyfile(DEJAVU, font)  # any font works: the finder reads its cmap and draws it
    tree = _tree(tmp_path, "fonts-noto-color-emoji")
    found = find_noto_emoji(tree, tmp_path / "rendered")
    snowman = next(c for c in found if c.id == "emoji.u02603")
    assert snowman.text == "snowman emoji" and snowman.image.is_file()
    assert all(int(c.id.removeprefix("emoji.u"), 16) >= 0x2000 for c in found)
    first = snowman.image.read_bytes()
    again = next(c for c in find_noto_emoji(tree, tmp_path / "rendered") if c.id == snowman.id)
    assert again.image.read_bytes() == first


def test_corpus_finders() -> None:
    assert set(corpus_finders("demo")) == {"openclipart-png", "tuxpaint-stamps-default"}
    full = corpus_finders("full")
    assert len(full) >= 9 and set(corpus_finders("demo")) < set(full)
    assert not [name for name in full if name.startswith(("wesnoth", "gcompris"))]
    assert "pysiogame" not in full and "flare-game" not in full  # external evaluation sets
    with pytest.raises(DataError, match="corpus must be one of"):
        corpus_finders("huge")
