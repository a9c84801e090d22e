"""A small synthetic data set made in code, for unit tests and smoke runs.

Each group is an "original" drawing (a few coloured shapes on a coloured background, with an
English or Spanish caption naming them) plus generated derivatives (shifted, recoloured, noisy
copies with prompt-like texts). Groups are different enough that a model can learn them in a few
epochs, similar enough that it has to.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": ((220, 40, 40), "rojo"),
    "green": ((40, 180, 60), "verde"),
    "blue": ((40, 70, 220), "azul"),
    "yellow": ((235, 215, 40), "amarillo"),
    "purple": ((140, 50, 170), "morado"),
    "orange": ((240, 140, 30), "naranja"),
    "black": ((20, 20, 20), "negro"),
    "white": ((245, 245, 245), "blanco"),
}
SHAPES = {"circle": "círculo", "square": "cuadrado", "triangle": "triángulo", "bar": "barra"}
STYLES = ["watercolor", "oil painting", "pixel art", "sketch", "poster"]


def _draw(
    rng: np.random.Generator, shape: str, colour, background, size: int, jitter: float
) -> Image.Image:
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    centre = size / 2 + rng.normal(0, jitter * size, 2)
    radius = size * (0.28 + rng.normal(0, jitter))
    x0, y0 = centre - radius
    x1, y1 = centre + radius
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=colour)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=colour)
    elif shape == "triangle":
        draw.polygon([(centre[0], y0), (x0, y1), (x1, y1)], fill=colour)
    else:
        draw.rectangle([x0, centre[1] - radius / 3, x1, centre[1] + radius / 3], fill=colour)
    return image


def _perturb(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(image).astype(np.float32)
    pixels = pixels * rng.uniform(0.8, 1.2) + rng.normal(0, 12, pixels.shape)
    if rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _caption(shape: str, colour: str, background: str, spanish: bool) -> tuple[str, str]:
    """The original's caption and its language (every few groups in Spanish)."""
    if spanish:
        return (
            f"un {SHAPES[shape]} {COLOURS[colour][1]} sobre fondo {COLOURS[background][1]}",
            "es",
        )
    return f"a {colour} {shape} on a {background} background", "en"


def make_synthetic_manifest(
    out_dir: str | Path,
    n_groups: int = 12,
    generated_per_original: int = 3,
    image_size: int = 32,
    seed: int = 0,
    spanish_every: int = 3,
) -> Path:
    """Write images and ``manifest.csv`` under ``out_dir`` and return the manifest's path.

    >>> path = make_synthetic_manifest(tmp_path, n_groups=4)
    >>> path.name, len(path.read_text().splitlines())  # a header, 4 originals, 12 generated
    ('manifest.csv', 17)
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    colour_names = list(COLOURS)
    shape_names = list(SHAPES)
    combos = [(s, c, b) for s in shape_names for c in colour_names for b in colour_names if c != b]
    chosen = rng.permutation(len(combos))[:n_groups]
    rows = []
    for group_index, combo_index in enumerate(chosen):
        shape, colour, background = combos[combo_index]
        group = f"g{group_index:03d}"
        spanish = spanish_every > 0 and group_index % spanish_every == spanish_every - 1
        caption, lang = _caption(shape, colour, background, spanish)
        original = _draw(rng, shape, COLOURS[colour][0], COLOURS[background][0], image_size, 0.02)
        original_path = f"images/{group}_orig.png"
        original.save(out / original_path)
        rows.append(
            {
                "id": f"{group}-orig",
                "group": group,
                "role": "original",
                "image": original_path,
                "text": caption,
                "lang": lang,
                "artist": f"artist{group_index % 4}",
                "title": f"{colour} {shape}",
                "source": "synthetic",
            }
        )
        for k in range(generated_per_original):
            variant = _perturb(
                _draw(rng, shape, COLOURS[colour][0], COLOURS[background][0], image_size, 0.06), rng
            )
            variant_path = f"images/{group}_gen{k}.png"
            variant.save(out / variant_path)
            style = STYLES[int(rng.integers(len(STYLES)))]
            prompt = (
                f"{caption}, estilo {style}"
                if spanish
                else f"{style} of {caption}, highly detailed"
            )
            rows.append(
                {
                    "id": f"{group}-gen{k}",
                    "group": group,
                    "role": "generated",
                    "image": variant_path,
                    "text": prompt,
                    "lang": lang,
                    "artist": f"artist{group_index % 4}",
                    "title": "",
                    "source": "synthetic",
                }
            )
    manifest_path = out / "manifest.csv"
    with manifest_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest_path
