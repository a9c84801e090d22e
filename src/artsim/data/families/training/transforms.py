"""The image transformations that turn an original into a stand-in, in six families.

Geometric (crop, rotate, flip, perspective), colour (hue, saturation, posterize, palette,
grayscale), painterly (blur, edges, emboss, oil, pixelate, cartoon), collage (canvas, overlay of
another original's patch, noise), text overlay, and compression (JPEG, applied when saving).
Every transform reads only its image and a :class:`Canvas` (the item's seeded generator and the
other originals' thumbnails), so the output is deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from artsim.data.manifest.items import Item
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.errors import DataError

GENERATED_MAX_SIDE = 256
# A stand-in may overlay a patch of ANOTHER original; small thumbnails, made on first use, keep
# that cheap without holding every full image in memory.
THUMBNAIL_SIDE = 64

TRANSFORM_FAMILIES = ("geometric", "colour", "painterly", "collage", "text", "compression")

OVERLAY_WORDS = ("ART", "dream", "AI", "v2", "sample", "wow", "preview", "no. 7", "draft", "hello")


@dataclass(frozen=True)
class Canvas:
    """What a transform may read besides the image: the item's generator and other originals."""

    rng: np.random.Generator
    thumbnails: Thumbnails
    own_index: int
    # positions of the originals an overlay may borrow from: the same side of the split only
    borrowable: Sequence[int] = ()
    borrowed: list[int] = field(default_factory=list)  # what the current stand-in borrowed


class Thumbnails:
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
            base = capped(load_original(self._originals[index]))
        made = capped(base, THUMBNAIL_SIDE)
        with self._lock:
            return self._made.setdefault(index, made)


def _background(image: Image.Image) -> tuple[int, int, int]:
    return image.getpixel((0, 0))


def _crop(image: Image.Image, canvas: Canvas) -> Image.Image:
    width, height = image.size
    scale = canvas.rng.uniform(0.65, 0.9)
    crop_w, crop_h = max(1, int(width * scale)), max(1, int(height * scale))
    left = int(canvas.rng.integers(0, width - crop_w + 1))
    top = int(canvas.rng.integers(0, height - crop_h + 1))
    cropped = image.crop((left, top, left + crop_w, top + crop_h))
    return cropped.resize(image.size, Image.Resampling.BILINEAR)


def _rotate(image: Image.Image, canvas: Canvas) -> Image.Image:
    angle = float(canvas.rng.uniform(8, 35)) * (1 if canvas.rng.random() < 0.5 else -1)
    return image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=_background(image))


def _flip(image: Image.Image, canvas: Canvas) -> Image.Image:
    return ImageOps.mirror(image)


def _perspective(image: Image.Image, canvas: Canvas) -> Image.Image:
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


def _hue(image: Image.Image, canvas: Canvas) -> Image.Image:
    shift = int(canvas.rng.integers(40, 216))
    hue, saturation, value = image.convert("HSV").split()
    # Hue is a circle stored in 0..255, so the shift wraps around.
    hue = hue.point(lambda level: (level + shift) % 256)
    return Image.merge("HSV", (hue, saturation, value)).convert("RGB")


def _saturation(image: Image.Image, canvas: Canvas) -> Image.Image:
    factor = (
        canvas.rng.uniform(0.2, 0.5) if canvas.rng.random() < 0.5 else canvas.rng.uniform(1.6, 2.5)
    )
    return ImageEnhance.Color(image).enhance(factor)


def _posterize(image: Image.Image, canvas: Canvas) -> Image.Image:
    return ImageOps.posterize(image, int(canvas.rng.integers(2, 4)))


def _palette(image: Image.Image, canvas: Canvas) -> Image.Image:
    pixels = np.asarray(image)
    order = [(1, 2, 0), (2, 0, 1), (2, 1, 0), (1, 0, 2), (0, 2, 1)][int(canvas.rng.integers(5))]
    swapped = pixels[..., order]
    if canvas.rng.random() < 0.5:
        swapped = 255 - swapped
    return Image.fromarray(np.ascontiguousarray(swapped))


def _grayscale(image: Image.Image, canvas: Canvas) -> Image.Image:
    gray = ImageOps.grayscale(image)
    if canvas.rng.random() < 0.5:
        return ImageOps.colorize(gray, black=(40, 26, 13), white=(250, 235, 205))
    return gray.convert("RGB")


def _blur(image: Image.Image, canvas: Canvas) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(float(canvas.rng.uniform(1.0, 2.5))))


def _edges(image: Image.Image, canvas: Canvas) -> Image.Image:
    return image.filter(ImageFilter.EDGE_ENHANCE_MORE)


def _emboss(image: Image.Image, canvas: Canvas) -> Image.Image:
    kernel = ImageFilter.EMBOSS if canvas.rng.random() < 0.5 else ImageFilter.CONTOUR
    return Image.blend(image, image.filter(kernel), float(canvas.rng.uniform(0.35, 0.6)))


def _oil(image: Image.Image, canvas: Canvas) -> Image.Image:
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


def _pixelate(image: Image.Image, canvas: Canvas) -> Image.Image:
    factor = int(canvas.rng.integers(4, 11))
    small = image.resize(
        (max(1, image.width // factor), max(1, image.height // factor)), Image.Resampling.BILINEAR
    )
    return small.resize(image.size, Image.Resampling.NEAREST)


def _cartoon(image: Image.Image, canvas: Canvas) -> Image.Image:
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


def _canvas(image: Image.Image, canvas: Canvas) -> Image.Image:
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


def _overlay(image: Image.Image, canvas: Canvas) -> Image.Image:
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


def _noise(image: Image.Image, canvas: Canvas) -> Image.Image:
    pixels = np.asarray(image).astype(np.float32)
    pixels += canvas.rng.normal(0, canvas.rng.uniform(8, 25), pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _text(image: Image.Image, canvas: Canvas) -> Image.Image:
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


Transform = Callable[[Image.Image, Canvas], Image.Image]
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


def load_original(item: Item) -> Image.Image:
    """An original's picture; a broken file is a DataError naming the original."""
    try:
        return load_rgb(item.image, DEFAULT_MAX_PIXELS)
    except DataError as error:
        raise DataError(f"original {item.id}: {error}") from error


def capped(image: Image.Image, side: int = GENERATED_MAX_SIDE) -> Image.Image:
    """The image shrunk to at most ``side`` pixels on its long side (unchanged when smaller)."""
    if max(image.size) <= side:
        return image
    image = image.copy()
    image.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image
