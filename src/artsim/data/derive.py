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
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from artsim.data.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.data.items import Item
from artsim.data.manifest import Manifest, write_manifest
from artsim.errors import DataError

GENERATED_MAX_SIDE = 256
# A stand-in may overlay a patch of ANOTHER original; small thumbnails, made on first use, keep
# that cheap without holding every full image in memory.
# original without holding every full image in memory.
THUMBNAIL_SIDE = 64
PROGRESS_MIN_ORIGINALS = 50
WORKERS = 2

FAMILIES = ("geometric", "colour", "painterly", "collage", "text", "compression")

STYLES_EN = (
    "watercolor",
    "oil painting",
    "pixel art",
    "pencil sketch",
    "poster",
    "impressionist",
    "cartoon",
    "art nouveau",
    "ukiyo-e",
    "pop art",
    "low poly",
    "digital art",
)
STYLES_ES = {
    "watercolor": "acuarela",
    "oil painting": "óleo",
    "pixel art": "pixel art",
    "pencil sketch": "boceto a lápiz",
    "poster": "cartel",
    "impressionist": "impresionista",
    "cartoon": "dibujo animado",
    "art nouveau": "art nouveau",
    "ukiyo-e": "ukiyo-e",
    "pop art": "pop art",
    "low poly": "low poly",
    "digital art": "arte digital",
    "black and white": "blanco y negro",
    "collage": "collage",
    "glitch art": "glitch",
    "embossed": "relieve",
}
# A prompt usually names the look the image has, so a transform that gives a recognisable look
# suggests the style word (the rest pick a style at random).
STYLE_OF_TRANSFORM = {
    "pixelate": "pixel art",
    "cartoon": "cartoon",
    "oil": "oil painting",
    "blur": "watercolor",
    "grayscale": "black and white",
    "posterize": "poster",
    "canvas": "collage",
    "overlay": "collage",
    "palette": "pop art",
    "emboss": "embossed",
    "noise": "glitch art",
}

TEMPLATES_EN = (
    "a painting of {caption}, {style}",
    "{caption}, {style}, trending on artstation, highly detailed",
    "{style} of {caption}",
    "{keywords}, {style}, 4k",
    "digital illustration of {caption} in the style of {style}",
    "{caption}, {style}, masterpiece, sharp focus",
    "{keywords}",
)
TEMPLATES_ES = (
    "{caption}, estilo {style}, muy detallado",
    "una ilustración de {caption} al estilo {style}",
    "{caption}, {style}, tendencia en artstation, alta resolución",
    "{keywords}, estilo {style}, 4k",
    "{caption} en {style}, obra maestra",
)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "and",
        "or",
        "with",
        "for",
        "from",
        "by",
        "is",
        "are",
        "its",
        "it",
        "this",
        "that",
        "called",
        "un",
        "una",
        "unos",
        "unas",
        "el",
        "la",
        "los",
        "las",
        "de",
        "del",
        "en",
        "y",
        "o",
        "con",
        "para",
        "por",
        "al",
        "se",
        "que",
        "su",
    ]
)
OVERLAY_WORDS = ("ART", "dream", "AI", "v2", "sample", "wow", "preview", "no. 7", "draft", "hello")
SPANISH_SHARE = 0.5


@dataclass(frozen=True)
class _Canvas:
    """What a transform may read besides the image: the item's generator and other originals."""

    rng: np.random.Generator
    thumbnails: _Thumbnails
    own_index: int
    # positions of the originals an overlay may borrow from: the same side of the split only
    borrowable: Sequence[int] = ()
    borrowed: list[int] = field(default_factory=list)  # what the current stand-in borrowed


class _Thumbnails:
    """Thumbnails of the originals by position, loaded on first use and shared by the threads.

    A thumbnail depends only on its file, so two threads racing to make the same one store the
    same picture and the output stays deterministic.
    """

    def __init__(self, originals: Sequence[Item]):
        self._originals = originals
        self._made: dict[int, Image.Image] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._originals)

    def id_of(self, index: int) -> str:
        return self._originals[index].id

    def get(self, index: int, base: Image.Image | None = None) -> Image.Image:
        with self._lock:
            made = self._made.get(index)
        if made is not None:
            return made
        # Always made from the 256 px base, whichever path gets here first: resizing in one step
        # or in two gives slightly different pixels.
        if base is None:
            base = _capped(_load(self._originals[index]))
        made = _capped(base, THUMBNAIL_SIDE)
        with self._lock:
            return self._made.setdefault(index, made)


def default_sides(
    originals: Sequence[Item],
    per_original: int,
    seed: int,
    val_fraction: float = 0.2,
    calib_fraction: float = 0.5,
) -> dict[str, str]:
    """The side (train, val, calib) each original's group will take in ``artsim train``'s
    default split of the derived manifest (same seed and fractions): overlays borrow within it."""
    from artsim.data.split import carve_calibration, group_split

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
) -> Path:
    """Write ``out_dir/manifest.csv``: every original plus ``per_original`` stand-ins for each.

    Originals are copied unchanged into ``out_dir/images/`` with their id, group, text, language,
    artist, title, source and metadata. The manifest's own generated rows are not carried over.
    Each stand-in gets the id ``{original id}~gen{k}``, the original's group, an image of at most
    256 px on the long side (PNG, or JPEG when the compression family was picked), a prompt-like
    text (Spanish for some items when the original has a Spanish caption; none when the original
    has no text) and the metadata column ``transforms`` (for example ``rotate+posterize+jpeg``).

    An overlay pastes a patch of ANOTHER original, drawn only among the originals on the same
    side of the split (``sides``: group -> side; by default the split ``artsim train`` makes of
    the output with the same seed, see :func:`default_sides`), so no stand-in carries a piece of
    an original from the other side. The borrowed original's id is kept in the metadata column
    ``borrowed``. Training with another split: pass it as ``sides``.

    >>> derive_manifest(load_manifest("art/manifest.csv"), Path("derived"))  # doctest: +SKIP
    PosixPath('derived/manifest.csv')
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
    show_progress = len(originals) >= PROGRESS_MIN_ORIGINALS
    thumbnails = _Thumbnails(originals)
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
        canvas = _Canvas(rng=rng, thumbnails=thumbnails, own_index=index, borrowable=borrowable)
        base = _capped(_load(original))
        thumbnails.get(index, base)
        for k in range(per_original):
            items.append(_make_stand_in(original, base, k, stems[index], image_dir, canvas, seed))
        return items

    groups = _run_parallel(
        derive_one, list(range(len(originals))), "Deriving stand-ins", show_progress=show_progress
    )
    write_manifest([item for group in groups for item in group], manifest_path)
    return manifest_path


def stable_seed(seed: int, key: str) -> int:
    """A 64-bit seed from ``(seed, key)`` that is the same in every process and on every machine."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def make_prompt(
    original: Item, rng: np.random.Generator, style: str | None = None
) -> tuple[str, str]:
    """A prompt-like text and its language for one stand-in of ``original``; ``("", "")`` if none.

    English templates wrap the original's caption; when the original has a Spanish caption
    (metadata ``text_es``, or its own text with ``lang == "es"``) some prompts are Spanish.
    """
    spanish_caption = original.metadata.get("text_es", "").strip()
    if not spanish_caption and original.lang == "es":
        spanish_caption = original.text.strip()
    own_caption = "" if original.lang == "es" else original.text.strip()
    if not own_caption and not spanish_caption:
        return "", ""
    use_spanish = bool(spanish_caption) and (not own_caption or rng.random() < SPANISH_SHARE)
    style = style or STYLES_EN[int(rng.integers(len(STYLES_EN)))]
    if use_spanish:
        caption, lang, templates = spanish_caption, "es", TEMPLATES_ES
        style = STYLES_ES.get(style, style)
    else:
        caption, lang, templates = own_caption, original.lang or "en", TEMPLATES_EN
    # The title is in the original's language, so it only feeds keywords for that language.
    keywords = _keywords(caption if use_spanish else f"{original.title} {caption}", rng)
    template = templates[int(rng.integers(len(templates)))]
    text = template.format(caption=_as_phrase(caption), style=style, keywords=keywords)
    return text, lang


# --- one stand-in -------------------------------------------------------------------------------


def _make_stand_in(
    original: Item,
    base: Image.Image,
    k: int,
    stem: str,
    image_dir: Path,
    canvas: _Canvas,
    seed: int,
) -> Item:
    rng = canvas.rng
    n_families = int(rng.integers(2, 4))
    picked = set(rng.choice(len(FAMILIES), size=n_families, replace=False).tolist())
    # Applied in a fixed order (compression always last) because that is how a generated image
    # is made: composed and styled first, then saved and re-encoded when shared.
    families = [family for position, family in enumerate(FAMILIES) if position in picked]
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
    image = _capped(image)
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


# --- transformation families --------------------------------------------------------------------


def _background(image: Image.Image) -> tuple[int, int, int]:
    return image.getpixel((0, 0))


def _crop(image: Image.Image, canvas: _Canvas) -> Image.Image:
    width, height = image.size
    scale = canvas.rng.uniform(0.65, 0.9)
    crop_w, crop_h = max(1, int(width * scale)), max(1, int(height * scale))
    left = int(canvas.rng.integers(0, width - crop_w + 1))
    top = int(canvas.rng.integers(0, height - crop_h + 1))
    cropped = image.crop((left, top, left + crop_w, top + crop_h))
    return cropped.resize(image.size, Image.Resampling.BILINEAR)


def _rotate(image: Image.Image, canvas: _Canvas) -> Image.Image:
    angle = float(canvas.rng.uniform(8, 35)) * (1 if canvas.rng.random() < 0.5 else -1)
    return image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=_background(image))


def _flip(image: Image.Image, canvas: _Canvas) -> Image.Image:
    return ImageOps.mirror(image)


def _perspective(image: Image.Image, canvas: _Canvas) -> Image.Image:
    width, height = image.size
    corners = np.array([(0, 0), (width, 0), (width, height), (0, height)], dtype=np.float64)
    moved = corners + canvas.rng.uniform(-0.18, 0.18, size=(4, 2)) * (width, height)
    # Solve for the 8 coefficients that map output corners back to input corners.
    rows, targets = [], []
    for (x, y), (u, v) in zip(corners, moved, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        targets.extend([u, v])
    coefficients = np.linalg.solve(np.array(rows), np.array(targets))
    return image.transform(
        image.size,
        Image.Transform.PERSPECTIVE,
        tuple(coefficients.tolist()),
        resample=Image.Resampling.BILINEAR,
        fillcolor=_background(image),
    )


def _hue(image: Image.Image, canvas: _Canvas) -> Image.Image:
    shift = int(canvas.rng.integers(40, 216))
    hue, saturation, value = image.convert("HSV").split()
    # Hue is a circle stored in 0..255, so the shift wraps around.
    hue = hue.point(lambda level: (level + shift) % 256)
    return Image.merge("HSV", (hue, saturation, value)).convert("RGB")


def _saturation(image: Image.Image, canvas: _Canvas) -> Image.Image:
    factor = (
        canvas.rng.uniform(0.2, 0.5) if canvas.rng.random() < 0.5 else canvas.rng.uniform(1.6, 2.5)
    )
    return ImageEnhance.Color(image).enhance(factor)


def _posterize(image: Image.Image, canvas: _Canvas) -> Image.Image:
    return ImageOps.posterize(image, int(canvas.rng.integers(2, 4)))


def _palette(image: Image.Image, canvas: _Canvas) -> Image.Image:
    pixels = np.asarray(image)
    order = [(1, 2, 0), (2, 0, 1), (2, 1, 0), (1, 0, 2), (0, 2, 1)][int(canvas.rng.integers(5))]
    swapped = pixels[..., order]
    if canvas.rng.random() < 0.5:
        swapped = 255 - swapped
    return Image.fromarray(np.ascontiguousarray(swapped))


def _grayscale(image: Image.Image, canvas: _Canvas) -> Image.Image:
    gray = ImageOps.grayscale(image)
    if canvas.rng.random() < 0.5:
        return ImageOps.colorize(gray, black=(40, 26, 13), white=(250, 235, 205))
    return gray.convert("RGB")


def _blur(image: Image.Image, canvas: _Canvas) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(float(canvas.rng.uniform(1.0, 2.5))))


def _edges(image: Image.Image, canvas: _Canvas) -> Image.Image:
    return image.filter(ImageFilter.EDGE_ENHANCE_MORE)


def _emboss(image: Image.Image, canvas: _Canvas) -> Image.Image:
    kernel = ImageFilter.EMBOSS if canvas.rng.random() < 0.5 else ImageFilter.CONTOUR
    return Image.blend(image, image.filter(kernel), float(canvas.rng.uniform(0.35, 0.6)))


def _oil(image: Image.Image, canvas: _Canvas) -> Image.Image:
    # A mode filter over a small palette gives flat, blocky brush strokes; on a half-size palette
    # image it costs a few ms, where on full-size RGB it costs tens.
    half = (max(1, image.width // 2), max(1, image.height // 2))
    small = image.resize(half, Image.Resampling.BILINEAR).quantize(
        int(canvas.rng.integers(16, 40)), method=Image.Quantize.FASTOCTREE
    )
    strokes = small.filter(ImageFilter.ModeFilter(5)).convert("RGB")
    strokes = strokes.resize(image.size, Image.Resampling.BILINEAR)
    # The mode filter wipes out thin lines (a line is never the majority), which would erase
    # line art entirely; keeping the darker of the two brings the outlines back.
    return ImageChops.darker(strokes, image)


def _pixelate(image: Image.Image, canvas: _Canvas) -> Image.Image:
    factor = int(canvas.rng.integers(4, 11))
    small = image.resize(
        (max(1, image.width // factor), max(1, image.height // factor)), Image.Resampling.BILINEAR
    )
    return small.resize(image.size, Image.Resampling.NEAREST)


def _cartoon(image: Image.Image, canvas: _Canvas) -> Image.Image:
    flat = ImageOps.posterize(image.filter(ImageFilter.SMOOTH_MORE), 3)
    edges = image.convert("L").filter(ImageFilter.FIND_EDGES).point(lambda v: 0 if v > 40 else 255)
    return Image.composite(flat, Image.new("RGB", image.size, (20, 20, 20)), edges)


def _texture(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    width, height = size
    colour_a = rng.integers(0, 256, 3).astype(np.float32)
    colour_b = rng.integers(0, 256, 3).astype(np.float32)
    if rng.random() < 0.5:
        # Stripes at a random period and direction, like wallpaper or fabric.
        period = int(rng.integers(6, 24))
        xs, ys = np.meshgrid(np.arange(width), np.arange(height))
        along = xs if rng.random() < 0.5 else ys
        mix = ((along // period) % 2).astype(np.float32)
    else:
        # Smooth blotches: upscaled low-resolution noise, like paper or canvas.
        coarse = Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8))
        mix = np.asarray(coarse.resize(size, Image.Resampling.BICUBIC)).astype(np.float32) / 255
    mix = mix[..., None]
    pixels = colour_a * (1 - mix) + colour_b * mix + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _canvas(image: Image.Image, canvas: _Canvas) -> Image.Image:
    background = _texture(image.size, canvas.rng)
    scale = canvas.rng.uniform(0.5, 0.85)
    small = image.resize(
        (max(1, int(image.width * scale)), max(1, int(image.height * scale))),
        Image.Resampling.BILINEAR,
    )
    left = int(canvas.rng.integers(0, image.width - small.width + 1))
    top = int(canvas.rng.integers(0, image.height - small.height + 1))
    background.paste(small, (left, top))
    return background


def _overlay(image: Image.Image, canvas: _Canvas) -> Image.Image:
    if not canvas.borrowable:
        return _canvas(image, canvas)
    # Draw among the other groups on the same side of the split only.
    position = canvas.borrowable[int(canvas.rng.integers(len(canvas.borrowable)))]
    canvas.borrowed.append(position)
    other = canvas.thumbnails.get(position)
    side = max(1, int(min(image.size) * canvas.rng.uniform(0.3, 0.6)))
    patch = other.resize((side, side), Image.Resampling.BILINEAR)
    left = int(canvas.rng.integers(0, image.width - side + 1))
    top = int(canvas.rng.integers(0, image.height - side + 1))
    region = image.crop((left, top, left + side, top + side))
    blended = Image.blend(region, patch, float(canvas.rng.uniform(0.2, 0.35)))
    result = image.copy()
    result.paste(blended, (left, top))
    return result


def _noise(image: Image.Image, canvas: _Canvas) -> Image.Image:
    pixels = np.asarray(image).astype(np.float32)
    pixels += canvas.rng.normal(0, canvas.rng.uniform(8, 25), pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _text(image: Image.Image, canvas: _Canvas) -> Image.Image:
    result = image.copy()
    draw = ImageDraw.Draw(result)
    word = OVERLAY_WORDS[int(canvas.rng.integers(len(OVERLAY_WORDS)))]
    font = _font(max(8, int(min(image.size) * canvas.rng.uniform(0.1, 0.22))))
    left, top, right, bottom = draw.textbbox((0, 0), word, font=font)
    x = int(canvas.rng.integers(0, max(1, image.width - (right - left))))
    y = int(canvas.rng.integers(0, max(1, image.height - (bottom - top))))
    colour = tuple(int(c) for c in canvas.rng.integers(0, 256, 3))
    draw.text((x - left, y - top), word, fill=colour, font=font)
    return result


_FONTS: dict[int, ImageFont.ImageFont | ImageFont.FreeTypeFont] = {}


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    # Pillow's bundled font: the same glyphs on every machine, so the images stay reproducible.
    if size not in _FONTS:
        _FONTS[size] = ImageFont.load_default(size=size)
    return _FONTS[size]


Transform = Callable[[Image.Image, _Canvas], Image.Image]
TRANSFORMS: dict[str, dict[str, Transform]] = {
    "geometric": {"crop": _crop, "rotate": _rotate, "flip": _flip, "perspective": _perspective},
    "colour": {
        "hue": _hue,
        "saturation": _saturation,
        "posterize": _posterize,
        "palette": _palette,
        "grayscale": _grayscale,
    },
    "painterly": {
        "blur": _blur,
        "edges": _edges,
        "emboss": _emboss,
        "oil": _oil,
        "pixelate": _pixelate,
        "cartoon": _cartoon,
    },
    "collage": {"canvas": _canvas, "overlay": _overlay, "noise": _noise},
    "text": {"text": _text},
}


# --- helpers ------------------------------------------------------------------------------------


def _load(item: Item) -> Image.Image:
    try:
        return load_rgb(item.image, DEFAULT_MAX_PIXELS)
    except DataError as error:
        raise DataError(f"original {item.id}: {error}") from error


def _capped(image: Image.Image, side: int = GENERATED_MAX_SIDE) -> Image.Image:
    if max(image.size) <= side:
        return image
    image = image.copy()
    image.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


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
    stems = []
    for item_id in ids:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id).strip("._") or "item"
        if safe != item_id:
            safe = f"{safe[:80]}-{hashlib.sha256(item_id.encode()).hexdigest()[:8]}"
        stems.append(safe)
    return stems


def _keywords(text: str, rng: np.random.Generator, limit: int = 5) -> str:
    words = []
    for word in re.findall(r"[^\W\d_][\w'-]*", text.lower()):
        if len(word) > 2 and word not in STOPWORDS and word not in words:
            words.append(word)
    if not words:
        return _as_phrase(text)
    order = rng.permutation(len(words))[:limit]
    return ", ".join(words[position] for position in order)


def _as_phrase(caption: str) -> str:
    """A caption as it reads inside a prompt: no final full stop, no capital on a plain word."""
    phrase = caption.strip().rstrip(".").strip()
    first = phrase.split(" ", 1)[0]
    # "A fly." -> "a fly", "Una mosca." -> "una mosca"; "US" or "I" stay as they are.
    if first == "A" or (len(first) > 1 and first[0].isupper() and first[1:].islower()):
        phrase = phrase[0].lower() + phrase[1:]
    return phrase


def _run_parallel(function, inputs: Sequence, description: str, *, show_progress: bool) -> list:
    """``[function(x) for x in inputs]`` on two threads (PIL releases the GIL while it works)."""
    results: list = [None] * len(inputs)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {pool.submit(function, value): position for position, value in enumerate(inputs)}
        if show_progress:
            from rich.progress import Progress

            with Progress(transient=True) as progress:
                task = progress.add_task(description, total=len(inputs))
                for future, position in futures.items():
                    results[position] = future.result()
                    progress.advance(task)
        else:
            for future, position in futures.items():
                results[position] = future.result()
    return results
