"""A match map as a picture: A and B side by side, each under its heat overlay, the best-matching
regions boxed and linked (``artsim explain --out``, the service's ``/explain`` PNG).

Colour says where on each picture the match is strongest (blue low, red high, over both maps
together); opacity says how strong it is (the cosine itself), so an unrelated pair stays faint
instead of showing a confident-looking spot.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from artsim.data.pictures.images import load_rgb
from artsim.model.explain import MatchMap

# RdYlBu reversed: blue (weakest) through pale yellow to red (strongest)
_ANCHORS = np.array([[49, 54, 149], [116, 173, 209], [254, 224, 144], [244, 109, 67], [165, 0, 38]])
PART_WORDS = {
    "copy": "copy cosine (same pixels)",
    "content": "content cosine (what is drawn)",
    "image": "image cosine",
}
LINK_COLOUR = (20, 220, 120)
GAP = 48
MARGIN = 8
LABEL = 20  # the names above the pictures


def colours(values: np.ndarray) -> np.ndarray:
    """RGB (uint8) of ``values`` in [0, 1]."""
    values = np.clip(values, 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.floor(values).astype(int).clip(0, len(_ANCHORS) - 2)
    mix = (values - low)[..., None]
    return (_ANCHORS[low] * (1 - mix) + _ANCHORS[low + 1] * mix).round().astype(np.uint8)


def overlay(
    picture: Image.Image, grid: np.ndarray, low: float, high: float, strength: float = 0.65
) -> Image.Image:
    """``picture`` under the heat of ``grid`` (its cells stretched over the picture, smoothly):
    colour from ``low`` (blue) to ``high`` (red), opacity the cell's value times ``strength``."""
    picture = picture.convert("RGB")
    field = Image.fromarray(np.asarray(grid, dtype=np.float32), mode="F")
    field = np.asarray(field.resize(picture.size, Image.Resampling.BILINEAR), dtype=np.float32)
    relative = (field - low) / max(high - low, 1e-6)
    alpha = (np.clip(field, 0.0, 1.0) * strength)[..., None]
    pixels = np.asarray(picture, dtype=np.float32)
    blended = pixels * (1 - alpha) + colours(relative).astype(np.float32) * alpha
    return Image.fromarray(blended.round().astype(np.uint8), "RGB")


def _fit_height(picture: Image.Image, height: int) -> Image.Image:
    width = max(1, round(picture.width * height / picture.height))
    return picture.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)


def render_match(
    image_a: Image.Image,
    image_b: Image.Image,
    found: MatchMap,
    *,
    height: int = 320,
    names: tuple[str, str] = ("A (generated)", "B (original)"),
    caption: bool = True,
) -> Image.Image:
    """A and B side by side under their maps, the best-matching regions boxed and linked;
    ``caption``: the scores and the legend under them, in English (the report's gallery draws
    its own, in the report's language)."""
    grids = np.concatenate([found.a.grid.ravel(), found.b.grid.ravel()])
    low, high = float(grids.min()), float(grids.max())
    left = overlay(_fit_height(image_a, height), found.a.grid, low, high)
    right = overlay(_fit_height(image_b, height), found.b.grid, low, high)
    width = MARGIN * 2 + left.width + GAP + right.width
    canvas = Image.new("RGB", (width, MARGIN + LABEL + height + 200), (250, 250, 250))
    top = MARGIN + LABEL
    canvas.paste(left, (MARGIN, top))
    x_b = MARGIN + left.width + GAP
    canvas.paste(right, (x_b, top))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    draw.text((MARGIN, 2), names[0], fill=(30, 30, 30), font=font)
    draw.text((x_b, 2), names[1], fill=(30, 30, 30), font=font)
    box_a, box_b, cosine = found.link

    def pixels(box, x0, picture):
        return (
            x0 + box[0] * picture.width,
            top + box[1] * picture.height,
            x0 + box[2] * picture.width - 1,
            top + box[3] * picture.height - 1,
        )

    on_a, on_b = pixels(box_a, MARGIN, left), pixels(box_b, x_b, right)
    draw.rectangle(on_a, outline=LINK_COLOUR, width=3)
    draw.rectangle(on_b, outline=LINK_COLOUR, width=3)
    draw.line(
        [
            ((on_a[0] + on_a[2]) / 2, (on_a[1] + on_a[3]) / 2),
            ((on_b[0] + on_b[2]) / 2, (on_b[1] + on_b[3]) / 2),
        ],
        fill=LINK_COLOUR,
        width=2,
    )
    words = PART_WORDS.get(found.part, found.part)
    lines = [
        f"{words} of the pair: {found.score:.3f}; best-matching regions (boxed, linked): "
        f"{cosine:.3f}",
        "colour: where each picture matches the other (red strongest, faint where weak); "
        f"{found.method}",
    ]
    y = top + height + 4
    for line in lines if caption else []:
        for piece in _wrapped(draw, line, font, width - 2 * MARGIN):
            draw.text((MARGIN, y), piece, fill=(60, 60, 60), font=font)
            y += 16
    return canvas.crop((0, 0, width, min(canvas.height, y + MARGIN)))


def _wrapped(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> list[str]:
    """``text`` cut into lines no wider than ``width`` (at spaces)."""
    lines, current = [], ""
    for word in text.split(" "):
        trial = f"{current} {word}".strip()
        if current and draw.textlength(trial, font=font) > width:
            lines.append(current)
            current = word
        else:
            current = trial
    return [*lines, current] if current else lines


def match_png(image_a: Image.Image, image_b: Image.Image, found: MatchMap, **options) -> bytes:
    """:func:`render_match` as PNG bytes."""
    buffer = io.BytesIO()
    render_match(image_a, image_b, found, **options).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def gallery_maps(
    run_dir: str | Path, gallery: list[dict], items: dict[str, dict], height: int = 150
) -> dict[str, bytes]:
    """Per row of a report's gallery (``query`` id, ``top`` results), the match map of the query
    against its first result as PNG, keyed by the query's id. Empty when the run folder holds no
    model; a row whose pictures cannot be read or matched is left out."""
    from artsim.errors import UserError
    from artsim.model.embedder import Embedder
    from artsim.model.explain import match_map

    if not (Path(run_dir) / "model.safetensors").is_file():
        return {}
    embedder = Embedder.from_run(run_dir, cache_dir=False)
    maps = {}
    for entry in gallery:
        first = (entry.get("top") or [{}])[0].get("id")
        paths = [items.get(entry["query"], {}).get("image"), items.get(first, {}).get("image")]
        if not all(paths):
            continue
        try:
            pictures = [load_rgb(path) for path in paths]
            found = match_map(embedder, *pictures)
        except (UserError, OSError):
            continue
        maps[entry["query"]] = match_png(
            *pictures, found, height=height, names=("", ""), caption=False
        )
    return maps
