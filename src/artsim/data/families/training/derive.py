"""Derived "generated" items: stand-ins for AI-generated art, made from the originals.

No generative model runs here. Each stand-in is an original pushed through a seeded chain of two
or three image transformations from different families (geometric, colour, painterly filters,
compression, collage/overlay, text overlay) plus a prompt-like text built from the original's
caption. They exercise the whole pipeline (training, evaluation, index, service) with the kinds of
change a generator makes (style, palette, composition, artefacts), but they are NOT generated art:
real generated images come in through a manifest (rows with ``role=generated``), and any number
measured on stand-ins says how well the model undoes these transformations, nothing more.

The output is deterministic: the same manifest and seed give a byte-identical ``manifest.csv`` and
images, because every original gets its own random generator seeded from ``(seed, original id)``
with a stable hash (never Python's ``hash()``, which changes per process).

The transformations are :mod:`artsim.data.families.training.transforms`, the prompt texts
:mod:`artsim.data.families.training.prompts`.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from artsim.data.families.training.prompts import STYLE_OF_TRANSFORM, make_prompt
from artsim.data.families.training.transforms import (
    GENERATED_MAX_SIDE,
    TRANSFORM_FAMILIES,
    TRANSFORMS,
    Canvas,
    Thumbnails,
    capped,
    load_original,
)
from artsim.data.manifest.items import Item, file_stems
from artsim.data.manifest.manifest import Manifest, write_manifest
from artsim.data.manifest.split import DEFAULT_CALIB_FRACTION, DEFAULT_VAL_FRACTION
from artsim.errors import DataError
from artsim.progress import Reporter, Task, or_silent

__all__ = [
    "GENERATED_MAX_SIDE",
    "TRANSFORMS",
    "TRANSFORM_FAMILIES",
    "derive_manifest",
    "stable_seed",
]
PROGRESS_MIN_ORIGINALS = 50
WORKERS = 2


def default_sides(
    originals: Sequence[Item],
    per_original: int,
    seed: int,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    calib_fraction: float = DEFAULT_CALIB_FRACTION,
) -> dict[str, str]:
    """The side (train, val, calib) each original's group will take in ``artsim train``'s
    default split of the derived manifest (same seed and fractions): overlays borrow within it."""
    from artsim.data.manifest.split import carve_calibration, group_split

    items = [*originals]
    for original in originals:
        items.extend(
            Item(id=f"{original.id}~gen{k}", group=original.group, role="generated", image=Path())
            for k in range(per_original)
        )
    assignment = carve_calibration(
        group_split(items, val_fraction, seed=seed), items, calib_fraction, seed=seed
    )
    return {original.group: assignment[original.id] for original in originals}


def derive_manifest(
    manifest: Manifest,
    out_dir: Path,
    per_original: int = 3,
    seed: int = 0,
    sides: dict[str, str] | None = None,
    reporter: Reporter | None = None,
) -> Path:
    """Write ``out_dir/manifest.csv``: every original plus ``per_original`` stand-ins for each.

    Originals are copied unchanged into ``out_dir/images/`` with their id, group, text, language,
    artist, title, source and metadata. The manifest's own generated rows are not carried over.
    Each stand-in gets the id ``{original id}~gen{k}``, the original's group, an image of at most
    256 px on the long side (PNG, or JPEG when the compression family was picked), a prompt-like
    text (Spanish for some items when the original has a Spanish caption; none when the original
    has no text) and the metadata column ``transforms`` (for example ``rotate+posterize+jpeg``).
    ``reporter`` shows a progress step when there are many originals.

    An overlay pastes a patch of ANOTHER original, drawn only among the originals on the same
    side of the split (``sides``: group -> side; by default the split ``artsim train`` makes of
    the output with the same seed, see :func:`default_sides`), so no stand-in carries a piece of
    an original from the other side. The borrowed original's id is kept in the metadata column
    ``borrowed``. Training with another split: pass it as ``sides``.

    >>> from artsim.data.manifest.manifest import load_manifest
    >>> derive_manifest(load_manifest("data/demo/manifest.csv"), tmp_path / "derived").name
    'manifest.csv'
    """
    if per_original < 0:
        raise DataError(f"per_original must be 0 or more, got {per_original}")
    originals = list(manifest.originals())
    if not originals:
        raise DataError(f"{manifest.path}: no originals to derive from")
    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.csv"
    if manifest_path.resolve() == Path(manifest.path).resolve():
        raise DataError(
            f"{manifest_path}: deriving into the manifest's own folder would overwrite it; "
            "choose another output folder"
        )
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)

    stems = _unique_stems([original.id for original in originals])
    shown = reporter if len(originals) >= PROGRESS_MIN_ORIGINALS else None
    thumbnails = Thumbnails(originals)
    if sides is None:
        sides = default_sides(originals, per_original, seed)
    by_side: dict[str, list[int]] = {}
    for position, original in enumerate(originals):
        by_side.setdefault(sides.get(original.group, ""), []).append(position)

    def derive_one(index: int) -> list[Item]:
        original = originals[index]
        copied = image_dir / f"{stems[index]}{original.image.suffix.lower()}"
        shutil.copyfile(original.image, copied)
        items = [_copy_item(original, copied)]
        if per_original == 0:
            return items
        rng = np.random.default_rng(stable_seed(seed, original.id))
        side = by_side[sides.get(original.group, "")]
        borrowable = [p for p in side if originals[p].group != original.group]
        canvas = Canvas(rng=rng, thumbnails=thumbnails, own_index=index, borrowable=borrowable)
        base = capped(load_original(original))
        thumbnails.get(index, base)
        for k in range(per_original):
            items.append(_make_stand_in(original, base, k, stems[index], image_dir, canvas, seed))
        return items

    groups = _run_parallel(
        derive_one,
        list(range(len(originals))),
        or_silent(shown).task("Deriving stand-ins", len(originals)),
    )
    write_manifest([item for group in groups for item in group], manifest_path)
    return manifest_path


def stable_seed(seed: int, key: str) -> int:
    """A 64-bit seed from ``(seed, key)`` that is the same in every process and on every machine."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


# --- one stand-in -------------------------------------------------------------------------------


def _make_stand_in(
    original: Item,
    base: Image.Image,
    k: int,
    stem: str,
    image_dir: Path,
    canvas: Canvas,
    seed: int,
) -> Item:
    rng = canvas.rng
    n_families = int(rng.integers(2, 4))
    picked = set(rng.choice(len(TRANSFORM_FAMILIES), size=n_families, replace=False).tolist())
    # Applied in a fixed order (compression always last) because that is how a generated image
    # is made: composed and styled first, then saved and re-encoded when shared.
    families = [family for position, family in enumerate(TRANSFORM_FAMILIES) if position in picked]
    image = base.copy()
    names = []
    jpeg_quality = None
    canvas.borrowed.clear()
    for family in families:
        if family == "compression":
            jpeg_quality = int(rng.integers(8, 35))
            names.append("jpeg")
            continue
        options = TRANSFORMS[family]
        name = list(options)[int(rng.integers(len(options)))]
        image = options[name](image, canvas)
        names.append(name)
    image = capped(image)
    if jpeg_quality is None:
        path = image_dir / f"{stem}~gen{k}.png"
        # Level 1 is several times faster than the default and the files stay small at 256 px.
        image.save(path, format="PNG", compress_level=1)
    else:
        path = image_dir / f"{stem}~gen{k}.jpg"
        image.save(path, format="JPEG", quality=jpeg_quality)
    styles = [STYLE_OF_TRANSFORM[name] for name in names if name in STYLE_OF_TRANSFORM]
    style = styles[int(rng.integers(len(styles)))] if styles else None
    text, lang = make_prompt(original, rng, style)
    return Item(
        id=f"{original.id}~gen{k}",
        group=original.group,
        role="generated",
        image=path,
        text=text,
        lang=lang,
        source=f"artsim derive stand-in (seed {seed})",
        metadata={
            "transforms": "+".join(names),
            **(
                {"borrowed": canvas.thumbnails.id_of(canvas.borrowed[0])} if canvas.borrowed else {}
            ),
        },
    )


# --- helpers ------------------------------------------------------------------------------------


def _copy_item(original: Item, image: Path) -> Item:
    return Item(
        id=original.id,
        group=original.group,
        role="original",
        image=image,
        text=original.text,
        lang=original.lang,
        artist=original.artist,
        title=original.title,
        source=original.source,
        metadata=dict(original.metadata),
    )


def _unique_stems(ids: Sequence[str]) -> list[str]:
    """File-name stems for ids; an id that is not file-name safe gets a hash to stay unique."""
    return file_stems(ids, lambda item_id: hashlib.sha256(item_id.encode()).hexdigest()[:8])


def _run_parallel(function, inputs: Sequence, advance: Task) -> list:
    """``[function(x) for x in inputs]`` on two threads (PIL releases the GIL while it works)."""
    results: list = [None] * len(inputs)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {pool.submit(function, value): position for position, value in enumerate(inputs)}
        for future, position in futures.items():
            results[position] = future.result()
            advance(1)
    return results
