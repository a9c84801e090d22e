"""A second derivation family, for EVALUATION only: ISC/AnyPattern-like copy patterns.

Training sees the stand-ins of :mod:`artsim.data.derive`. A model judged on those same transforms
can look good by learning to undo them; this family is written apart from it (its own code, mostly
OpenCV instead of PIL, its own parameter ranges, its own patterns) so that an evaluation on it
says something about transformations the model never trained on. It follows the patterns of the
ISC 2021 and AnyPattern copy-detection benchmarks: text and emoji overlays, screenshot frames,
meme captions, mosaics, collages, perspective warps, blur and noise, partial crops with padding,
colour grading, painterly filters, and chains of two or three of these.

Mosaics and collages borrow other pictures only from a ``distractors`` pool the caller gives (a
folder of unrelated images, say), never from the other originals of the gallery being evaluated:
a query holding two gallery originals would have two right answers. With no pool, those patterns
fill in with procedural tiles (gradients, stripes, noise).

Everything is deterministic given the random generator passed in.

>>> rng = np.random.default_rng(0)
>>> [name for _, name in derive_heldout(Image.new("RGB", (64, 64)), rng, 3)]  # doctest: +SKIP
['meme_caption', 'perspective_warp', 'combo:crop_pad+painterly']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# The family works on pictures of at most this many pixels on the long side: big enough for the
# overlays to be legible, small enough that the OpenCV filters cost milliseconds.
WORKING_SIDE = 320
OVERLAY_PHRASES = (
    "SALE",
    "#art",
    "new drop!",
    "@gallery_daily",
    "limited",
    "follow for more",
    "original??",
    "2024",
    "repost",
    "nuevo",
    "arte digital",
    "lol",
    "exclusive",
    "(c) studio",
)
MEME_LINES = (
    ("WHEN YOU SEE IT", "YOU CAN'T UNSEE IT"),
    ("NOBODY:", "ME AT 3 AM"),
    ("ONE DOES NOT SIMPLY", "COPY THIS ART"),
    ("CUANDO LO VES", "YA NO PUEDES DEJAR DE VERLO"),
    ("MY PLANS", "REALITY"),
    ("THIS IS FINE", ""),
    ("", "TOP TEXT BOTTOM TEXT"),
    ("EXPECTATION", ""),
)
UI_WORDS = ("Gallery", "Photos", "Preview", "artsim", "Downloads", "Inbox", "Feed", "Galería")


@dataclass(frozen=True)
class Context:
    """What a pattern may use besides the picture: the generator and the distractor pool."""

    rng: np.random.Generator
    distractors: Sequence[Image.Image]

    def distractor(self, size: tuple[int, int]) -> Image.Image:
        """A distractor picture fitted to ``size``, or a procedural tile when the pool is empty."""
        if self.distractors:
            picked = self.distractors[int(self.rng.integers(len(self.distractors)))]
            return _cover(picked.convert("RGB"), size)
        return _procedural_tile(size, self.rng)


# --- array helpers ------------------------------------------------------------------------------


def _to_array(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _to_image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(np.clip(array, 0, 255).astype(np.uint8)), "RGB")


def _fit(image: Image.Image, side: int = WORKING_SIDE) -> Image.Image:
    width, height = image.size
    scale = side / max(width, height)
    if scale >= 1:
        return image.convert("RGB")
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return _to_image(cv2.resize(_to_array(image), size, interpolation=cv2.INTER_AREA))


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` scaled to fill ``size`` and centre-cropped (no bars)."""
    width, height = size
    array = _to_array(image)
    scale = max(width / array.shape[1], height / array.shape[0])
    scaled = cv2.resize(
        array,
        (max(width, round(array.shape[1] * scale)), max(height, round(array.shape[0] * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    top = (scaled.shape[0] - height) // 2
    left = (scaled.shape[1] - width) // 2
    return _to_image(scaled[top : top + height, left : left + width])


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return _to_image(cv2.resize(_to_array(image), size, interpolation=cv2.INTER_AREA))


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, 3))


def _procedural_tile(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    width, height = size
    kind = int(rng.integers(3))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    start, end = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
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
    return _to_image(pixels)


_FONT_CACHE: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font: the same glyphs on every machine.
    size = max(8, int(size))
    if size not in _FONT_CACHE:
        _FONT_CACHE[size] = ImageFont.load_default(size=size)
    return _FONT_CACHE[size]


def _draw_text_fitted(
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
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=_font(size), stroke_width=size // 12)
        if x1 - x0 <= right - left and y1 - y0 <= bottom - top:
            break
        size -= 2
    font = _font(size)
    width = max(1, size // 12)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font, stroke_width=width)
    x = left + (right - left - (x1 - x0)) // 2 - x0
    y = top + (bottom - top - (y1 - y0)) // 2 - y0
    draw.text((x, y), text, font=font, fill=fill, stroke_width=width, stroke_fill=stroke)


# --- the patterns -------------------------------------------------------------------------------


def text_overlay(image: Image.Image, ctx: Context) -> Image.Image:
    """One to three short phrases (hashtags, handles, sale tags) written over the picture."""
    rng = ctx.rng
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(1, 4))):
        phrase = OVERLAY_PHRASES[int(rng.integers(len(OVERLAY_PHRASES)))]
        font = _font(min(base.size) * rng.uniform(0.07, 0.18))
        alpha = int(rng.integers(150, 256))
        x0, y0, x1, y1 = draw.textbbox((0, 0), phrase, font=font)
        x = int(rng.integers(0, max(1, base.width - (x1 - x0)))) - x0
        y = int(rng.integers(0, max(1, base.height - (y1 - y0)))) - y0
        draw.text(
            (x, y),
            phrase,
            font=font,
            fill=(*_colour(rng), alpha),
            stroke_width=int(rng.integers(0, 3)),
            stroke_fill=(*_colour(rng), alpha),
        )
    return Image.alpha_composite(base, layer).convert("RGB")


def _sticker(kind: int, side: int, rng: np.random.Generator) -> Image.Image:
    sticker = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sticker)
    s = side - 1
    if kind == 0:  # smiley
        draw.ellipse((0, 0, s, s), fill=(255, 204, 51, 255), outline=(120, 80, 0, 255), width=2)
        eye = max(2, side // 10)
        draw.ellipse((s * 0.3 - eye, s * 0.35 - eye, s * 0.3 + eye, s * 0.35 + eye), fill="black")
        draw.ellipse((s * 0.7 - eye, s * 0.35 - eye, s * 0.7 + eye, s * 0.35 + eye), fill="black")
        draw.arc((s * 0.22, s * 0.3, s * 0.78, s * 0.8), 20, 160, fill="black", width=max(2, eye))
    elif kind == 1:  # heart
        red = (230, 30, 70, 255)
        draw.ellipse((0, s * 0.05, s * 0.55, s * 0.6), fill=red)
        draw.ellipse((s * 0.45, s * 0.05, s, s * 0.6), fill=red)
        draw.polygon([(s * 0.03, s * 0.42), (s * 0.97, s * 0.42), (s * 0.5, s)], fill=red)
    elif kind == 2:  # star
        points = []
        for k in range(10):
            radius = s / 2 if k % 2 == 0 else s / 5
            angle = -np.pi / 2 + k * np.pi / 5
            points.append((s / 2 + radius * np.cos(angle), s / 2 + radius * np.sin(angle)))
        draw.polygon(points, fill=(255, 215, 0, 255), outline=(160, 110, 0, 255))
    elif kind == 3:  # speech bubble
        draw.rounded_rectangle((0, 0, s, s * 0.7), radius=side // 5, fill=(255, 255, 255, 240))
        draw.polygon([(s * 0.2, s * 0.65), (s * 0.4, s * 0.65), (s * 0.15, s)], fill="white")
        for k in range(3):
            cx = s * (0.3 + 0.2 * k)
            draw.ellipse((cx - s * 0.05, s * 0.3, cx + s * 0.05, s * 0.4), fill=(60, 60, 60, 255))
    else:  # thumbs-up-like badge: a coloured disc with a tick
        draw.ellipse((0, 0, s, s), fill=(*_colour(rng, 30, 220), 255))
        width = max(2, side // 8)
        draw.line([(s * 0.25, s * 0.5), (s * 0.45, s * 0.72), (s * 0.78, s * 0.3)], "white", width)
    return sticker.rotate(float(rng.uniform(-30, 30)), resample=Image.Resampling.BICUBIC)


def emoji_overlay(image: Image.Image, ctx: Context) -> Image.Image:
    """Two to six emoji-like stickers (smileys, hearts, stars, speech bubbles) on the picture."""
    rng = ctx.rng
    result = image.convert("RGBA")
    for _ in range(int(rng.integers(2, 7))):
        side = max(8, int(min(result.size) * rng.uniform(0.12, 0.3)))
        sticker = _sticker(int(rng.integers(5)), side, rng)
        x = int(rng.integers(-side // 4, max(1, result.width - side * 3 // 4)))
        y = int(rng.integers(-side // 4, max(1, result.height - side * 3 // 4)))
        result.alpha_composite(sticker, (max(0, x), max(0, y)))
    return result.convert("RGB")


def screenshot_frame(image: Image.Image, ctx: Context) -> Image.Image:
    """The picture inside a desktop window or a phone screen, as in a screenshot of it."""
    rng = ctx.rng
    dark = bool(rng.random() < 0.5)
    chrome = (38, 38, 42) if dark else (236, 236, 240)
    ink = (220, 220, 220) if dark else (40, 40, 40)
    if rng.random() < 0.5:  # desktop window on a wallpaper
        scale = rng.uniform(0.6, 0.85)
        content = _scaled(image, scale)
        bar = max(12, int(content.height * 0.09))
        width, height = content.width + 8, content.height + bar + 6
        canvas = ctx.distractor((int(width * rng.uniform(1.1, 1.3)), int(height * 1.15)))
        left = int(rng.integers(0, canvas.width - width + 1))
        top = int(rng.integers(0, canvas.height - height + 1))
        draw = ImageDraw.Draw(canvas)
        draw.rectangle((left, top, left + width, top + height), fill=chrome)
        for k, dot in enumerate(((255, 95, 87), (254, 188, 46), (40, 200, 64))):
            cx = left + 8 + k * bar * 0.8
            draw.ellipse((cx, top + bar * 0.3, cx + bar * 0.4, top + bar * 0.7), fill=dot)
        title = UI_WORDS[int(rng.integers(len(UI_WORDS)))]
        _draw_text_fitted(
            draw, (left + width // 3, top + 2, left + width - 8, top + bar - 2), title, ink, None
        )
        canvas.paste(content, (left + 4, top + bar))
        return canvas
    # phone screenshot: status bar on top, an action bar below, the picture in between
    width = image.width
    status = max(12, int(width * 0.07))
    actions = max(16, int(width * 0.12))
    content = _scaled(image, rng.uniform(0.85, 1.0))
    height = status + actions * 2 + content.height
    canvas = Image.new("RGB", (width, height), chrome)
    canvas.paste(content, ((width - content.width) // 2, status + actions))
    draw = ImageDraw.Draw(canvas)
    clock = f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
    _draw_text_fitted(draw, (4, 1, width // 4, status - 1), clock, ink, None)
    draw.rectangle(
        (width - status * 2, status * 0.3, width - status * 0.6, status * 0.7), outline=ink
    )
    title = UI_WORDS[int(rng.integers(len(UI_WORDS)))]
    _draw_text_fitted(
        draw, (width // 4, status + 2, width * 3 // 4, status + actions - 2), title, ink, None
    )
    y = height - actions
    for k in range(4):
        cx = width * (k + 0.5) / 4
        r = actions * 0.25
        draw.ellipse(
            (cx - r, y + actions / 2 - r, cx + r, y + actions / 2 + r), outline=ink, width=2
        )
    return canvas


def meme_caption(image: Image.Image, ctx: Context) -> Image.Image:
    """Meme text: white bands with black captions added, or outlined capitals on the picture."""
    rng = ctx.rng
    top_line, bottom_line = MEME_LINES[int(rng.integers(len(MEME_LINES)))]
    if rng.random() < 0.5:
        band = max(16, int(image.height * rng.uniform(0.14, 0.24)))
        canvas = Image.new(
            "RGB",
            (image.width, image.height + band * (bool(top_line) + bool(bottom_line))),
            "white",
        )
        canvas.paste(image, (0, band if top_line else 0))
        draw = ImageDraw.Draw(canvas)
        if top_line:
            _draw_text_fitted(draw, (4, 2, image.width - 4, band - 2), top_line, (0, 0, 0), None)
        if bottom_line:
            box = (4, canvas.height - band + 2, image.width - 4, canvas.height - 2)
            _draw_text_fitted(draw, box, bottom_line, (0, 0, 0), None)
        return canvas
    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    line = max(12, int(image.height * 0.16))
    if top_line:
        _draw_text_fitted(draw, (4, 4, image.width - 4, line), top_line, (255, 255, 255), (0, 0, 0))
    if bottom_line:
        box = (4, image.height - line, image.width - 4, image.height - 4)
        _draw_text_fitted(draw, box, bottom_line, (255, 255, 255), (0, 0, 0))
    return canvas


def mosaic(image: Image.Image, ctx: Context) -> Image.Image:
    """A grid of pictures with the original in one cell (2x2) or a 2x2 block (3x3)."""
    rng = ctx.rng
    side = max(image.size)
    if rng.random() < 0.5:
        cells, span = 2, 1
    else:
        cells, span = 3, 2
    cell = max(8, side // cells)
    gap = int(rng.integers(0, 4))
    canvas = Image.new("RGB", (cell * cells + gap * (cells + 1),) * 2, _colour(rng, 200, 256))
    row, column = (int(v) for v in rng.integers(0, cells - span + 1, 2))
    for r in range(cells):
        for c in range(cells):
            if row <= r < row + span and column <= c < column + span:
                continue
            canvas.paste(
                ctx.distractor((cell, cell)), (gap + c * (cell + gap), gap + r * (cell + gap))
            )
    block = cell * span + gap * (span - 1)
    canvas.paste(
        _cover(image, (block, block)), (gap + column * (cell + gap), gap + row * (cell + gap))
    )
    return canvas


def collage(image: Image.Image, ctx: Context) -> Image.Image:
    """The original, tilted and shadowed, pasted over a distractor background."""
    rng = ctx.rng
    background = ctx.distractor(image.size)
    small = _scaled(image, rng.uniform(0.5, 0.8)).convert("RGBA")
    tilted = small.rotate(
        float(rng.uniform(-15, 15)), expand=True, resample=Image.Resampling.BICUBIC
    )
    shadow = Image.new("RGBA", tilted.size, (0, 0, 0, 0))
    shadow.putalpha(tilted.getchannel("A").point(lambda a: a * 90 // 255))
    left = int(rng.integers(0, max(1, background.width - tilted.width)))
    top = int(rng.integers(0, max(1, background.height - tilted.height)))
    result = background.convert("RGBA")
    offset = max(2, tilted.width // 30)
    result.alpha_composite(
        shadow, (min(left + offset, result.width - 1), min(top + offset, result.height - 1))
    )
    result.alpha_composite(tilted, (left, top))
    return result.convert("RGB")


def perspective_warp(image: Image.Image, ctx: Context) -> Image.Image:
    """A strong perspective tilt (a photo of a screen or a print), border filled or replicated."""
    rng = ctx.rng
    array = _to_array(image)
    height, width = array.shape[:2]
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    jitter = rng.uniform(0.04, 0.24, (4, 2)) * np.float32([width, height])
    inward = np.float32([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    target = (source + jitter * inward).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(source, target)
    border = cv2.BORDER_REPLICATE if rng.random() < 0.3 else cv2.BORDER_CONSTANT
    warped = cv2.warpPerspective(
        array, matrix, (width, height), borderMode=border, borderValue=_colour(rng)
    )
    return _to_image(warped)


def blur_noise(image: Image.Image, ctx: Context) -> Image.Image:
    """Motion, defocus or Gaussian blur, then Gaussian, speckle or salt-and-pepper noise."""
    rng = ctx.rng
    array = _to_array(image).astype(np.float32)
    kind = int(rng.integers(3))
    size = int(rng.integers(3, 8)) * 2 + 1
    if kind == 0:
        kernel = np.zeros((size, size), np.float32)
        kernel[size // 2, :] = 1.0
        rotation = cv2.getRotationMatrix2D((size / 2 - 0.5, size / 2 - 0.5), rng.uniform(0, 180), 1)
        kernel = cv2.warpAffine(kernel, rotation, (size, size))
        array = cv2.filter2D(array, -1, kernel / max(float(kernel.sum()), 1e-6))
    elif kind == 1:
        kernel = np.zeros((size, size), np.float32)
        cv2.circle(kernel, (size // 2, size // 2), size // 2, 1.0, -1)
        array = cv2.filter2D(array, -1, kernel / kernel.sum())
    else:
        array = cv2.GaussianBlur(array, (0, 0), rng.uniform(1.5, 3.5))
    noise = int(rng.integers(3))
    if noise == 0:
        array = array + rng.normal(0, rng.uniform(6, 20), array.shape)
    elif noise == 1:
        array = array * (1 + rng.normal(0, rng.uniform(0.05, 0.2), array.shape))
    else:
        mask = rng.random(array.shape[:2])
        share = rng.uniform(0.01, 0.05)
        array[mask < share / 2] = 0
        array[mask > 1 - share / 2] = 255
    return _to_image(array)


def crop_pad(image: Image.Image, ctx: Context) -> Image.Image:
    """A part of the picture (40-75% of its area), padded back out with a border."""
    rng = ctx.rng
    array = _to_array(image)
    height, width = array.shape[:2]
    area = rng.uniform(0.4, 0.75)
    aspect = rng.uniform(0.7, 1.4)
    crop_w = int(np.clip(width * np.sqrt(area * aspect), 8, width))
    crop_h = int(np.clip(height * np.sqrt(area / aspect), 8, height))
    x = int(rng.integers(0, width - crop_w + 1))
    y = int(rng.integers(0, height - crop_h + 1))
    part = array[y : y + crop_h, x : x + crop_w]
    pads = [int(v) for v in rng.integers(0, max(2, int(max(crop_w, crop_h) * 0.35)), 4)]
    border = (cv2.BORDER_CONSTANT, cv2.BORDER_REFLECT, cv2.BORDER_WRAP)[int(rng.integers(3))]
    padded = cv2.copyMakeBorder(part, *pads, border, value=_colour(rng))
    return _to_image(padded)


def colour_grade(image: Image.Image, ctx: Context) -> Image.Image:
    """A film-like grade: per-channel tone curves, a tint, a contrast change and a vignette."""
    rng = ctx.rng
    array = _to_array(image).astype(np.float32) / 255
    levels = np.linspace(0, 1, 256, dtype=np.float32)
    curves = []
    for _ in range(3):
        gamma = rng.uniform(0.55, 1.8)
        lift, gain = rng.uniform(0, 0.15), rng.uniform(0.8, 1.0)
        curves.append(lift + (gain - lift) * levels**gamma)
    lut = np.stack(curves, axis=-1)
    indices = np.clip(array * 255, 0, 255).astype(np.uint8)
    graded = np.stack([lut[indices[..., c], c] for c in range(3)], axis=-1)
    if rng.random() < 0.4:  # sepia-like toning
        sepia = np.float32([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
        graded = cv2.transform(graded, sepia)
    contrast = rng.uniform(0.7, 1.4)
    graded = (graded - 0.5) * contrast + 0.5
    height, width = graded.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = np.hypot((xs - width / 2) / width, (ys - height / 2) / height)
    graded = graded * (1 - rng.uniform(0.2, 0.8) * radius[..., None] ** 2)
    return _to_image(graded * 255)


def painterly(image: Image.Image, ctx: Context) -> Image.Image:
    """An OpenCV painterly filter: stylization, edge-preserving smoothing with detail, a colour
    pencil sketch, or an oil-like mean-shift of colours."""
    rng = ctx.rng
    array = _to_array(image)
    kind = int(rng.integers(4))
    if kind == 0:
        out = cv2.stylization(
            array, sigma_s=float(rng.uniform(30, 120)), sigma_r=float(rng.uniform(0.2, 0.6))
        )
    elif kind == 1:
        smooth = cv2.edgePreservingFilter(
            array, flags=cv2.RECURS_FILTER, sigma_s=float(rng.uniform(40, 100)), sigma_r=0.4
        )
        out = cv2.detailEnhance(smooth, sigma_s=10, sigma_r=0.15)
    elif kind == 2:
        _, out = cv2.pencilSketch(
            array,
            sigma_s=float(rng.uniform(30, 80)),
            sigma_r=0.07,
            shade_factor=float(rng.uniform(0.03, 0.08)),
        )
    else:
        shifted = cv2.pyrMeanShiftFiltering(
            array, sp=int(rng.integers(6, 14)), sr=int(rng.integers(24, 48))
        )
        out = cv2.bilateralFilter(shifted, 7, 60, 7)
    return _to_image(_canvas_texture(_brush_wobble(out, rng), rng))


def _brush_wobble(array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift pixels along a smooth random field, so flat areas get hand-drawn, wavy edges (the
    filters above barely change flat clip art otherwise)."""
    height, width = array.shape[:2]
    amplitude = rng.uniform(1.5, 4.0)
    fields = []
    for _ in range(2):
        coarse = rng.normal(0, 1, (max(2, height // 24), max(2, width // 24))).astype(np.float32)
        fields.append(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return cv2.remap(
        array,
        xs + amplitude * fields[0],
        ys + amplitude * fields[1],
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


def _canvas_texture(array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiply by a paper or canvas grain: fine noise blurred along one direction."""
    height, width = array.shape[:2]
    grain = rng.normal(0, 1, (height, width)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), sigmaX=rng.uniform(0.6, 2.0), sigmaY=0.5)
    grain = grain / max(float(grain.std()), 1e-6)
    strength = rng.uniform(0.06, 0.14)
    return array.astype(np.float32) * (1 + strength * grain[..., None])


Pattern = Callable[[Image.Image, Context], Image.Image]
PATTERNS: dict[str, Pattern] = {
    "text_overlay": text_overlay,
    "emoji_overlay": emoji_overlay,
    "screenshot_frame": screenshot_frame,
    "meme_caption": meme_caption,
    "mosaic": mosaic,
    "collage": collage,
    "perspective_warp": perspective_warp,
    "blur_noise": blur_noise,
    "crop_pad": crop_pad,
    "colour_grade": colour_grade,
    "painterly": painterly,
}
# Chains apply the pixel-level patterns first and the framing ones last, as a picture is
# usually edited, then posted, then captured.
_CHAIN_ORDER = (
    "colour_grade",
    "painterly",
    "blur_noise",
    "crop_pad",
    "perspective_warp",
    "text_overlay",
    "emoji_overlay",
    "collage",
    "mosaic",
    "meme_caption",
    "screenshot_frame",
)
COMBO = "combo"
PATTERN_NAMES = (*PATTERNS, COMBO)


def apply_pattern(
    image: Image.Image,
    name: str,
    rng: np.random.Generator,
    distractors: Sequence[Image.Image] = (),
) -> tuple[Image.Image, str]:
    """Apply one pattern (or ``"combo"``: a chain of two or three) and return the picture and the
    name of what was applied, e.g. ``"combo:colour_grade+meme_caption"``."""
    ctx = Context(rng=rng, distractors=distractors)
    base = _fit(image)
    if name == COMBO:
        picked = rng.choice(len(_CHAIN_ORDER), size=int(rng.integers(2, 4)), replace=False)
        chain = [_CHAIN_ORDER[i] for i in sorted(picked.tolist())]
        for step in chain:
            base = _fit(PATTERNS[step](base, ctx))
        return base, f"{COMBO}:{'+'.join(chain)}"
    if name not in PATTERNS:
        raise ValueError(f"unknown heldout pattern {name!r}; known: {', '.join(PATTERN_NAMES)}")
    return _fit(PATTERNS[name](base, ctx)), name


def derive_heldout(
    image: Image.Image,
    rng: np.random.Generator,
    n: int,
    distractors: Sequence[Image.Image] = (),
) -> list[tuple[Image.Image, str]]:
    """``n`` derived pictures of ``image``, each from a different pattern (as long as there are
    enough), chains included; returns ``[(picture, pattern name), ...]``.

    >>> derived = derive_heldout(Image.new("RGB", (64, 64), "red"), np.random.default_rng(1), 2)
    >>> len(derived)
    2
    """
    if n < 0:
        raise ValueError(f"n must be 0 or more, got {n}")
    names: list[str] = []
    while len(names) < n:
        order = rng.permutation(len(PATTERN_NAMES)).tolist()
        names.extend(PATTERN_NAMES[i] for i in order)
    return [apply_pattern(image, name, rng, distractors) for name in names[:n]]
