"""Strong, label-preserving augmentations for self-supervised copy groups (SSCD-like).

A view of an original is what a copier might make of it: a crop (down to a quarter of the
picture), a flip, a turn, strong colour changes, greyscale, blur, noise, a new frame or aspect
ratio, a pasted-on patch or a heavy JPEG. Each view chains a random crop with three to five of
the other changes. This code is for training only: it is written apart from the evaluation-only
held-out family (:mod:`artsim.data.families.heldout`), whose patterns and parameters it must not
follow.

``AUGMENT_VERSION`` names this code in feature-cache keys; change it with the augmentations.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

AUGMENT_VERSION = "copyaug-1"


def _crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop of 25-100% of the area, aspect 3:4 to 4:3 (at least 8 px a side)."""
    width, height = image.size
    area = rng.uniform(0.25, 1.0) * width * height
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    crop_w = int(np.clip(np.rint(np.sqrt(area * aspect)), min(8, width), width))
    crop_h = int(np.clip(np.rint(np.sqrt(area / aspect)), min(8, height), height))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    return image.crop((left, top, left + crop_w, top + crop_h))


def _flip(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    if rng.random() < 0.8:
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)


def _turn(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A turn of up to 30 degrees, or a quarter turn, on a random plain colour."""
    if rng.random() < 0.25:
        return image.transpose(Image.Transpose.ROTATE_90)
    fill = tuple(int(v) for v in rng.integers(0, 256, 3))
    angle = float(rng.uniform(-30, 30))
    return image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=fill)


def _colour(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast and saturation each scaled by 0.5-1.5, and a hue shift."""
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(float(rng.uniform(0.5, 1.5)))
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(rng.integers(-40, 41))) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def _grey(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


def _blur(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    radius = float(rng.uniform(0.5, 2.5)) * max(image.size) / 224
    return image.filter(ImageFilter.GaussianBlur(radius))


def _noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + rng.normal(0.0, rng.uniform(5, 25), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _frame(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The picture pasted at a random place on a larger plain canvas of another aspect ratio."""
    width, height = image.size
    scale_w, scale_h = rng.uniform(1.0, 1.8, 2)
    canvas_w, canvas_h = max(width, int(width * scale_w)), max(height, int(height * scale_h))
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    canvas = Image.new("RGB", (canvas_w, canvas_h), colour)
    canvas.paste(
        image,
        (int(rng.integers(0, canvas_w - width + 1)), int(rng.integers(0, canvas_h - height + 1))),
    )
    return canvas


def _patch(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A plain or noisy rectangle over 5-20% of the picture (a sticker, a caption box)."""
    width, height = image.size
    area = rng.uniform(0.05, 0.2) * width * height
    patch_w = int(np.clip(np.sqrt(area * rng.uniform(0.5, 2.0)), 1, width))
    patch_h = int(np.clip(area / max(patch_w, 1), 1, height))
    if rng.random() < 0.5:
        patch = Image.new("RGB", (patch_w, patch_h), tuple(int(v) for v in rng.integers(0, 256, 3)))
    else:
        patch = Image.fromarray(rng.integers(0, 256, (patch_h, patch_w, 3), dtype=np.uint8))
    out = image.copy()
    out.paste(
        patch,
        (int(rng.integers(0, width - patch_w + 1)), int(rng.integers(0, height - patch_h + 1))),
    )
    return out


def _jpeg(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(10, 60)))
    buffer.seek(0)
    with Image.open(buffer) as reread:
        return reread.convert("RGB")


CHANGES = {
    "flip": _flip,
    "turn": _turn,
    "colour": _colour,
    "grey": _grey,
    "blur": _blur,
    "noise": _noise,
    "frame": _frame,
    "patch": _patch,
    "jpeg": _jpeg,
}


def copy_view(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, list[str]]:
    """One strong view of ``image`` (RGB) and the names of the changes made, in order.

    A crop, then three to five other changes in random order (JPEG, when drawn, comes last).
    """
    view = _crop(image.convert("RGB"), rng)
    names = [str(n) for n in rng.choice(list(CHANGES), size=int(rng.integers(3, 6)), replace=False)]
    names.sort(key=lambda name: name == "jpeg")
    for name in names:
        view = CHANGES[name](view, rng)
    return view, ["crop", *names]
