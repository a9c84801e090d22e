"""Mild, label-preserving image augmentation for the fine-tune stage (PIL only).

Unlike :mod:`artsim.data.families.training.derive`, which imitates what a generator does to an
original, these changes are small: the model should learn that a slightly cropped, flipped or
recoloured view is still the same picture.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance


def augment_image(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random resized crop (60-100% of the area), a horizontal flip half the time, a small
    rotation and brightness/contrast/colour jitter of up to 30%."""
    width, height = image.size
    area = rng.uniform(0.6, 1.0)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    crop_w = int(np.rint(min(width, np.sqrt(area * width * height * aspect))))
    crop_h = int(np.rint(min(height, np.sqrt(area * width * height / aspect))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    view = image.crop((left, top, left + max(crop_w, 1), top + max(crop_h, 1)))
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    view = view.rotate(
        float(rng.uniform(-10, 10)), resample=Image.Resampling.BILINEAR, fillcolor=(255, 255, 255)
    )
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        view = enhancer(view).enhance(float(rng.uniform(0.7, 1.3)))
    return view
