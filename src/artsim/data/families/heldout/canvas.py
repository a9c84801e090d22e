"""What the evaluation-only patterns of :mod:`artsim.data.families.heldout.transforms` share: the
working size, the context a pattern gets (its generator and distractor pool), where a pattern put
the original (:class:`Placement`), conversions between PIL and OpenCV arrays, resizing, random
colours, procedural tiles and fitted text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# The family works on pictures of at most this many pixels on the long side: big enough for the
# overlays to be legible, small enough that the OpenCV filters cost milliseconds.
WORKING_SIDE = 320


Box = tuple[float, float, float, float]  # left, top, right, bottom


@dataclass(frozen=True)
class Context:
    """What a pattern may use besides the picture: the generator and the distractor pool.

    ``moves``, when given, collects where a pattern put its input: a pattern that moves, cuts or
    frames the picture calls :meth:`moved` (patterns that only change pixels call nothing). The
    generator is never drawn from for it, so tracking changes no picture.
    """

    rng: np.random.Generator
    distractors: Sequence[Image.Image]
    moves: list[tuple[Box, Box]] | None = None

    def distractor(self, size: tuple[int, int]) -> Image.Image:
        """A distractor picture fitted to ``size``, or a procedural tile when the pool is empty."""
        if self.distractors:
            picked = self.distractors[int(self.rng.integers(len(self.distractors)))]
            return cover(picked.convert("RGB"), size)
        return procedural_tile(size, self.rng)

    def moved(self, window_in: Box, window_out: Box, canvas: tuple[int, int]) -> None:
        """The part ``window_in`` of the input (pixels) now lies at ``window_out`` of an output
        of size ``canvas``; the part of it outside the canvas is cut, on both sides alike."""
        if self.moves is None:
            return
        (a0, b0, a1, b1), (x0, y0, x1, y1) = window_in, window_out
        sx, sy = (a1 - a0) / max(x1 - x0, 1e-9), (b1 - b0) / max(y1 - y0, 1e-9)
        c0, d0 = max(x0, 0.0), max(y0, 0.0)
        c1, d1 = min(x1, float(canvas[0])), min(y1, float(canvas[1]))
        if c1 <= c0 or d1 <= d0:
            self.moves.append(((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)))
            return
        cut_in = (
            a0 + (c0 - x0) * sx,
            b0 + (d0 - y0) * sy,
            a0 + (c1 - x0) * sx,
            b0 + (d1 - y0) * sy,
        )
        self.moves.append((cut_in, (c0, d0, c1, d1)))


def _map_box(box: Box, frame: Box, onto: Box) -> Box:
    """``box`` (inside ``frame``) carried by the axis-aligned linear map of ``frame`` onto
    ``onto``."""
    (f0, g0, f1, g1), (o0, p0, o1, p1) = frame, onto
    u, v = (o1 - o0) / max(f1 - f0, 1e-9), (p1 - p0) / max(g1 - g0, 1e-9)
    return (
        o0 + (box[0] - f0) * u,
        p0 + (box[1] - g0) * v,
        o0 + (box[2] - f0) * u,
        p0 + (box[3] - g0) * v,
    )


@dataclass(frozen=True)
class Placement:
    """Where an original's pixels lie in a derived picture: ``box`` (pixels of the derived
    picture) holds the part ``source`` of the original (fractions of its width and height,
    ``(0, 0, 1, 1)`` for all of it). ``box`` is ``None`` when nothing of the original is left.

    An axis-aligned box: a tilted or warped original is its bounding box.
    """

    box: Box | None
    source: Box = (0.0, 0.0, 1.0, 1.0)

    @classmethod
    def whole(cls, size: tuple[int, int]) -> Placement:
        return cls((0.0, 0.0, float(size[0]), float(size[1])))

    def after(self, window_in: Box, window_out: Box) -> Placement:
        """This placement after a step that put the input's ``window_in`` at ``window_out``."""
        if self.box is None:
            return self
        (x0, y0, x1, y1), (a0, b0, a1, b1) = self.box, window_in
        kept = (max(x0, a0), max(y0, b0), min(x1, a1), min(y1, b1))
        if kept[2] <= kept[0] or kept[3] <= kept[1]:
            return Placement(None, self.source)
        # the kept part, as a share of the placed box (for the source) and of the input window
        # (for the output): one linear map each
        source = _map_box(kept, self.box, self.source)
        box = _map_box(kept, window_in, window_out)
        return Placement(box, source)

    def scaled(self, before: tuple[int, int], after: tuple[int, int]) -> Placement:
        """This placement after the picture was resized from ``before`` to ``after``."""
        full = (0.0, 0.0, float(before[0]), float(before[1]))
        return self.after(full, (0.0, 0.0, float(after[0]), float(after[1])))


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


def cover_window(image_size: tuple[int, int], size: tuple[int, int]) -> Box:
    """The part of a picture of ``image_size`` that :func:`cover` keeps for ``size`` (pixels)."""
    width, height = size
    image_width, image_height = image_size
    scale = max(width / image_width, height / image_height)
    scaled_width = max(width, round(image_width * scale))
    scaled_height = max(height, round(image_height * scale))
    top = (scaled_height - height) // 2
    left = (scaled_width - width) // 2
    sx, sy = image_width / scaled_width, image_height / scaled_height
    return (left * sx, top * sy, (left + width) * sx, (top + height) * sy)


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
