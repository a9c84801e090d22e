"""A manifest from a plain folder of images (captions from file names, categories from folders)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from artsim.data.cli import main
from artsim.data.folder import caption_from_name, originals_from_folder
from artsim.data.manifest import load_manifest


def _picture(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def test_caption_from_name_drops_separators_and_numbers():
    assert caption_from_name("baby_rabbit-2") == "baby rabbit"
    assert caption_from_name("Red Fox") == "red fox"


def test_originals_from_folder(tmp_path):
    images = tmp_path / "images"
    _picture(images / "animals" / "red_fox.png", 1)
    _picture(images / "food" / "bread.png", 2)
    _picture(images / "food" / "bread_copy.bmp", 2)  # the same pixels again: one original
    (images / "notes.txt").write_text("not an image")
    path = originals_from_folder(images, tmp_path / "out", source="test set")
    manifest = load_manifest(path)
    assert not manifest.errors
    by_id = manifest.by_id()
    assert set(by_id) == {"animals/red_fox", "food/bread"}
    fox = by_id["animals/red_fox"]
    assert (fox.role, fox.group, fox.text, fox.source) == (
        "original",
        "animals/red_fox",
        "red fox",
        "test set",
    )
    assert fox.metadata["category"] == "animals"


def test_folder_command_adds_stand_ins(tmp_path, capsys):
    images = tmp_path / "images"
    for k, name in enumerate(["cat", "dog", "owl"]):
        _picture(images / f"{name}.png", k)
    out = tmp_path / "out"
    assert main(["folder", str(images), "--out", str(out), "--per-original", "2"]) == 0
    manifest = load_manifest(out / "manifest.csv")
    assert len(manifest.originals()) == 3 and len(manifest.generated()) == 6
    assert "wrote" in capsys.readouterr().out


def test_folder_without_images_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["folder", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no images" in capsys.readouterr().err
