"""Parts of a picture, as fractions of its width and height: the match maps' windows and the
crops a search embeds beside a query's whole picture.

A window is ``(left, top, right, bottom)`` in fractions of the picture's width and height, so
one window fits every size.

>>> [tuple(round(v, 2) for v in w) for w in QUERY_CROP_WINDOWS][-1]
(0.2, 0.2, 0.8, 0.8)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from artsim.data.pictures.images import MIN_CONTENT_SHARE, content_share

# The query crops of a search: the 2 x 2 grid of half-side tiles and the centre 60% of each side,
# as ISC 2021 entries embedded their queries (measured in BENCHMARKS.md, "Query crops").
QUERY_CROP_WINDOWS: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 0.0, 0.5, 0.5),
    (0.5, 0.0, 1.0, 0.5),
    (0.0, 0.5, 0.5, 1.0),
    (0.5, 0.5, 1.0, 1.0),
    (0.2, 0.2, 0.8, 0.8),
)
# a crop this small (pixels, either side) says nothing: it is left out
MIN_CROP_SIDE = 8


def pixel_box(window: Sequence[float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``window`` (fractions) in whole pixels of a picture of ``size``, one pixel at least."""
    width, height = size
    left = min(width - 1, int(np.floor(window[0] * width + 0.5)))
    top = min(height - 1, int(np.floor(window[1] * height + 0.5)))
    right = min(width, max(left + 1, int(np.floor(window[2] * width + 0.5))))
    bottom = min(height, max(top + 1, int(np.floor(window[3] * height + 0.5))))
    return left, top, right, bottom


def crop(picture: Image.Image, window: Sequence[float]) -> Image.Image:
    """The part ``window`` (fractions) of ``picture``, at least one pixel each way."""
    return picture.crop(pixel_box(window, picture.size))


def crops(
    picture: Image.Image, windows: Sequence[Sequence[float]] = QUERY_CROP_WINDOWS
) -> list[Image.Image]:
    """The crops of ``picture`` at ``windows``, leaving out those under :data:`MIN_CROP_SIDE`
    pixels a side (a tiny picture has none) and those of (almost) one colour
    (:data:`artsim.data.pictures.images.MIN_CONTENT_SHARE`, the rule a query picture is refused
    by): a plain corner of a drawing matches every plain original, and says nothing."""
    pieces = [crop(picture, window) for window in windows]
    return [
        piece
        for piece in pieces
        if min(piece.size) >= MIN_CROP_SIDE and content_share(piece) >= MIN_CONTENT_SHARE
    ]
