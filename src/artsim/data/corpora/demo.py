"""A real demo corpus from two freely licensed Debian packages of drawings.

Originals come from ``tuxpaint-stamps-default`` (Tux Paint's stamps: drawings with an English
description and translations, GPL) and ``openclipart-png`` (Open Clip Art Library PNGs, public
domain). The packages are fetched by :mod:`artsim.data.corpora.debian` (``apt-get download`` and
``dpkg-deb -x`` into a cache folder; nothing is installed on the system); this module chooses the
originals among their images. The generated side of the corpus is made by
:func:`artsim.data.families.training.derive.derive_manifest` (documented stand-ins, not real
generated art).

``openclipart-png`` carries no SVG or other per-image metadata (its copyright file mentions
per-image ``.txt`` files, but the package holds only PNGs), so titles come from the file names
(``{title}_{author}_{NN}``, cut at 24 characters, so author fragments stay in the title) and
keywords from the folders. ``openclipart-svg`` has fuller metadata but is not fetched: it is
another large download for a demo that does not need it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from artsim.data.corpora.candidates import Candidate
from artsim.data.corpora.debian import PackageTree, default_cache_dir, fetch_package
from artsim.data.corpora.sources import extra_finders
from artsim.data.families.training.derive import derive_manifest, stable_seed
from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import load_manifest, write_manifest
from artsim.errors import DataError
from artsim.progress import Reporter, or_silent

TUXPAINT = "tuxpaint-stamps-default"
OPENCLIPART = "openclipart-png"
PACKAGES = (OPENCLIPART, TUXPAINT)
# All ~700 usable Tux Paint stamps and as much clip art: more training works is what most helps
# the cross-modal figures (0.82 -> 0.86 from 600 to 1600 originals), and the whole `make demo`
# still takes about 5 minutes on 2 cores from an empty cache.
DEFAULT_MAX_ORIGINALS = 1600
MIN_SIDE = 32
# Some clip art is 16000 px wide; such files cost seconds to decode in every later stage and add
# nothing at the model's input size, so the demo leaves them out.
MAX_ORIGINAL_PIXELS = 4_000_000
TUXPAINT_ARTIST = "Tux Paint contributors"
OPENCLIPART_ARTIST = "Open Clip Art Library contributors"
WORKERS = 2


def build_demo_corpus(
    out_dir: Path,
    max_originals: int | None = None,
    per_original: int = 3,
    seed: int = 0,
    cache_dir: Path | None = None,
    corpus: str = "demo",
    reporter: Reporter | None = None,
) -> Path:
    """Build the demo corpus under ``out_dir`` and return the path of its ``manifest.csv``.

    ``corpus="full"`` adds the packages of :mod:`artsim.data.corpora.sources` (icons, emoji, game
    art) and, unless ``max_originals`` is given, keeps every usable original (over 10,000).

    Picks up to ``max_originals`` (default 1600) originals, half from each package (the other
    package fills in if one runs short), round-robin over categories in a seeded order, skipping
    images under 32 px, broken, oversized or duplicated. They are copied to ``out_dir/originals/``
    and listed in ``out_dir/originals.csv``; then ``per_original`` stand-ins per original are
    derived into ``out_dir/manifest.csv``. Two builds with the same arguments give identical
    manifests. It reads the pictures of Debian packages (see ``docs/data.md``), so its example
    is not run here::

        build_demo_corpus(Path("data/demo"), max_originals=40)  # -> Path("data/demo/manifest.csv")
    """
    reporter = or_silent(reporter)
    limit = DEFAULT_MAX_ORIGINALS if max_originals is None else max_originals
    if limit < 1:
        raise DataError(f"max_originals must be at least 1, got {limit}")
    out_dir = Path(out_dir)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    finders = corpus_finders(corpus)
    trees = {package: fetch_package(package, cache) for package in finders}
    candidates = {package: finder(trees[package]) for package, finder in finders.items()}
    if max_originals is None and corpus == "full":
        limit = sum(len(found) for found in candidates.values())
    chosen = select_originals(candidates, limit, seed)
    if not chosen:
        raise DataError(f"no usable images found in {', '.join(finders)} under {cache}")

    originals_dir = out_dir / "originals"
    originals_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for candidate in chosen:
        copied = originals_dir / f"{candidate.id}{candidate.image.suffix.lower()}"
        shutil.copyfile(candidate.image, copied)
        items.append(
            Item(
                id=candidate.id,
                group=candidate.id,
                role="original",
                image=copied,
                text=candidate.text,
                lang=candidate.lang,
                artist=candidate.artist,
                title=candidate.title,
                source=candidate.source,
                metadata={"package": candidate.package, **candidate.metadata},
            )
        )
    originals_path = write_manifest(items, out_dir / "originals.csv")
    # The images were checked while selecting them; decoding them all again would only cost time.
    originals = load_manifest(originals_path, check_images=False)
    manifest_path = derive_manifest(
        originals, out_dir, per_original=per_original, seed=seed, reporter=reporter
    )

    final = load_manifest(manifest_path, check_images=False)
    per_package = Counter(candidate.package for candidate in chosen)
    languages = Counter(item.lang or "(no text)" for item in final.items)
    n_spanish_captions = sum(1 for candidate in chosen if candidate.metadata.get("text_es"))
    reporter.note(
        f"{corpus} corpus: {len(final.originals())} originals "
        f"({', '.join(f'{package} {count}' for package, count in sorted(per_package.items()))}), "
        f"{len(final.generated())} generated, {n_spanish_captions} originals with a Spanish "
        f"caption; languages: {', '.join(f'{lang} {n}' for lang, n in sorted(languages.items()))}"
    )
    reporter.note(f"wrote {manifest_path}")
    return manifest_path


CORPORA = ("demo", "full")


def corpus_finders(corpus: str) -> dict[str, Callable[[PackageTree], list[Candidate]]]:
    """Package name -> candidate finder for the ``demo`` or the ``full`` corpus."""
    if corpus not in CORPORA:
        raise DataError(f"corpus must be one of {', '.join(CORPORA)}, got {corpus!r}")
    finders: dict[str, Callable[[PackageTree], list[Candidate]]] = {
        OPENCLIPART: find_openclipart_images,
        TUXPAINT: find_tuxpaint_stamps,
    }
    if corpus == "full":
        finders.update(extra_finders())
    return finders


# --- reading the packages -----------------------------------------------------------------------


def read_stamp_description(path: Path) -> tuple[str, dict[str, str]]:
    """Read a Tux Paint stamp ``.txt``: the English description and translations by locale.

    The first line is English; the others look like ``es.utf8=Una mosca.``.

    >>> _ = (tmp_path / "fly.txt").write_text("A fly.\\nes.utf8=Una mosca.\\nfr.utf8=Une mouche.\\n")
    >>> read_stamp_description(tmp_path / "fly.txt")
    ('A fly.', {'es': 'Una mosca.', 'fr': 'Une mouche.'})
    """
    english = ""
    translations: dict[str, str] = {}
    text = Path(path).read_text(encoding="utf-8", errors="replace").lstrip("\ufeff")
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        match = re.match(r"^([A-Za-z]{2,3}(?:_[A-Za-z]{2})?(?:@\w+)?)\.utf8=(.*)$", line)
        if match:
            value = match.group(2).strip()
            if value:
                translations.setdefault(match.group(1), value)
        elif not english:
            english = line
    return english, translations


def find_tuxpaint_stamps(tree: PackageTree) -> list[Candidate]:
    """Every PNG stamp with a description, sorted by path; mirrored copies are left out."""
    stamps_dir = tree.root / "usr" / "share" / "tuxpaint" / "stamps"
    candidates = []
    for png in sorted(stamps_dir.rglob("*.png")):
        if png.is_symlink() or not png.is_file():
            continue
        description = png.with_suffix(".txt")
        # Tux Paint ships "<name>_mirror.png" as a hand-made mirror image of "<name>.png".
        if png.stem.endswith("_mirror") or not description.is_file():
            continue
        english, translations = read_stamp_description(description)
        if not english:
            continue
        relative = png.relative_to(stamps_dir).with_suffix("")
        metadata = {"category": relative.parts[0]}
        if translations.get("es"):
            metadata["text_es"] = translations["es"]
        candidates.append(
            Candidate(
                id=_candidate_id("tuxpaint", relative.parts),
                image=png,
                package=tree.name,
                category=relative.parts[0],
                title=_words(png.stem),
                text=english,
                lang="en",
                artist=TUXPAINT_ARTIST,
                source=tree.source,
                variant_key=_variant_key(tree.name, relative),
                metadata=metadata,
            )
        )
    return candidates


def find_openclipart_images(tree: PackageTree) -> list[Candidate]:
    """Every PNG of the clip art tree, sorted by path; symlinked copies are left out.

    The title comes from the file name and the keywords from the folders, e.g.
    ``science/astronomy/full_moon_dan_gerhards_01.png`` gives the title ``full moon dan gerhards``
    and the text ``full moon dan gerhards, astronomy science clip art``.
    """
    png_dir = tree.root / "usr" / "share" / "openclipart" / "png"
    candidates = []
    for png in sorted(png_dir.rglob("*.png")):
        # The package links one drawing into several folders; the real file is the one kept.
        if png.is_symlink() or not png.is_file():
            continue
        relative = png.relative_to(png_dir).with_suffix("")
        title = _openclipart_title(png.stem)
        if not title:
            continue
        keywords = [_words(folder) for folder in reversed(relative.parts[:-1])]
        text = f"{title}, {' '.join(keywords)} clip art" if keywords else f"{title}, clip art"
        category = relative.parts[0] if len(relative.parts) > 1 else "unsorted"
        candidates.append(
            Candidate(
                id=_candidate_id("openclipart", relative.parts),
                image=png,
                package=tree.name,
                category=category,
                title=title,
                text=text,
                lang="en",
                artist=OPENCLIPART_ARTIST,
                source=tree.source,
                variant_key=_variant_key(tree.name, relative),
                metadata={"category": category, "keywords": ", ".join(keywords)},
            )
        )
    return candidates


def _words(name: str) -> str:
    return " ".join(re.split(r"[_\-\s]+", name)).strip()


def _openclipart_title(stem: str) -> str:
    # "chemistry_flask_matthew__02" -> "chemistry flask matthew": the number only tells apart
    # drawings that share a (truncated) name.
    return _words(re.sub(r"_\d+$", "", stem))


def _variant_key(package: str, relative: Path) -> str:
    base = re.sub(r"(_mirror|[_\- ]?\d+)$", "", relative.name.lower())
    return "/".join([package, *relative.parent.parts, base])


def _candidate_id(prefix: str, parts: Sequence[str]) -> str:
    # Ids double as file names, so keep them to characters every file system accepts.
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ".".join([prefix, *parts]))


# --- choosing originals -------------------------------------------------------------------------


def select_originals(
    candidates: Mapping[str, Sequence[Candidate]],
    max_originals: int,
    seed: int = 0,
    fingerprint: Callable[[Path], str | None] | None = None,
) -> list[Candidate]:
    """Choose up to ``max_originals`` usable candidates, balanced across packages.

    Each package gets an equal share (the others fill in when one runs short). Within a package
    categories take turns in a seeded order, so small categories are not drowned by big ones.
    A candidate is skipped when ``fingerprint`` (default: :func:`image_fingerprint`) returns
    ``None`` (tiny, broken, too large), when its content was already chosen, or when a variant of
    it (same name up to a number) was. Deterministic for a given seed; the result is sorted by id.
    """
    fingerprint = fingerprint or image_fingerprint
    packages = sorted(candidates)
    orders = {
        package: _round_robin(candidates[package], stable_seed(seed, package))
        for package in packages
    }
    positions = dict.fromkeys(packages, 0)
    chosen: list[Candidate] = []
    seen_content: set[str] = set()
    seen_variants: set[str] = set()
    seen_ids: set[str] = set()

    def take(package: str, wanted: int, pool: ThreadPoolExecutor) -> int:
        order = orders[package]
        taken = 0
        while taken < wanted and positions[package] < len(order):
            # Check a batch at a time in parallel, then accept in order: the result does not
            # depend on which thread finished first.
            start = positions[package]
            batch = order[start : start + (wanted - taken) + 8]
            positions[package] = start + len(batch)
            worth_checking = [
                candidate
                for candidate in batch
                if candidate.variant_key not in seen_variants and candidate.id not in seen_ids
            ]
            for candidate, digest in zip(
                worth_checking,
                pool.map(lambda c: fingerprint(c.image), worth_checking),
                strict=True,
            ):
                if taken >= wanted:
                    # Not taken now; step back so a later fill-in pass can still reach it.
                    positions[package] = min(positions[package], order.index(candidate))
                    break
                if digest is None or digest in seen_content:
                    continue
                if candidate.variant_key in seen_variants or candidate.id in seen_ids:
                    continue
                seen_content.add(digest)
                seen_variants.add(candidate.variant_key)
                seen_ids.add(candidate.id)
                chosen.append(candidate)
                taken += 1
        return taken

    with ThreadPoolExecutor(WORKERS) as pool:
        share, extra = divmod(max_originals, len(packages)) if packages else (0, 0)
        for index, package in enumerate(packages):
            take(package, share + (1 if index < extra else 0), pool)
        for package in packages:
            if len(chosen) >= max_originals:
                break
            take(package, max_originals - len(chosen), pool)
    return sorted(chosen, key=lambda candidate: candidate.id)


def _round_robin(candidates: Sequence[Candidate], seed: int) -> list[Candidate]:
    rng = np.random.default_rng(seed)
    by_category: dict[str, list[Candidate]] = {}
    for candidate in sorted(candidates, key=lambda candidate: candidate.id):
        by_category.setdefault(candidate.category, []).append(candidate)
    queues = []
    for category in sorted(by_category):
        members = by_category[category]
        queues.append([members[i] for i in rng.permutation(len(members))])
    queues = [queues[i] for i in rng.permutation(len(queues))]
    order = []
    for depth in range(max((len(queue) for queue in queues), default=0)):
        order.extend(queue[depth] for queue in queues if depth < len(queue))
    return order


def image_fingerprint(path: Path) -> str | None:
    """A hash of an image's decoded pixels, or ``None`` if it is unusable for the demo.

    Unusable: under 32 px on a side, over 4 million pixels, or not fully decodable.
    """
    size = _png_size(path)
    if size is not None and not _usable_size(*size):
        # Refused from the header alone: PIL would warn about (or refuse) the biggest ones.
        return None
    try:
        with Image.open(path) as image:
            width, height = image.size
            if not _usable_size(width, height):
                return None
            image.load()
            rgba = image.convert("RGBA")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    digest = hashlib.sha256(f"{width}x{height}".encode())
    digest.update(rgba.tobytes())
    return digest.hexdigest()


def _usable_size(width: int, height: int) -> bool:
    return min(width, height) >= MIN_SIDE and width * height <= MAX_ORIGINAL_PIXELS


def _png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, or ``None`` if the file is not a PNG."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(24)
    except OSError:
        return None
    if len(head) < 24 or not head.startswith(b"\x89PNG\r\n\x1a\n") or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height
