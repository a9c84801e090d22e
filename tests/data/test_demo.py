"""The demo corpus: parsing fake package trees (no network), plus one real build marked slow."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from artsim.data.corpora import debian, demo
from artsim.data.corpora.debian import (
    PackageTree,
    default_cache_dir,
    fetch_package,
    read_copyright_licence,
)
from artsim.data.corpora.demo import (
    OPENCLIPART,
    TUXPAINT,
    build_demo_corpus,
    find_openclipart_images,
    find_tuxpaint_stamps,
    image_fingerprint,
    read_stamp_description,
    select_originals,
)
from artsim.data.manifest.manifest import load_manifest
from artsim.errors import DataError

DEP5_COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tuxpaint-stamps

Files: *
Copyright: 2002-2022 by Bill Kendrick
License: GPL-2

Files: debian/*
Copyright: 2017-2022 Jonathan Carter
License: GPL-2+
"""
FREE_FORM_COPYRIGHT = """\
This package was debianized by someone.

Copyright:

 creative commons Public Domain
 Dedication
"""


def _png(path: Path, size: tuple[int, int], colour: tuple[int, ...], mode: str = "RGBA") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new(mode, size, colour)
    # A second colour, so images of one size but different colours also differ in content.
    image.paste(tuple(255 - c for c in colour), (0, 0, size[0] // 2, size[1] // 2))
    image.save(path)


def _unpacked(cache: Path, package: str, version: str, copyright_text: str) -> Path:
    root = cache / "unpacked" / package
    doc = root / "usr" / "share" / "doc" / package
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(copyright_text, encoding="utf-8")
    (root / debian.UNPACKED_MARKER).write_text(json.dumps({"version": version}), encoding="utf-8")
    return root


def _fake_tuxpaint(cache: Path) -> Path:
    root = _unpacked(cache, TUXPAINT, "2022.06.04-1", DEP5_COPYRIGHT)
    stamps = root / "usr" / "share" / "tuxpaint" / "stamps"
    _png(stamps / "animals/birds/robin.png", (64, 48), (200, 40, 40, 255))
    (stamps / "animals/birds/robin.txt").write_text(
        "\ufeffA robin.\nes.utf8=Un petirrojo.\nca@valencia.utf8=Un pit-roig.\nfr.utf8=\n",
        encoding="utf-8",
    )
    _png(stamps / "animals/birds/robin_mirror.png", (64, 48), (40, 40, 200, 255))
    _png(stamps / "food/apple.png", (40, 40), (20, 160, 20, 255))
    (stamps / "food/apple.txt").write_text("A green apple.\n", encoding="utf-8")
    # Same pixels as apple.png under another name: a duplicate.
    shutil.copyfile(stamps / "food/apple.png", stamps / "food/green_apple.png")
    (stamps / "food/green_apple.txt").write_text("Another green apple.\n", encoding="utf-8")
    _png(stamps / "food/crumb.png", (20, 20), (90, 60, 30, 255))
    (stamps / "food/crumb.txt").write_text("A crumb.\n", encoding="utf-8")
    _png(stamps / "food/nameless.png", (50, 50), (1, 2, 3, 255))
    _png(stamps / "space/moon.png", (50, 70), (230, 230, 200), mode="RGB")
    (stamps / "space/moon.txt").write_text("The Moon.\nes.utf8=La Luna.\n", encoding="utf-8")
    return root


def _fake_openclipart(cache: Path) -> Path:
    root = _unpacked(cache, OPENCLIPART, "1:0.18+dfsg-19", FREE_FORM_COPYRIGHT)
    png = root / "usr" / "share" / "openclipart" / "png"
    _png(png / "science/astronomy/full_moon_dan_gerhards_01.png", (80, 80), (250, 250, 210, 255))
    (png / "geography").mkdir(parents=True)
    (png / "geography/full_moon_link_01.png").symlink_to(
        "../science/astronomy/full_moon_dan_gerhards_01.png"
    )
    _png(png / "shapes/jigsaw/jigsaw_red_01.png", (60, 60), (220, 0, 0, 255))
    _png(png / "shapes/jigsaw/jigsaw_red_02.png", (60, 60), (200, 0, 0, 255))
    _png(png / "signs_and_symbols/stop_sign_.png", (70, 50), (180, 0, 0, 255))
    (png / "signs_and_symbols/broken_01.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return root


@pytest.fixture
def fake_cache(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    _fake_tuxpaint(cache)
    _fake_openclipart(cache)
    return cache


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("apt-get must not run when the cache is unpacked")

    monkeypatch.setattr(debian, "_apt_download", refuse)


def _trees(cache: Path) -> dict[str, PackageTree]:
    return {package: fetch_package(package, cache) for package in (TUXPAINT, OPENCLIPART)}


def test_read_stamp_description(tmp_path: Path) -> None:
    path = tmp_path / "robin.txt"
    path.write_text(
        "\ufeffA robin.\n\nes.utf8=Un petirrojo.\nca@valencia.utf8=Un pit-roig.\n"
        "pt_BR.utf8=Um pisco.\nfr.utf8=\n",
        encoding="utf-8",
    )
    english, translations = read_stamp_description(path)
    assert english == "A robin."
    assert translations == {
        "es": "Un petirrojo.",
        "ca@valencia": "Un pit-roig.",
        "pt_BR": "Um pisco.",
    }


def test_read_copyright_licence(tmp_path: Path) -> None:
    dep5 = tmp_path / "dep5"
    dep5.write_text(DEP5_COPYRIGHT, encoding="utf-8")
    free_form = tmp_path / "free"
    free_form.write_text(FREE_FORM_COPYRIGHT, encoding="utf-8")
    unknown = tmp_path / "unknown"
    unknown.write_text("All rights reserved.\n", encoding="utf-8")
    assert read_copyright_licence(dep5) == "GPL-2"
    assert read_copyright_licence(free_form) == "public domain"
    assert read_copyright_licence(unknown) == "see its copyright file"
    # A bare "License:" heading over GPL prose (pingus-data's file) names the GPL and version.
    gpl_prose = tmp_path / "gpl"
    gpl_prose.write_text(
        "Copyright:\n\n    Copyright (C) 1999-2007 Someone\n\nLicense:\n\n"
        "    This package is free software; you can redistribute it and/or modify\n"
        "    it under the terms of the GNU General Public License as published by\n"
        "    the Free Software Foundation; either version 2 of the License, or\n"
        "    (at your option) any later version.\n",
        encoding="utf-8",
    )
    assert read_copyright_licence(gpl_prose) == "GPL-2+"


def test_unpacked_cache_is_reused_without_apt(fake_cache: Path, no_network: None) -> None:
    trees = _trees(fake_cache)
    assert trees[TUXPAINT].source == "tuxpaint-stamps-default 2022.06.04-1 (GPL-2)"
    assert trees[OPENCLIPART].source == "openclipart-png 1:0.18+dfsg-19 (public domain)"


def test_find_tuxpaint_stamps(fake_cache: Path, no_network: None) -> None:
    stamps = {
        candidate.id: candidate for candidate in find_tuxpaint_stamps(_trees(fake_cache)[TUXPAINT])
    }
    # No mirrored copy, no stamp without a description.
    assert sorted(stamps) == [
        "tuxpaint.animals.birds.robin",
        "tuxpaint.food.apple",
        "tuxpaint.food.crumb",
        "tuxpaint.food.green_apple",
        "tuxpaint.space.moon",
    ]
    robin = stamps["tuxpaint.animals.birds.robin"]
    assert (robin.text, robin.lang, robin.title) == ("A robin.", "en", "robin")
    assert robin.artist == "Tux Paint contributors"
    assert dict(robin.metadata) == {"category": "animals", "text_es": "Un petirrojo."}
    assert "text_es" not in stamps["tuxpaint.food.apple"].metadata
    assert robin.source == "tuxpaint-stamps-default 2022.06.04-1 (GPL-2)"


def test_find_openclipart_images(fake_cache: Path, no_network: None) -> None:
    images = {
        candidate.id: candidate
        for candidate in find_openclipart_images(_trees(fake_cache)[OPENCLIPART])
    }
    # The symlinked copy is not a second drawing.
    assert "openclipart.geography.full_moon_link_01" not in images
    moon = images["openclipart.science.astronomy.full_moon_dan_gerhards_01"]
    assert moon.title == "full moon dan gerhards"
    assert moon.text == "full moon dan gerhards, astronomy science clip art"
    assert dict(moon.metadata) == {"category": "science", "keywords": "astronomy, science"}
    assert moon.lang == "en"
    stop = images["openclipart.signs_and_symbols.stop_sign_"]
    assert stop.title == "stop sign"
    assert stop.text == "stop sign, signs and symbols clip art"
    red_1 = images["openclipart.shapes.jigsaw.jigsaw_red_01"]
    red_2 = images["openclipart.shapes.jigsaw.jigsaw_red_02"]
    assert red_1.variant_key == red_2.variant_key


def test_image_fingerprint_refuses_tiny_broken_and_huge(tmp_path: Path) -> None:
    _png(tmp_path / "ok.png", (40, 32), (1, 2, 3, 255))
    _png(tmp_path / "tiny.png", (40, 31), (1, 2, 3, 255))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    # Only the header is read for a PNG this big, so the test stays fast.
    Image.new("1", (4000, 1001)).save(tmp_path / "huge.png")
    assert image_fingerprint(tmp_path / "ok.png") is not None
    assert image_fingerprint(tmp_path / "tiny.png") is None
    assert image_fingerprint(tmp_path / "broken.png") is None
    assert image_fingerprint(tmp_path / "huge.png") is None


def test_select_originals_is_balanced_and_skips_bad_images(
    fake_cache: Path, no_network: None
) -> None:
    trees = _trees(fake_cache)
    candidates = {
        TUXPAINT: find_tuxpaint_stamps(trees[TUXPAINT]),
        OPENCLIPART: find_openclipart_images(trees[OPENCLIPART]),
    }
    chosen = select_originals(candidates, max_originals=100, seed=0)
    ids = [candidate.id for candidate in chosen]
    assert ids == sorted(ids)
    assert "tuxpaint.food.crumb" not in ids  # 20 px
    assert "openclipart.signs_and_symbols.broken_01" not in ids
    assert ("tuxpaint.food.apple" in ids) != ("tuxpaint.food.green_apple" in ids)  # same pixels
    jigsaws = [item for item in ids if "jigsaw_red" in item]
    assert len(jigsaws) == 1  # variants of one drawing
    assert len(ids) == 3 + 3

    two = select_originals(candidates, max_originals=2, seed=0)
    assert sorted(candidate.package for candidate in two) == [OPENCLIPART, TUXPAINT]
    # One package short: the other fills in.
    five = select_originals({**candidates, TUXPAINT: candidates[TUXPAINT][:1]}, 5, seed=0)
    assert [candidate.package for candidate in five].count(OPENCLIPART) == 3
    assert len(five) == 4
    assert select_originals(candidates, 4, seed=3) == select_originals(candidates, 4, seed=3)


def test_build_demo_corpus_from_the_cache(
    fake_cache: Path, no_network: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from artsim.progress import Reporter

    class Notes(Reporter):
        def __init__(self):
            self.lines: list[str] = []

        def note(self, text: str, level: str = "info") -> None:
            self.lines.append(text)

    notes = Notes()  # the counts are a note, shown by whoever renders the reporter
    first = build_demo_corpus(
        tmp_path / "a", per_original=2, seed=0, cache_dir=fake_cache, reporter=notes
    )
    second = build_demo_corpus(tmp_path / "b", per_original=2, seed=0, cache_dir=fake_cache)
    assert first == tmp_path / "a" / "manifest.csv"
    assert first.read_bytes() == second.read_bytes()
    assert (tmp_path / "a" / "originals.csv").is_file()

    manifest = load_manifest(first)
    assert not manifest.problems
    originals = manifest.originals()
    assert len(originals) == 6
    assert len(manifest.generated()) == 12
    robin = manifest.by_id()["tuxpaint.animals.birds.robin"]
    assert robin.metadata["package"] == TUXPAINT
    assert robin.metadata["text_es"] == "Un petirrojo."
    assert all(item.source for item in originals)
    assert (tmp_path / "a" / "originals" / "tuxpaint.animals.birds.robin.png").is_file()
    printed = " ".join(notes.lines)
    assert "6 originals" in printed and "12 generated" in printed


def test_data_demo_command_says_what_it_built_once(
    fake_cache: Path, no_network: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from artsim.cli.data import main

    out = tmp_path / "corpus"
    argv = ["demo", "--out", str(out), "--cache-dir", str(fake_cache), "--per-original", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert "demo corpus: 6 originals" in text
    assert text.count(f"wrote {out / 'manifest.csv'}") == 1


def test_fetch_unpacks_a_deb_found_in_the_cache(tmp_path: Path, no_network: None) -> None:
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        pytest.skip("dpkg-deb is not installed (Debian/Ubuntu only)")
    package_dir = tmp_path / "build"
    (package_dir / "DEBIAN").mkdir(parents=True)
    (package_dir / "DEBIAN" / "control").write_text(
        "Package: artsim-fake\nVersion: 1.2-3\nArchitecture: all\n"
        "Maintainer: Nobody <nobody@example.org>\nDescription: test package\n",
        encoding="utf-8",
    )
    doc = package_dir / "usr" / "share" / "doc" / "artsim-fake"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(DEP5_COPYRIGHT, encoding="utf-8")
    cache = tmp_path / "cache"
    cache.mkdir()
    subprocess.run(
        [dpkg_deb, "--build", str(package_dir), str(cache / "artsim-fake_1.2-3_all.deb")],
        check=True,
        capture_output=True,
    )
    tree = fetch_package("artsim-fake", cache)
    assert tree.source == "artsim-fake 1.2-3 (GPL-2)"
    assert (tree.root / "usr/share/doc/artsim-fake/copyright").is_file()
    (cache / "artsim-fake_1.2-3_all.deb").unlink()
    assert fetch_package("artsim-fake", cache) == tree  # the unpacked tree is enough


@pytest.mark.parametrize(
    "package", ["wesnoth-1.16-data", "gcompris-qt-data", "Wesnoth", "gcompris"]
)
def test_held_back_packages_are_refused_before_any_download(
    package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_subprocess(*args, **kwargs):
        raise AssertionError("nothing may be run for a held-back package")

    monkeypatch.setattr(debian.subprocess, "run", no_subprocess)
    with pytest.raises(DataError, match="held back") as caught:
        fetch_package(package, tmp_path)
    assert "\n" not in str(caught.value)
    assert not any(tmp_path.iterdir())


def test_missing_apt_get_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="apt-get not found") as caught:
        fetch_package(TUXPAINT, tmp_path)
    assert "\n" not in str(caught.value)


def test_apt_update_runs_once_when_lists_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_apt(apt_get: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        if args[0] == "download" and ("update",) in calls:
            (cwd / f"{args[1]}_1.0_all.deb").write_bytes(b"")
            return subprocess.CompletedProcess(args, 0, "", "")
        if args[0] == "download":
            return subprocess.CompletedProcess(
                args, 100, "", "E: Unable to locate package tuxpaint-stamps-default"
            )
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(debian.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(debian, "_apt", fake_apt)
    deb = debian._apt_download(TUXPAINT, tmp_path)
    assert deb.name == f"{TUXPAINT}_1.0_all.deb"
    assert calls == [("download", TUXPAINT), ("update",), ("download", TUXPAINT)]


def test_apt_failure_names_the_apt_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_apt(apt_get: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        if args[0] == "update":
            return subprocess.CompletedProcess(args, 0, "", "")
        stderr = "W: something harmless\nE: Unable to locate package nope"
        return subprocess.CompletedProcess(args, 100, "", stderr)

    monkeypatch.setattr(debian.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(debian, "_apt", failing_apt)
    with pytest.raises(DataError, match="E: Unable to locate package nope"):
        debian._apt_download("nope", tmp_path)


def test_default_cache_dir_follows_artsim_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTSIM_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "debs"
    monkeypatch.delenv("ARTSIM_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "artsim" / "debs"


@pytest.mark.slow
def test_real_demo_corpus(tmp_path: Path) -> None:
    """Fetches the two real packages (about 290 MB the first time, then cached)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("apt-get and dpkg-deb are needed to fetch the Debian packages")
    try:
        for package in demo.PACKAGES:
            fetch_package(package, default_cache_dir())
    except DataError as error:
        pytest.skip(f"cannot fetch the demo packages here: {error}")
    path = build_demo_corpus(tmp_path / "demo", max_originals=20, per_original=2)
    manifest = load_manifest(path)
    assert not manifest.errors
    originals = manifest.originals()
    assert len(originals) == 20
    packages = [item.metadata["package"] for item in originals]
    assert packages.count(TUXPAINT) == packages.count(OPENCLIPART) == 10
    assert len(manifest.generated()) == 40
    assert {item.lang for item in manifest.generated()} == {"en", "es"}
    assert all(item.text for item in originals)
    again = build_demo_corpus(tmp_path / "again", max_originals=20, per_original=2)
    assert again.read_bytes() == path.read_bytes()
