"""The evaluation-only derivation family: patterns, prompts, manifests and its independence
from the training transforms."""

from __future__ import annotations

import ast
import csv
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from artsim.cli.data import main
from artsim.data.corpora.synthetic import make_synthetic_manifest
from artsim.data.families.heldout import canvas as heldout_canvas
from artsim.data.families.heldout import derive as heldout
from artsim.data.families.heldout import overlays as heldout_overlays
from artsim.data.families.heldout import prompts as heldout_prompts
from artsim.data.families.heldout import transforms as heldout_transforms
from artsim.data.families.heldout.derive import derive_heldout_manifest, heldout_seed
from artsim.data.families.heldout.prompts import heldout_prompt
from artsim.data.families.heldout.transforms import (
    COMBO,
    PATTERN_NAMES,
    PATTERNS,
    apply_pattern,
    derive_heldout,
)
from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import Manifest, load_manifest
from artsim.errors import DataError


def _picture(seed: int = 0, size: tuple[int, int] = (120, 90)) -> Image.Image:
    """A drawing with shapes and colours, so every filter has something to change."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, (250, 250, 245))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = (int(v) for v in rng.integers(0, min(size) // 2, 2))
        x1, y1 = x0 + int(rng.integers(15, 50)), y0 + int(rng.integers(15, 50))
        draw.ellipse((x0, y0, x1, y1), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw.line((0, 0, size[0], size[1]), fill=(0, 0, 0), width=3)
    return image


def _distractors() -> list[Image.Image]:
    return [Image.new("RGB", (50, 40), colour) for colour in ("navy", "olive", "teal")]


@pytest.mark.parametrize("name", PATTERN_NAMES)
def test_every_pattern_makes_a_valid_different_image(name: str) -> None:
    original = _picture()
    for seed in range(3):
        derived, applied = apply_pattern(original, name, np.random.default_rng(seed))
        assert derived.mode == "RGB"
        assert min(derived.size) >= 8 and max(derived.size) <= heldout_transforms.WORKING_SIDE
        assert applied == name or (name == COMBO and applied.startswith("combo:"))
        same_size = derived.resize(original.size)
        difference = np.abs(np.asarray(same_size, float) - np.asarray(original, float)).mean()
        assert derived.size != original.size or difference > 1.0, (name, seed)


@pytest.mark.parametrize("size", [(45, 66), (32, 110), (105, 300), (120, 90)])
def test_painterly_keeps_small_and_narrow_pictures(size: tuple[int, int]) -> None:
    # cv2.stylization turned stamps this small into all-black pictures (a Tux Paint stocking of
    # 45x66 px), which then matched a black letter "I" at 0.97
    original = Image.new("RGB", size, (255, 255, 255))  # a stamp: one shape on a flat ground
    ImageDraw.Draw(original).ellipse((4, 8, size[0] - 4, size[1] // 2), fill=(200, 20, 20))
    for seed in range(12):  # every one of the four filters is drawn in 12 seeds
        derived, _ = apply_pattern(original, "painterly", np.random.default_rng(seed))
        pixels = np.asarray(derived.resize(original.size), float)
        assert pixels.std() > 3.0, (size, seed)  # a pencil sketch is faint, not flat
        assert abs(pixels.mean() - np.asarray(original, float).mean()) < 60.0, (size, seed)


@pytest.mark.parametrize("name", PATTERN_NAMES)
def test_patterns_are_deterministic_given_the_generator(name: str) -> None:
    original = _picture(1)
    first, first_name = apply_pattern(original, name, np.random.default_rng(7), _distractors())
    again, again_name = apply_pattern(original, name, np.random.default_rng(7), _distractors())
    assert first_name == again_name
    assert first.tobytes() == again.tobytes()


def test_mosaic_borrows_only_from_the_distractor_pool() -> None:
    # A one-colour original and one-colour distractors: every pixel of the mosaic is the
    # original's colour, a distractor's colour or the grid's light gap colour.
    original = Image.new("RGB", (100, 100), (255, 0, 0))
    pool = [Image.new("RGB", (40, 40), (0, 0, 255))]
    derived, _ = apply_pattern(original, "mosaic", np.random.default_rng(3), pool)
    pixels = np.asarray(derived).reshape(-1, 3)
    red = (pixels == (255, 0, 0)).all(axis=1)
    blue = (pixels == (0, 0, 255)).all(axis=1)
    light_gap = pixels.min(axis=1) >= 200
    assert red.any() and blue.any()
    assert (red | blue | light_gap).all()


def test_derive_heldout_spreads_over_patterns() -> None:
    derived = derive_heldout(_picture(2), np.random.default_rng(0), len(PATTERN_NAMES))
    names = [name.split(":")[0] for _, name in derived]
    assert sorted(names) == sorted(PATTERN_NAMES)
    assert derive_heldout(_picture(2), np.random.default_rng(0), 0) == []
    with pytest.raises(ValueError):
        apply_pattern(_picture(), "no-such-pattern", np.random.default_rng(0))


def test_prompts_english_spanish_and_none() -> None:
    item = Item(id="a", group="a", role="original", image=Path("a.png"), text="A red fox.")
    text, lang = heldout_prompt(item, "meme_caption", np.random.default_rng(0))
    assert lang == "en" and "red fox" in text
    with_es = dataclasses.replace(item, metadata={"text_es": "Un zorro rojo."})
    text, lang = heldout_prompt(with_es, "collage", np.random.default_rng(0), spanish=True)
    assert lang == "es" and "zorro rojo" in text
    # Asked for Spanish without a Spanish description: English rather than nothing.
    assert heldout_prompt(item, "collage", np.random.default_rng(0), spanish=True)[1] == "en"
    bare = dataclasses.replace(item, text="")
    assert heldout_prompt(bare, "collage", np.random.default_rng(0)) == ("", "")


def test_prompts_share_no_template_with_training() -> None:
    from artsim.data.families.training import prompts

    ours = set(heldout_prompts.TEMPLATES_EN) | set(heldout_prompts.TEMPLATES_ES)
    theirs = set(prompts.TEMPLATES_EN) | set(prompts.TEMPLATES_ES)
    assert not ours & theirs
    assert not set(heldout_prompts.MEDIA_EN) & set(prompts.STYLES_EN)


def _imports(module) -> set[str]:
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _function_bodies(path: Path) -> set[str]:
    """Every function's body (docstring dropped) as an AST dump: equal dumps mean copied code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bodies = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            body = node.body[1:] if ast.get_docstring(node) else node.body
            bodies.add("\n".join(ast.dump(statement) for statement in body))
    return bodies


def test_no_code_shared_with_the_training_transforms() -> None:
    from artsim.data.families.training import derive, prompts, transforms

    training = (
        "artsim.data.families.training.derive",
        "artsim.data.families.training.transforms",
        "artsim.data.families.training.prompts",
    )
    ours_modules = (heldout, heldout_canvas, heldout_overlays, heldout_prompts, heldout_transforms)
    for module in ours_modules:
        assert not set(training) & _imports(module), module.__name__
    ours = set().union(*(_function_bodies(Path(m.__file__)) for m in ours_modules))
    for module in (derive, transforms, prompts):
        assert not ours & _function_bodies(Path(module.__file__)), module.__name__
    names = {name for family in transforms.TRANSFORMS.values() for name in family}
    assert not set(PATTERNS) & names


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """Synthetic originals; g001 gets a Spanish description in its metadata."""
    folder = tmp_path_factory.mktemp("synthetic")
    manifest = load_manifest(make_synthetic_manifest(folder, n_groups=4, image_size=96))
    items = [
        dataclasses.replace(item, metadata={"text_es": "Una figura."})
        if item.id == "g001-orig"
        else item
        for item in manifest.items
    ]
    return Manifest(path=manifest.path, items=items)


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_manifest_is_deterministic_and_complete(originals: Manifest, tmp_path: Path) -> None:
    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    for k, colour in enumerate(("navy", "olive")):
        Image.new("RGB", (40, 40), colour).save(pool_dir / f"d{k}.png")
    # A gallery original in the pool must be refused as a distractor.
    gallery_copy = pool_dir / "copy.png"
    gallery_copy.write_bytes(originals.originals()[0].image.read_bytes())
    pool = heldout.distractor_paths(pool_dir)
    assert len(heldout.load_distractors(pool, originals.originals())) == 2

    first = derive_heldout_manifest(originals, tmp_path / "a", per_original=3, distractors=pool)
    second = derive_heldout_manifest(originals, tmp_path / "b", per_original=3, distractors=pool)
    assert _digests(first.parent) == _digests(second.parent)
    derived = load_manifest(first)
    assert not derived.errors
    assert len(derived.originals()) == 4 and len(derived.generated()) == 12
    for item in derived.generated():
        assert item.metadata["family"] == "heldout" and item.metadata["pattern"]
        assert item.id.split("~ho")[0] == f"{item.group}-orig"
    # One Spanish prompt for the English original with a Spanish description; only Spanish
    # prompts for the Spanish originals; only English for the others.
    spanish_originals = {item.group for item in originals.originals() if item.lang == "es"}
    assert spanish_originals and "g001" not in spanish_originals
    for original in originals.originals():
        langs = [item.lang for item in derived.groups()[original.group] if not item.is_original]
        expected = 3 if original.group in spanish_originals else int(original.group == "g001")
        assert langs.count("es") == expected, original.group
    other = derive_heldout_manifest(originals, tmp_path / "c", per_original=3, seed=1)
    assert _digests(other.parent) != _digests(first.parent)


def test_group_filter_and_errors(originals: Manifest, tmp_path: Path) -> None:
    written = derive_heldout_manifest(originals, tmp_path / "g", per_original=1, groups={"g002"})
    derived = load_manifest(written)
    assert {item.group for item in derived.items} == {"g002"}
    with pytest.raises(DataError, match="no originals"):
        derive_heldout_manifest(originals, tmp_path / "none", groups={"nope"})
    with pytest.raises(DataError, match="distractor pool not found"):
        heldout.distractor_paths(tmp_path / "missing")
    assert heldout_seed(0, "a") != heldout_seed(1, "a")


def test_cli_heldout_family_on_one_side_of_a_split(
    synthetic_manifest: Path, tmp_path: Path, capsys
) -> None:
    split = tmp_path / "split.csv"
    manifest = load_manifest(synthetic_manifest)
    with split.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "split"])
        for item in manifest.items:
            writer.writerow([item.id, "val" if item.group in ("g000", "g003") else "train"])
    out = tmp_path / "heldout"
    args = ["derive", str(synthetic_manifest), "--out", str(out), "--family", "heldout"]
    assert main([*args, "--split-file", str(split), "--per-original", "2"]) == 0
    derived = load_manifest(out / "manifest.csv")
    assert {item.group for item in derived.items} == {"g000", "g003"}
    assert len(derived.generated()) == 4
    assert main([*args[:-1], "bogus"]) == 2
    assert "--family must be training or heldout" in capsys.readouterr().err


def test_split_groups_reads_ids_with_newlines_as_the_run_folder_writes_them(
    originals: Manifest, tmp_path: Path
) -> None:
    from artsim.data.families.heldout.derive import split_groups
    from artsim.runfolder import write_split

    first, second = originals.items[0], originals.items[1]
    strange = dataclasses.replace(second, id='two\nlines, "quoted"')
    manifest = Manifest(path=originals.path, items=[first, strange])
    split = write_split({first.id: "train", strange.id: "val"}, tmp_path / "split.csv")
    assert split_groups(split, "val", manifest) == {strange.group}
    assert split_groups(split, "train", manifest) == {first.group}
    with pytest.raises(DataError, match="no item"):
        split_groups(split, "calib", manifest)
