"""Leave one source out: train without a source, evaluate on it with the held-out family.

A model that learned its corpus rather than similarity does well on the sources it trained on and
badly on a new one. :func:`leave_one_source_out` splits a manifest by source: every group whose
original comes from another source goes to ``OUT/train/manifest.csv`` (original and generated
rows as they are), and the left-out source's originals get held-out-family derivatives (other
transform code, other prompts) in ``OUT/eval/manifest.csv``. Train on the first, evaluate on the
second:

    artsim data lofo data/full/manifest.csv --source tuxpaint-stamps-default --out lofo/tux
    artsim train --data lofo/tux/train/manifest.csv --out runs/lofo-tux
    artsim evaluate --run runs/lofo-tux --data lofo/tux/eval/manifest.csv

Images of the training side are hard-linked (copied where links are impossible), so the feature
cache, keyed by file content, is reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from collections import Counter
from pathlib import Path

from artsim.data.families.heldout.derive import derive_heldout_manifest
from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import Manifest, write_manifest
from artsim.errors import DataError


def source_of(item: Item) -> str:
    """The source an original is credited to: its ``package`` metadata, else the first word of
    its ``source`` column (``tuxpaint-stamps-default 2022.06.04-1 (GPL-2)`` -> the package)."""
    package = item.metadata.get("package", "").strip()
    if package:
        return package
    words = item.source.split()
    return words[0] if words else "(no source)"


def source_counts(manifest: Manifest) -> Counter[str]:
    """Originals per source."""
    return Counter(source_of(item) for item in manifest.originals())


def leave_one_source_out(
    manifest: Manifest,
    source: str,
    out_dir: str | Path,
    *,
    per_original: int = 3,
    seed: int = 0,
    distractors: tuple[Path, ...] | list[Path] = (),
) -> tuple[Path, Path]:
    """Write ``OUT/train/manifest.csv`` (every group but ``source``'s) and ``OUT/eval/
    manifest.csv`` (``source``'s originals with held-out derivatives); return both paths."""
    counts = source_counts(manifest)
    if source not in counts:
        known = ", ".join(f"{name} ({n})" for name, n in sorted(counts.items()))
        raise DataError(f"{manifest.path}: no original from source {source!r}; sources: {known}")
    if len(counts) < 2:
        raise DataError(f"{manifest.path}: only one source ({source}); nothing would be left")
    left_out = {item.group for item in manifest.originals() if source_of(item) == source}
    out_dir = Path(out_dir)
    train_dir = out_dir / "train"
    images = train_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    kept = []
    for item in manifest.items:
        if item.group in left_out:
            continue
        target = images / _file_name(item)
        _link_or_copy(item.image, target)
        kept.append(_with_image(item, target))
    train_path = write_manifest(kept, train_dir / "manifest.csv")
    originals = Manifest(
        path=manifest.path,
        items=[item for item in manifest.originals() if item.group in left_out],
    )
    eval_path = derive_heldout_manifest(
        originals,
        out_dir / "eval",
        per_original=per_original,
        seed=seed,
        distractors=list(distractors),
    )
    return train_path, eval_path


def _file_name(item: Item) -> str:
    # Ids are unique in a manifest; a digest of the id keeps names unique once made file-safe.
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in item.id)[:80]
    digest = hashlib.blake2b(item.id.encode(), digest_size=4).hexdigest()
    return f"{safe}-{digest}{item.image.suffix.lower()}"


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _with_image(item: Item, image: Path) -> Item:
    return dataclasses.replace(item, image=image)
