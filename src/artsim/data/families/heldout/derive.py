"""Evaluation manifests made with the held-out derivation family.

:func:`derive_heldout_manifest` is to :mod:`artsim.data.families.heldout.transforms` what
``derive_manifest`` is to the training stand-ins: every chosen original is copied and gets
``per_original`` derived items (ids ``{id}~ho{k}``, metadata ``pattern`` and ``family=heldout``)
with prompts from :mod:`artsim.data.families.heldout.prompts`. Each derived item also says where the
original's pixels are: metadata ``box``, ``left,top,right,bottom`` in pixels of the derived
picture (a tilted or warped original: its bounding box), and ``source_box``, the part of the
original shown there, in pixels of the original (all of it but for crops and mosaic cells); both
are absent when nothing of the original is left. Read them with :func:`parse_box`. Use it on data the model did not train on:
the validation groups of a run (``groups``), an external set, or a left-out source.

Deterministic: the same manifest, seed and distractors give the same files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from artsim.data.families.heldout.canvas import Placement
from artsim.data.families.heldout.prompts import heldout_prompt, spanish_description
from artsim.data.families.heldout.transforms import check_patterns, derive_heldout_placed
from artsim.data.manifest.items import Item, file_stems
from artsim.data.manifest.manifest import Manifest, load_manifest, write_manifest
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.errors import DataError, ImageError
from artsim.runfolder import read_split_ids

FAMILY = "heldout"
# A mosaic cell or a collage background never needs more than this; smaller keeps memory low.
DISTRACTOR_SIDE = 192
MAX_DISTRACTORS = 256
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
WORKERS = 2


def heldout_seed(seed: int, key: str) -> int:
    """A 64-bit seed from ``(seed, key)``, stable across processes (salted apart from training's)."""
    digest = hashlib.blake2b(f"heldout/{seed}/{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def distractor_paths(source: str | Path) -> list[Path]:
    """Image files of a distractor pool: a folder (searched recursively) or a manifest (its
    originals)."""
    source = Path(source)
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    elif source.is_file():
        paths = [item.image for item in load_manifest(source, check_images=False).originals()]
    else:
        raise DataError(f"{source}: distractor pool not found (give a folder or a manifest)")
    if not paths:
        raise DataError(f"{source}: no images in the distractor pool")
    return paths


def load_distractors(
    paths: Sequence[Path], gallery: Sequence[Item], seed: int = 0, limit: int = MAX_DISTRACTORS
) -> list[Image.Image]:
    """Up to ``limit`` pictures of the pool (a seeded choice), each at most 192 px, leaving out
    any file whose bytes equal a gallery original's: a mosaic must hold one original only."""
    gallery_digests = {_file_digest(item.image) for item in gallery}
    order = np.random.default_rng(heldout_seed(seed, "distractors")).permutation(len(paths))
    pictures = []
    for index in order.tolist():
        path = Path(paths[index])
        if _file_digest(path) in gallery_digests:
            continue
        try:
            picture = load_rgb(path, DEFAULT_MAX_PIXELS)
        except ImageError:
            continue
        picture.thumbnail((DISTRACTOR_SIDE, DISTRACTOR_SIDE), Image.Resampling.BILINEAR)
        pictures.append(picture)
        if len(pictures) >= limit:
            break
    return pictures


def derive_heldout_manifest(
    manifest: Manifest,
    out_dir: str | Path,
    *,
    per_original: int = 3,
    seed: int = 0,
    distractors: Sequence[Path] = (),
    groups: Collection[str] | None = None,
    patterns: Sequence[str] | None = None,
) -> Path:
    """Write ``out_dir/manifest.csv``: the originals (of ``groups`` only, when given) and
    ``per_original`` held-out derivatives of each; returns its path.

    Originals with a Spanish description get exactly one Spanish prompt among their derivatives,
    the rest English (as in the project's held-back evaluation set). ``patterns`` limits the draw
    to some patterns (e.g. ``["inset"]``, which the default draw leaves out).

    >>> from artsim.data.manifest.manifest import load_manifest
    >>> demo = load_manifest("data/demo/manifest.csv")
    >>> val_groups = {demo.originals()[0].group}
    >>> heldout = derive_heldout_manifest(demo, tmp_path / "heldout", groups=val_groups)
    >>> len(load_manifest(heldout).items)  # the original and 3 derivatives
    4
    """
    if per_original < 1:
        raise DataError(f"per_original must be 1 or more, got {per_original}")
    patterns = _checked_patterns(patterns)
    originals = [
        item for item in manifest.originals() if groups is None or item.group in set(groups)
    ]
    if not originals:
        raise DataError(f"{manifest.path}: no originals to derive from (after the group filter)")
    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.csv"
    if manifest_path.resolve() == Path(manifest.path).resolve():
        raise DataError(
            f"{manifest_path}: would overwrite the input manifest; choose another --out"
        )
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    pool = load_distractors(distractors, originals, seed) if distractors else []
    stems = _stems([item.id for item in originals])

    def one(index: int) -> list[Item]:
        return _derive_original(
            originals[index], stems[index], image_dir, per_original, seed, pool, patterns
        )

    with ThreadPoolExecutor(WORKERS) as executor:
        results = list(executor.map(one, range(len(originals))))
    return write_manifest([item for items in results for item in items], manifest_path)


def _checked_patterns(patterns: Sequence[str] | None) -> tuple[str, ...] | None:
    """``patterns`` as :func:`check_patterns` gives them back (None: the default draw); an
    unknown one is a :class:`DataError`."""
    if patterns is None:
        return None
    try:
        return check_patterns(patterns)
    except ValueError as error:
        raise DataError(str(error)) from None


def _derive_original(
    original: Item,
    stem: str,
    image_dir: Path,
    per_original: int,
    seed: int,
    pool: Sequence[Image.Image],
    patterns: Sequence[str] | None,
) -> list[Item]:
    """One original copied into ``image_dir`` as ``stem``, then its ``per_original`` held-out
    derivatives (``stem~hoK``, JPEG or PNG), each with its prompt, pattern and boxes; every
    draw from the original's own seeded generator, so threads do not change them."""
    copied = image_dir / f"{stem}{original.image.suffix.lower()}"
    shutil.copyfile(original.image, copied)
    items = [dataclasses.replace(original, image=copied)]
    rng = np.random.default_rng(heldout_seed(seed, original.id))
    try:
        picture = load_rgb(original.image, DEFAULT_MAX_PIXELS)
    except ImageError as error:
        raise DataError(f"original {original.id}: {error}") from None
    spanish_at = int(rng.integers(per_original)) if spanish_description(original) else -1
    placed = derive_heldout_placed(picture, rng, per_original, pool, patterns)
    for k, (derived, pattern, placement) in enumerate(
        (d.picture, d.pattern, d.placement) for d in placed
    ):
        if rng.random() < 0.6:
            path = image_dir / f"{stem}~ho{k}.jpg"
            derived.save(path, format="JPEG", quality=int(rng.integers(55, 96)))
        else:
            path = image_dir / f"{stem}~ho{k}.png"
            derived.save(path, format="PNG", compress_level=1)
        text, lang = heldout_prompt(original, pattern, rng, spanish=k == spanish_at)
        items.append(
            Item(
                id=f"{original.id}~ho{k}",
                group=original.group,
                role="generated",
                image=path,
                text=text,
                lang=lang,
                source=f"artsim heldout family (seed {seed})",
                metadata={
                    "family": FAMILY,
                    "pattern": pattern,
                    **placement_metadata(placement, picture.size),
                },
            )
        )
    return items


def placement_metadata(placement: Placement, original_size: tuple[int, int]) -> dict[str, str]:
    """``box`` and ``source_box`` metadata of a derived item (none when the original is gone)."""
    if placement.box is None:
        return {}
    width, height = original_size
    s0, t0, s1, t1 = placement.source
    source = (s0 * width, t0 * height, s1 * width, t1 * height)
    return {"box": format_box(placement.box), "source_box": format_box(source)}


def format_box(box: Sequence[float]) -> str:
    """``left,top,right,bottom`` in whole pixels (rounded outwards)."""
    left, top, right, bottom = box
    return ",".join(
        str(int(v)) for v in (np.floor(left), np.floor(top), np.ceil(right), np.ceil(bottom))
    )


def parse_box(text: str | None) -> tuple[int, int, int, int] | None:
    """A ``box`` or ``source_box`` metadata value as ``(left, top, right, bottom)``; ``None`` for
    an empty or malformed one.

    >>> parse_box("10,20,110,90")
    (10, 20, 110, 90)
    """
    parts = (text or "").split(",")
    if len(parts) != 4:
        return None
    try:
        left, top, right, bottom = (int(part) for part in parts)
    except ValueError:
        return None
    return (left, top, right, bottom) if right > left and bottom > top else None


def split_groups(split_path: str | Path, side: str, manifest: Manifest) -> set[str]:
    """The groups of ``manifest`` whose items ``split_path`` (id,split CSV) puts on ``side``."""
    # the run folder's reader (quoted ids may hold newlines); lenient on purpose: a run may have
    # left out unusable rows, and matching ids is what counts
    assignment = read_split_ids(Path(split_path))
    groups = {item.group for item in manifest.items if assignment.get(item.id) == side}
    if not groups:
        raise DataError(f"{split_path}: no item of {manifest.path} is on the {side!r} side")
    return groups


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def _stems(ids: Sequence[str]) -> list[str]:
    return file_stems(
        ids, lambda item_id: hashlib.blake2b(item_id.encode(), digest_size=4).hexdigest()
    )
