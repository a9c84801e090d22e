"""A manifest from a plain folder of images, and the external evaluation set built that way.

Many collections are just pictures in folders, named for what they show. ``originals_from_folder``
makes each image an original whose caption is its file name in words and whose ``category`` is
its sub-folder; ``derive`` then adds generated stand-ins. The external set does this with the
art4apps illustrations of Debian's ``pysiogame`` package: another artist, another style, never
used for training or tuning, so evaluating a demo run on it checks generalisation (the seed's
third recommendation).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artsim.data.corpora.debian import default_cache_dir, fetch_package
from artsim.data.corpora.demo import image_fingerprint
from artsim.data.families.training.derive import derive_manifest
from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import load_manifest, write_manifest
from artsim.errors import DataError
from artsim.progress import Reporter

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
EXTERNAL_PACKAGE = "pysiogame"
EXTERNAL_FOLDER = "usr/share/games/pysiogame/res/images/art4apps"


@dataclass(frozen=True)
class ExternalSource:
    """An evaluation-only set taken from one Debian package: the folder to read and, when only
    part of it is artwork, the sub-folders to keep (sprite sheets and UI parts left out)."""

    package: str
    folder: str
    artist: str
    keep_parts: tuple[str, ...] = ()
    style: str = ""


EXTERNAL_SOURCES = {
    "art4apps": ExternalSource(
        EXTERNAL_PACKAGE, EXTERNAL_FOLDER, "art4apps", style="flat educational illustrations"
    ),
    # Flare's painted fantasy art (Clint Bellanger and others, CC-BY-SA 3.0+): the portraits,
    # item pictures, cut-scenes, book pages and backgrounds; the animation sheets are left out.
    "flare": ExternalSource(
        "flare-game",
        "usr/share/games/flare/mods",
        "Flare contributors",
        keep_parts=("portraits", "loot", "cutscenes", "books", "backgrounds", "parallax"),
        style="painted fantasy game art",
    ),
}


def caption_from_name(stem: str) -> str:
    """``baby_rabbit-2`` -> ``baby rabbit``: words of a file name, numbers dropped."""
    words = [w for w in re.split(r"[_\-\s.]+", stem) if w and not w.isdigit()]
    return " ".join(words).strip().lower()


def originals_from_folder(
    folder: str | Path,
    out_dir: str | Path,
    *,
    source: str = "",
    artist: str = "",
    max_originals: int | None = None,
    seed: int = 0,
    keep_parts: tuple[str, ...] = (),
) -> Path:
    """Copy the images under ``folder`` into ``out_dir/originals/`` and write
    ``out_dir/originals.csv`` (one original per distinct picture); returns its path.
    With ``keep_parts``, only images with one of those folder names in their path are used."""
    folder, out_dir = Path(folder), Path(out_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    paths = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and (not keep_parts or set(p.relative_to(folder).parts[:-1]) & set(keep_parts))
    )
    if not paths:
        raise DataError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if max_originals is not None and len(paths) > max_originals:
        keep = np.random.default_rng(seed).choice(len(paths), max_originals, replace=False)
        paths = [paths[i] for i in sorted(keep)]
    (out_dir / "originals").mkdir(parents=True, exist_ok=True)
    items, seen, ids, copied = [], set(), set(), set()
    for path in paths:
        fingerprint = image_fingerprint(path)
        if fingerprint is None or fingerprint in seen:
            continue  # unreadable, too small, or the same picture under another name
        seen.add(fingerprint)
        relative = path.relative_to(folder)
        # ids are kept exactly by manifests, which refuse leading or trailing whitespace
        item_id = "/".join(relative.with_suffix("").parts).strip()
        if item_id in ids:  # another picture named alike (owl.png, owl.jpg): keep the suffix
            item_id = "/".join(relative.parts).strip()
        if item_id in ids:
            continue  # the same name but for outer spaces, suffix included: one is kept
        ids.add(item_id)
        # "a/b.png" and "a.b.png" flatten to one file name: the second gets a number
        name, number = item_id.replace("/", "."), 1
        while f"{name}{path.suffix.lower()}" in copied:
            name, number = f"{item_id.replace('/', '.')}~{number}", number + 1
        copied.add(f"{name}{path.suffix.lower()}")
        target = out_dir / "originals" / f"{name}{path.suffix.lower()}"
        shutil.copyfile(path, target)
        category = "/".join(relative.parts[:-1])
        items.append(
            Item(
                id=item_id,
                group=item_id,
                role="original",
                image=target.resolve(),
                text=caption_from_name(path.stem),
                lang="en",
                artist=artist,
                title=caption_from_name(path.stem),
                source=source,
                metadata={"category": category} if category else {},
            )
        )
    return write_manifest(items, out_dir / "originals.csv")


def build_external_corpus(
    out_dir: str | Path,
    *,
    per_original: int = 3,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    source: str = "art4apps",
    family: str = "training",
    reporter: Reporter | None = None,
) -> Path:
    """An external evaluation set (never trained on) with ``per_original`` derivatives each.

    ``source`` is a key of :data:`EXTERNAL_SOURCES`; ``family`` is ``training`` (the stand-ins
    of ``artsim data derive``) or ``heldout`` (the evaluation-only family, other transform code).
    """
    if source not in EXTERNAL_SOURCES:
        raise DataError(
            f"unknown external source {source!r}; known: {', '.join(sorted(EXTERNAL_SOURCES))}"
        )
    if family not in ("training", "heldout"):
        raise DataError(f"family must be training or heldout, got {family!r}")
    spec = EXTERNAL_SOURCES[source]
    tree = fetch_package(spec.package, Path(cache_dir) if cache_dir else default_cache_dir())
    originals = load_manifest(
        originals_from_folder(
            tree.root / spec.folder,
            out_dir,
            source=tree.source,
            artist=spec.artist,
            keep_parts=spec.keep_parts,
        )
    )
    if family == "heldout":
        from artsim.data.families.heldout.derive import derive_heldout_manifest

        return derive_heldout_manifest(originals, out_dir, per_original=per_original, seed=seed)
    return derive_manifest(
        originals, Path(out_dir), per_original=per_original, seed=seed, reporter=reporter
    )
