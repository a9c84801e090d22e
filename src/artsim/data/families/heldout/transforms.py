"""A second derivation family, for EVALUATION only: ISC/AnyPattern-like copy patterns.

Training sees the stand-ins of :mod:`artsim.data.families.training.derive`. A model judged on those
same transforms can look good by learning to undo them; this family is written apart from it (its
own code, mostly OpenCV instead of PIL, its own parameter ranges, its own patterns) so that an
evaluation on it says something about transformations the model never trained on. It follows the
patterns of the ISC 2021 and AnyPattern copy-detection benchmarks: text and emoji overlays,
screenshot frames, meme captions, mosaics, collages, perspective warps, blur and noise, partial
crops with padding, colour grading, painterly filters, and chains of two or three of these.

Mosaics and collages borrow other pictures only from a ``distractors`` pool the caller gives (a
folder of unrelated images, say), never from the other originals of the gallery being evaluated:
a query holding two gallery originals would have two right answers. With no pool, those patterns
fill in with procedural tiles (gradients, stripes, noise).

Two more patterns are drawn only when asked for by name (``EXTRA_PATTERNS``, ``patterns=``):
``inset``, the original small and anywhere on another picture, and ``detail``, one part of it
enlarged; they measure where a match map points (BENCHMARKS.md, "Match maps"). Every derived
picture comes with where the original's pixels went (:class:`Derived`, ``placement``).

Everything is deterministic given the random generator passed in.

>>> rng = np.random.default_rng(0)
>>> [name for _, name in derive_heldout(Image.new("RGB", (64, 64)), rng, 3)]
['colour_grade', 'screenshot_frame', 'blur_noise']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from artsim.data.families.heldout.canvas import (
    WORKING_SIDE,
    Context,
    Placement,
    fit,
    random_colour,
    to_array,
    to_image,
)
from artsim.data.families.heldout.overlays import (
    collage,
    detail,
    emoji_overlay,
    inset,
    meme_caption,
    mosaic,
    screenshot_frame,
    text_overlay,
)

__all__ = [
    "COMBO",
    "EXTRA_PATTERNS",
    "PATTERNS",
    "PATTERN_NAMES",
    "WORKING_SIDE",
    "Derived",
    "apply_pattern",
    "derive_heldout",
    "derive_heldout_placed",
    "derive_one",
]


def perspective_warp(image: Image.Image, ctx: Context) -> Image.Image:
    """A strong perspective tilt (a photo of a screen or a print), border filled or replicated."""
    rng = ctx.rng
    array = to_array(image)
    height, width = array.shape[:2]
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    jitter = rng.uniform(0.04, 0.24, (4, 2)) * np.float32([width, height])
    inward = np.float32([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    target = (source + jitter * inward).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(source, target)
    corners = (*target.min(axis=0).tolist(), *target.max(axis=0).tolist())
    ctx.moved((0, 0, width, height), corners, (width, height))
    border = cv2.BORDER_REPLICATE if rng.random() < 0.3 else cv2.BORDER_CONSTANT
    warped = cv2.warpPerspective(
        array, matrix, (width, height), borderMode=border, borderValue=random_colour(rng)
    )
    return to_image(warped)


def blur_noise(image: Image.Image, ctx: Context) -> Image.Image:
    """Motion, defocus or Gaussian blur, then Gaussian, speckle or salt-and-pepper noise."""
    rng = ctx.rng
    array = to_array(image).astype(np.float32)
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
    return to_image(array)


def crop_pad(image: Image.Image, ctx: Context) -> Image.Image:
    """A part of the picture (40-75% of its area), padded back out with a border."""
    rng = ctx.rng
    array = to_array(image)
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
    padded = cv2.copyMakeBorder(part, *pads, border, value=random_colour(rng))
    # pads are top, bottom, left, right; a reflected or wrapped border repeats some of the part
    top, left = pads[0], pads[2]
    ctx.moved(
        (x, y, x + crop_w, y + crop_h),
        (left, top, left + crop_w, top + crop_h),
        (padded.shape[1], padded.shape[0]),
    )
    return to_image(padded)


def colour_grade(image: Image.Image, ctx: Context) -> Image.Image:
    """A film-like grade: per-channel tone curves, a tint, a contrast change and a vignette."""
    rng = ctx.rng
    array = to_array(image).astype(np.float32) / 255
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
    return to_image(graded * 255)


def painterly(image: Image.Image, ctx: Context) -> Image.Image:
    """An OpenCV painterly filter: stylization, edge-preserving smoothing with detail, a colour
    pencil sketch, or an oil-like mean-shift of colours."""
    rng = ctx.rng
    array = to_array(image)
    kind = int(rng.integers(4))
    if kind == 0:
        # OpenCV's stylization returns an all-black picture of flat-background art when sigma_s
        # nears the smaller side (measured: a 45x66 stamp at 30, 200x200 at 200): keep it at 0.4
        sigma_s = min(float(rng.uniform(30, 120)), 0.4 * min(array.shape[:2]))
        out = cv2.stylization(array, sigma_s=sigma_s, sigma_r=float(rng.uniform(0.2, 0.6)))
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
    return to_image(_canvas_texture(_brush_wobble(out, rng), rng))


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
# Patterns drawn only when asked for by name (``patterns=``): adding one to the default draw
# would change every set derived before it.
EXTRA_PATTERNS: dict[str, Pattern] = {"inset": inset, "detail": detail}


@dataclass(frozen=True)
class Derived:
    """A derived picture, the pattern applied and where the original lies in it."""

    picture: Image.Image
    pattern: str
    placement: Placement


def _step(base: Image.Image, pattern: Pattern, ctx: Context, placement: Placement):
    """Apply one pattern, then :func:`fit`; follow the original through both."""
    moves: list = []
    out = pattern(base, Context(ctx.rng, ctx.distractors, moves))
    for window_in, window_out in moves:
        placement = placement.after(window_in, window_out)
    if not moves and out.size != base.size:  # a pattern that resizes must say where it put it
        placement = placement.scaled(base.size, out.size)
    fitted = fit(out)
    return fitted, placement.scaled(out.size, fitted.size)


def derive_one(
    image: Image.Image,
    name: str,
    rng: np.random.Generator,
    distractors: Sequence[Image.Image] = (),
) -> Derived:
    """Apply one pattern (or ``"combo"``: a chain of two or three); return the picture, the name
    of what was applied (e.g. ``"combo:colour_grade+meme_caption"``) and where the original's
    pixels lie in the picture (:class:`~artsim.data.families.heldout.canvas.Placement`)."""
    ctx = Context(rng=rng, distractors=distractors)
    base = fit(image)
    placement = Placement.whole(image.size).scaled(image.size, base.size)
    if name == COMBO:
        picked = rng.choice(len(_CHAIN_ORDER), size=int(rng.integers(2, 4)), replace=False)
        chain = [_CHAIN_ORDER[i] for i in sorted(picked.tolist())]
        for step in chain:
            base, placement = _step(base, PATTERNS[step], ctx, placement)
        return Derived(base, f"{COMBO}:{'+'.join(chain)}", placement)
    pattern = PATTERNS.get(name) or EXTRA_PATTERNS.get(name)
    if pattern is None:
        known = ", ".join([*PATTERN_NAMES, *EXTRA_PATTERNS])
        raise ValueError(f"unknown heldout pattern {name!r}; known: {known}")
    picture, placement = _step(base, pattern, ctx, placement)
    return Derived(picture, name, placement)


def apply_pattern(
    image: Image.Image,
    name: str,
    rng: np.random.Generator,
    distractors: Sequence[Image.Image] = (),
) -> tuple[Image.Image, str]:
    """Apply one pattern (or ``"combo"``: a chain of two or three) and return the picture and the
    name of what was applied, e.g. ``"combo:colour_grade+meme_caption"`` (:func:`derive_one`
    also says where the original went)."""
    derived = derive_one(image, name, rng, distractors)
    return derived.picture, derived.pattern


def derive_heldout_placed(
    image: Image.Image,
    rng: np.random.Generator,
    n: int,
    distractors: Sequence[Image.Image] = (),
    patterns: Sequence[str] | None = None,
) -> list[Derived]:
    """``n`` derived pictures of ``image``, each from a different pattern (as long as there are
    enough) of ``patterns`` (default: every pattern and chains, :data:`PATTERN_NAMES`), each
    with where the original lies in it.

    >>> derived = derive_heldout_placed(Image.new("RGB", (64, 64)), np.random.default_rng(1), 2)
    >>> len(derived)
    2
    """
    if n < 0:
        raise ValueError(f"n must be 0 or more, got {n}")
    pool = check_patterns(patterns) if patterns is not None else PATTERN_NAMES
    names: list[str] = []
    while len(names) < n:
        order = rng.permutation(len(pool)).tolist()
        names.extend(pool[i] for i in order)
    return [derive_one(image, name, rng, distractors) for name in names[:n]]


def check_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    """``patterns`` as a tuple, refusing an empty list or an unknown name."""
    known = (*PATTERN_NAMES, *EXTRA_PATTERNS)
    unknown = [name for name in patterns if name not in known]
    if unknown or not patterns:
        raise ValueError(
            f"unknown heldout pattern(s) {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(known)}"
        )
    return tuple(patterns)


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
    return [(d.picture, d.pattern) for d in derive_heldout_placed(image, rng, n, distractors)]
