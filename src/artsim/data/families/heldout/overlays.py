"""The overlay and framing patterns of the evaluation-only family: text and emoji overlays,
screenshot frames, meme captions, mosaics, collages and small insets (see
:mod:`artsim.data.families.heldout.transforms`)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from artsim.data.families.heldout.canvas import (
    Context,
    cover,
    cover_window,
    draw_text_fitted,
    load_font,
    random_colour,
    scaled,
)

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


def text_overlay(image: Image.Image, ctx: Context) -> Image.Image:
    """One to three short phrases (hashtags, handles, sale tags) written over the picture."""
    rng = ctx.rng
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(1, 4))):
        phrase = OVERLAY_PHRASES[int(rng.integers(len(OVERLAY_PHRASES)))]
        font = load_font(min(base.size) * rng.uniform(0.07, 0.18))
        alpha = int(rng.integers(150, 256))
        x0, y0, x1, y1 = draw.textbbox((0, 0), phrase, font=font)
        x = int(rng.integers(0, max(1, base.width - (x1 - x0)))) - x0
        y = int(rng.integers(0, max(1, base.height - (y1 - y0)))) - y0
        draw.text(
            (x, y),
            phrase,
            font=font,
            fill=(*random_colour(rng), alpha),
            stroke_width=int(rng.integers(0, 3)),
            stroke_fill=(*random_colour(rng), alpha),
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
        draw.ellipse((0, 0, s, s), fill=(*random_colour(rng, 30, 220), 255))
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
        content = scaled(image, scale)
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
        draw_text_fitted(
            draw, (left + width // 3, top + 2, left + width - 8, top + bar - 2), title, ink, None
        )
        canvas.paste(content, (left + 4, top + bar))
        ctx.moved(
            (0, 0, image.width, image.height),
            (left + 4, top + bar, left + 4 + content.width, top + bar + content.height),
            canvas.size,
        )
        return canvas
    # phone screenshot: status bar on top, an action bar below, the picture in between
    width = image.width
    status = max(12, int(width * 0.07))
    actions = max(16, int(width * 0.12))
    content = scaled(image, rng.uniform(0.85, 1.0))
    height = status + actions * 2 + content.height
    canvas = Image.new("RGB", (width, height), chrome)
    canvas.paste(content, ((width - content.width) // 2, status + actions))
    x, y = (width - content.width) // 2, status + actions
    ctx.moved(
        (0, 0, image.width, image.height),
        (x, y, x + content.width, y + content.height),
        canvas.size,
    )
    draw = ImageDraw.Draw(canvas)
    clock = f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
    draw_text_fitted(draw, (4, 1, width // 4, status - 1), clock, ink, None)
    draw.rectangle(
        (width - status * 2, status * 0.3, width - status * 0.6, status * 0.7), outline=ink
    )
    title = UI_WORDS[int(rng.integers(len(UI_WORDS)))]
    draw_text_fitted(
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
        y = band if top_line else 0
        ctx.moved(
            (0, 0, image.width, image.height), (0, y, image.width, y + image.height), canvas.size
        )
        draw = ImageDraw.Draw(canvas)
        if top_line:
            draw_text_fitted(draw, (4, 2, image.width - 4, band - 2), top_line, (0, 0, 0), None)
        if bottom_line:
            box = (4, canvas.height - band + 2, image.width - 4, canvas.height - 2)
            draw_text_fitted(draw, box, bottom_line, (0, 0, 0), None)
        return canvas
    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    line = max(12, int(image.height * 0.16))
    if top_line:
        draw_text_fitted(draw, (4, 4, image.width - 4, line), top_line, (255, 255, 255), (0, 0, 0))
    if bottom_line:
        box = (4, image.height - line, image.width - 4, image.height - 4)
        draw_text_fitted(draw, box, bottom_line, (255, 255, 255), (0, 0, 0))
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
    canvas = Image.new("RGB", (cell * cells + gap * (cells + 1),) * 2, random_colour(rng, 200, 256))
    row, column = (int(v) for v in rng.integers(0, cells - span + 1, 2))
    for r in range(cells):
        for c in range(cells):
            if row <= r < row + span and column <= c < column + span:
                continue
            canvas.paste(
                ctx.distractor((cell, cell)), (gap + c * (cell + gap), gap + r * (cell + gap))
            )
    block = cell * span + gap * (span - 1)
    x, y = gap + column * (cell + gap), gap + row * (cell + gap)
    canvas.paste(cover(image, (block, block)), (x, y))
    ctx.moved(cover_window(image.size, (block, block)), (x, y, x + block, y + block), canvas.size)
    return canvas


def collage(image: Image.Image, ctx: Context) -> Image.Image:
    """The original, tilted and shadowed, pasted over a distractor background."""
    rng = ctx.rng
    background = ctx.distractor(image.size)
    small = scaled(image, rng.uniform(0.5, 0.8)).convert("RGBA")
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
    # the tilted picture's bounding box (rotate's expand makes the canvas exactly that box)
    ctx.moved(
        (0, 0, image.width, image.height),
        (left, top, left + tilted.width, top + tilted.height),
        result.size,
    )
    return result.convert("RGB")


def inset(image: Image.Image, ctx: Context) -> Image.Image:
    """The original small (a fifth to under half the picture's long side), anywhere on a
    distractor ground, sometimes in a thin frame: a copy that is a small part of a work, where a
    match map must say where (not drawn by default: see ``EXTRA_PATTERNS``)."""
    rng = ctx.rng
    background = ctx.distractor(image.size)
    share = rng.uniform(0.2, 0.45)
    small = scaled(image, share * max(background.size) / max(image.size))
    if rng.random() < 0.5:  # a print's or a sticker's frame
        width = max(1, round(min(small.size) * 0.04))
        framed = Image.new("RGB", (small.width + 2 * width, small.height + 2 * width))
        framed.paste(random_colour(rng), (0, 0, *framed.size))
        framed.paste(small, (width, width))
        inner = (width, width, width + small.width, width + small.height)
        small = framed
    else:
        inner = (0, 0, small.width, small.height)
    left = int(rng.integers(0, max(1, background.width - small.width + 1)))
    top = int(rng.integers(0, max(1, background.height - small.height + 1)))
    result = background.convert("RGB")
    result.paste(small, (left, top))
    ctx.moved(
        (0, 0, image.width, image.height),
        (left + inner[0], top + inner[1], left + inner[2], top + inner[3]),
        result.size,
    )
    return result


def detail(image: Image.Image, ctx: Context) -> Image.Image:
    """A detail of the original (a third to three fifths of each side, anywhere in it) enlarged
    to the picture's size in a thin frame: a work that copies one part, where a match map on
    the original must say which (not drawn by default: see ``EXTRA_PATTERNS``)."""
    rng = ctx.rng
    width, height = image.size
    part_w = max(4, round(width * rng.uniform(1 / 3, 0.6)))
    part_h = max(4, round(height * rng.uniform(1 / 3, 0.6)))
    left = int(rng.integers(0, width - part_w + 1))
    top = int(rng.integers(0, height - part_h + 1))
    factor = min(width / part_w, height / part_h)
    enlarged = scaled(image.crop((left, top, left + part_w, top + part_h)), factor)
    frame = max(1, round(max(enlarged.size) * rng.uniform(0.0, 0.06)))
    result = Image.new(
        "RGB", (enlarged.width + 2 * frame, enlarged.height + 2 * frame), random_colour(rng)
    )
    result.paste(enlarged, (frame, frame))
    ctx.moved(
        (left, top, left + part_w, top + part_h),
        (frame, frame, frame + enlarged.width, frame + enlarged.height),
        result.size,
    )
    return result
