"""What the evaluation-only patterns of :mod:`artsim.data.heldout_transforms` share: the working
size, the context a pattern gets (its generator and distractor pool), conversions between PIL and
OpenCV arrays, resizing, random colours, procedural tiles and fitted text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# The family works on pictures of at most this many pixels on the long side: big enough for the
# overlays to be legible, small enough that the OpenCV filters cost milliseconds.
WORKING_SIDE = 320


@dataclass(frozen=True)
class Context:
    """What a pattern may use besides the picture: the generator and the distractor pool."""

    rng: np.random.Generator
    distractors: Sequence[Image.Image]

    def distractor(self, size: tuple[int, int]) -> Image.Image:
        """A distractor picture fitted to ``size``, or a procedural tile when the pool is empty."""
        if self.distractors:
            picked = self.distractors[int(self.rng.integers(len(self.distractors)))]
            return cover(picked.convert("RGB"), size)
        return procedural_tile(size, self.rng)


# --- array helpers ------------------------------------------------------------------------------


def to_array(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def to_image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(np.clip(array, 0, 255).astype(np.uint8)), "RGB")


def fit(image: Image.Image, side: int = WORKING_SIDE) -> Image.Image:
    width, height = image.size
    scale = side / max(width, height)
    if scale >= 1:
        return image.convert("RGB")
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return to_image(cv2.resize(to_array(image), size, interpolation=cv2.INTER_AREA))


def cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` scaled to fill ``size`` and centre-cropped (no bars)."""
    width, height = size
    array = to_array(image)
    scale = max(width / array.shape[1], height / array.shape[0])
    scaled = cv2.resize(
        array,
        (max(width, round(array.shape[1] * scale)), max(height, round(array.shape[0] * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    top = (scaled.shape[0] - height) // 2
    left = (scaled.shape[1] - width) // 2
    return to_image(scaled[top : top + height, left : left + width])


def scaled(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return to_image(cv2.resize(to_array(image), size, interpolation=cv2.INTER_AREA))


def random_colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, 3))


def procedural_tile(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    width, height = size
    kind = int(rng.integers(3))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    start, end = np.array(random_colour(rng), np.float32), np.array(random_colour(rng), np.float32)
    if kind == 0:  # a diagonal gradient
        angle = rng.uniform(0, np.pi)
        mix = xs * np.cos(angle) + ys * np.sin(angle)
        mix = (mix - mix.min()) / max(float(np.ptp(mix)), 1.0)
    elif kind == 1:  # concentric rings
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        mix = (np.sin(np.hypot(xs - cx, ys - cy) / rng.uniform(3, 12)) + 1) / 2
    else:  # smooth noise
        coarse = rng.random((int(rng.integers(3, 7)), int(rng.integers(3, 7)))).astype(np.float32)
        mix = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    pixels = start * (1 - mix[..., None]) + end * mix[..., None]
    return to_image(pixels)


_FONT_CACHE: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}


def load_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font: the same glyphs on every machine.
    size = max(8, int(size))
    if size not in _FONT_CACHE:
        _FONT_CACHE[size] = ImageFont.load_default(size=size)
    return _FONT_CACHE[size]


def draw_text_fitted(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    text: str,
    fill: tuple[int, ...],
    stroke: tuple[int, ...] | None,
) -> None:
    """Draw ``text`` centred in ``box``, as large as fits."""
    left, top, right, bottom = box
    size = max(8, bottom - top)
    while size > 8:
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=load_font(size), stroke_width=size // 12)
        if x1 - x0 <= right - left and y1 - y0 <= bottom - top:
            break
        size -= 2
    font = load_font(size)
    width = max(1, size // 12)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font, stroke_width=width)
    x = left + (right - left - (x1 - x0)) // 2 - x0
    y = top + (bottom - top - (y1 - y0)) // 2 - y0
    draw.text((x, y), text, font=font, fill=fill, stroke_width=width, stroke_fill=stroke)
