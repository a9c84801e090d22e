"""A manifest from a plain folder of images (captions from file names, categories from folders)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from artsim.cli.data import main
from artsim.data.corpora.folder import caption_from_name, originals_from_folder
from artsim.data.manifest.manifest import load_manifest


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


def test_file_names_with_outer_spaces_give_ids_a_manifest_keeps(tmp_path):
    images = tmp_path / "images"
    _picture(images / " red fox .png", 1)
    _picture(images / "red fox.png", 2)  # the same id once stripped: kept with its suffix
    _picture(images / " red fox.png", 4)  # the same name with its suffix: the first is kept
    _picture(images / "owl.png", 3)
    manifest = load_manifest(originals_from_folder(images, tmp_path / "out"))
    assert not manifest.errors
    assert sorted(manifest.by_id()) == ["owl", "red fox", "red fox.png"]


def test_two_pictures_with_one_stem_are_both_kept(tmp_path):
    images = tmp_path / "images"
    _picture(images / "owl.jpg", 1)
    _picture(images / "owl.png", 2)  # another picture, not a copy
    _picture(images / "cat.png", 3)
    manifest = load_manifest(originals_from_folder(images, tmp_path / "out"))
    assert not manifest.errors
    by_id = manifest.by_id()
    assert sorted(by_id) == ["cat", "owl", "owl.png"]
    assert by_id["owl"].text == by_id["owl.png"].text == "owl"
    assert by_id["owl"].image != by_id["owl.png"].image  # both files copied, none overwritten


def test_ids_that_flatten_to_one_file_name_keep_their_own_pictures(tmp_path):
    """``x/owl.png`` (id ``x/owl``) and ``x.owl.png`` (id ``x.owl``) are both copied into the
    flat originals folder as ``x.owl.png``: the second must not overwrite the first."""
    images = tmp_path / "images"
    _picture(images / "x" / "owl.png", 1)
    _picture(images / "x.owl.png", 2)
    manifest = load_manifest(originals_from_folder(images, tmp_path / "out"))
    assert not manifest.errors
    by_id = manifest.by_id()
    assert sorted(by_id) == ["x.owl", "x/owl"]
    assert by_id["x.owl"].image != by_id["x/owl"].image
    for item_id, seed in (("x/owl", 1), ("x.owl", 2)):
        expected = np.random.default_rng(seed).integers(0, 255, (48, 48, 3), dtype=np.uint8)
        assert np.array_equal(np.asarray(Image.open(by_id[item_id].image)), expected)


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


def test_keep_parts_takes_only_the_named_sub_folders(tmp_path):
    images = tmp_path / "images"
    _picture(images / "core" / "portraits" / "knight.png", 1)
    _picture(images / "core" / "sheets" / "knight_walk.png", 2)
    path = originals_from_folder(images, tmp_path / "out", keep_parts=("portraits",))
    assert set(load_manifest(path).by_id()) == {"core/portraits/knight"}


def test_external_set_from_a_fake_package_with_the_heldout_family(tmp_path, monkeypatch):
    from artsim.data.corpora import folder
    from artsim.data.corpora.demo import PackageTree

    root = tmp_path / "pkg"
    for k, name in enumerate(["knight", "witch", "goblin"]):
        _picture(root / "art" / "portraits" / f"{name}.png", k)
    _picture(root / "art" / "sheets" / "walk.png", 9)
    tree = PackageTree("fake-art", "1.0", "CC-BY-SA-3.0+", root)
    monkeypatch.setattr(folder, "fetch_package", lambda package, cache: tree)
    spec = folder.ExternalSource("fake-art", "art", "someone", keep_parts=("portraits",))
    monkeypatch.setitem(folder.EXTERNAL_SOURCES, "fake", spec)
    path = folder.build_external_corpus(
        tmp_path / "out", source="fake", family="heldout", per_original=2, cache_dir=tmp_path
    )
    manifest = load_manifest(path)
    assert len(manifest.originals()) == 3 and len(manifest.generated()) == 6
    assert {item.metadata.get("family") for item in manifest.generated()} == {"heldout"}
    assert {item.source for item in manifest.originals()} == {"fake-art 1.0 (CC-BY-SA-3.0+)"}


def test_unknown_external_source_is_one_line(tmp_path, capsys):
    assert main(["external", "--source", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown external source 'nope'" in err and "art4apps" in err and "flare" in err
