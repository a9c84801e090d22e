"""Stand-in generated items derived from the originals of the synthetic data set."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

from artsim.data.corpora.synthetic import make_synthetic_manifest
from artsim.data.families.training.derive import derive_manifest, stable_seed
from artsim.data.families.training.prompts import make_prompt
from artsim.data.families.training.transforms import (
    GENERATED_MAX_SIDE,
    TRANSFORM_FAMILIES,
    TRANSFORMS,
)
from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import Manifest, load_manifest
from artsim.data.pictures.images import load_rgb
from artsim.errors import DataError

PER_ORIGINAL = 4
KNOWN_TRANSFORMS = {name for options in TRANSFORMS.values() for name in options} | {"jpeg"}


@pytest.fixture(scope="module")
def source_manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """Synthetic originals (300 px, so the 256 px cap matters), edited to cover the odd cases:
    g000 has no text, g001 is English with a Spanish caption in its metadata, g002 and g005 are
    Spanish originals (synthetic's own)."""
    folder = tmp_path_factory.mktemp("synthetic")
    manifest = load_manifest(make_synthetic_manifest(folder, n_groups=6, image_size=300))
    items = []
    for item in manifest.items:
        if item.id == "g000-orig":
            item = dataclasses.replace(item, text="", lang="")
        elif item.id == "g001-orig":
            item = dataclasses.replace(
                item, metadata={"category": "shapes", "text_es": "Una figura sobre un fondo."}
            )
        items.append(item)
    return Manifest(path=manifest.path, items=items)


@pytest.fixture(scope="module")
def derived(source_manifest: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    out = tmp_path_factory.mktemp("derived")
    return load_manifest(derive_manifest(source_manifest, out, per_original=PER_ORIGINAL, seed=0))


def _folder_digest(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_every_original_gets_its_stand_ins(source_manifest: Manifest, derived: Manifest) -> None:
    assert not derived.problems
    originals = source_manifest.originals()
    assert [item.id for item in derived.originals()] == [item.id for item in originals]
    groups = derived.groups()
    for original in originals:
        members = groups[original.group]
        generated = [item for item in members if item.role == "generated"]
        assert [item.id for item in generated] == [
            f"{original.id}~gen{k}" for k in range(PER_ORIGINAL)
        ]
    assert len(derived.generated()) == PER_ORIGINAL * len(originals)


def test_originals_are_copied_unchanged(source_manifest: Manifest, derived: Manifest) -> None:
    copies = derived.by_id()
    for original in source_manifest.originals():
        copy = copies[original.id]
        assert copy.image.parent == derived.root / "images"
        assert copy.image.read_bytes() == original.image.read_bytes()
        for name in ("group", "text", "lang", "artist", "title", "source"):
            assert getattr(copy, name) == getattr(original, name)
        assert dict(copy.metadata) == dict(original.metadata)


def test_stand_in_images_load_and_are_capped(derived: Manifest) -> None:
    for item in derived.generated():
        image = load_rgb(item.image)
        assert max(image.size) <= GENERATED_MAX_SIDE
        assert image.size[0] > 0 and image.size[1] > 0
        transforms = item.metadata["transforms"].split("+")
        assert 2 <= len(transforms) <= 3
        assert set(transforms) <= KNOWN_TRANSFORMS
        # JPEG exactly when the compression family was picked.
        assert (item.image.suffix == ".jpg") == ("jpeg" in transforms)


def test_texts_follow_the_original(derived: Manifest) -> None:
    groups = derived.groups()
    no_text = [item for item in groups["g000"] if item.role == "generated"]
    assert all(item.text == "" and item.lang == "" for item in no_text)

    spanish_originals = [
        item for item in groups["g002"] + groups["g005"] if item.role == "generated"
    ]
    assert all(item.lang == "es" and item.text for item in spanish_originals)
    assert any("sobre fondo" in item.text for item in spanish_originals)

    mixed = [item for item in groups["g001"] if item.role == "generated"]
    assert {item.lang for item in mixed} <= {"en", "es"}
    for item in mixed:
        if item.lang == "es":
            assert "figura" in item.text
        else:
            assert "background" in item.text or "square" in item.text or "triangle" in item.text


def test_spanish_metadata_gives_some_spanish_prompts() -> None:
    original = Item(
        id="x",
        group="x",
        role="original",
        image=Path("x.png"),
        text="A yellow lemon.",
        lang="en",
        title="lemon",
        metadata={"text_es": "Un limón amarillo."},
    )
    rng = np.random.default_rng(0)
    prompts = [make_prompt(original, rng) for _ in range(40)]
    languages = {lang for _, lang in prompts}
    assert languages == {"en", "es"}
    assert all("limón" in text for text, lang in prompts if lang == "es")
    assert all("Un limón" not in text for text, _ in prompts)  # lower-cased inside a prompt
    assert make_prompt(dataclasses.replace(original, text="", metadata={}), rng) == ("", "")


def test_same_seed_gives_identical_files(source_manifest: Manifest, tmp_path: Path) -> None:
    first = derive_manifest(source_manifest, tmp_path / "a", per_original=2, seed=7)
    second = derive_manifest(source_manifest, tmp_path / "b", per_original=2, seed=7)
    assert first.read_bytes() == second.read_bytes()
    assert _folder_digest(tmp_path / "a") == _folder_digest(tmp_path / "b")


def test_other_seed_gives_other_stand_ins(source_manifest: Manifest, tmp_path: Path) -> None:
    derive_manifest(source_manifest, tmp_path / "a", per_original=2, seed=0)
    derive_manifest(source_manifest, tmp_path / "b", per_original=2, seed=1)
    first, second = _folder_digest(tmp_path / "a"), _folder_digest(tmp_path / "b")
    generated = [name for name in first if "~gen" in name and name in second]
    differing = [name for name in generated if first[name] != second[name]]
    # Originals are copied unchanged; almost every stand-in differs.
    originals = [name for name in first if name.startswith("images/") and "~gen" not in name]
    assert originals
    assert all(first[name] == second[name] for name in originals)
    assert len(differing) >= len(generated) - 1
    assert (tmp_path / "a/manifest.csv").read_bytes() != (tmp_path / "b/manifest.csv").read_bytes()


def test_zero_per_original_copies_only_originals(source_manifest: Manifest, tmp_path: Path) -> None:
    derived = load_manifest(derive_manifest(source_manifest, tmp_path, per_original=0))
    assert not derived.generated()
    assert len(derived.originals()) == len(source_manifest.originals())


def test_refuses_a_manifest_without_originals(source_manifest: Manifest, tmp_path: Path) -> None:
    only_generated = Manifest(path=source_manifest.path, items=source_manifest.generated())
    with pytest.raises(DataError, match="no originals"):
        derive_manifest(only_generated, tmp_path)


def test_stable_seed_does_not_depend_on_the_process() -> None:
    # A fixed value: Python's hash() would change it from one process to the next.
    assert stable_seed(0, "g000-orig") == 9011452626579629860
    assert stable_seed(1, "g000-orig") != stable_seed(0, "g000-orig")


@pytest.mark.parametrize(
    "family", [family for family in TRANSFORM_FAMILIES if family != "compression"]
)
def test_every_transform_keeps_an_rgb_image(family: str) -> None:
    from PIL import Image

    from artsim.data.families.training.transforms import Canvas, Thumbnails

    image = Image.new("RGB", (40, 30), (200, 30, 30))
    canvas = Canvas(rng=np.random.default_rng(0), thumbnails=Thumbnails([]), own_index=0)
    for name, transform in TRANSFORMS[family].items():
        result = transform(image, canvas)
        assert result.mode == "RGB", name
        assert result.size == image.size, name


def test_refuses_to_overwrite_its_input(source_manifest: Manifest) -> None:
    with pytest.raises(DataError, match="overwrite"):
        derive_manifest(source_manifest, source_manifest.root)


def test_overlays_borrow_only_from_the_same_side_of_the_split(tmp_path: Path):
    """No stand-in carries a patch of an original from the other side of the split that
    `artsim train` makes by default (same seed, same fractions), calibration part included."""
    from artsim.data.manifest.split import carve_calibration, group_split
    from artsim.training.config import TrainConfig

    originals = load_manifest(make_synthetic_manifest(tmp_path / "src", n_groups=30, seed=1))
    originals = Manifest(path=originals.path, items=originals.originals())
    derived = load_manifest(derive_manifest(originals, tmp_path / "out", per_original=4, seed=2))
    config = TrainConfig()
    assignment = carve_calibration(
        group_split(derived.items, config.val_fraction, seed=2),
        derived.items,
        config.calib_fraction,
        seed=2,
    )
    side_of_id = {item.id: assignment[item.id] for item in derived.items}
    borrowing = [item for item in derived.generated() if item.metadata.get("borrowed")]
    assert len(borrowing) >= 5  # enough overlays for the check to mean something
    assert {side_of_id[item.id] for item in borrowing} >= {"train", "val"}
    for item in borrowing:
        lender = item.metadata["borrowed"]
        assert side_of_id[lender] == side_of_id[item.id], (item.id, lender)
        assert derived.by_id()[lender].group != item.group
    # an explicit split is followed too: here every group on its own side borrows nothing
    alone = {item.group: item.group for item in originals.items}
    again = load_manifest(
        derive_manifest(originals, tmp_path / "alone", per_original=4, seed=2, sides=alone)
    )
    assert not any(item.metadata.get("borrowed") for item in again.generated())
