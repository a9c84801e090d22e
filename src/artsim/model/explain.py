"""Match maps: which part of a generated work A matches which part of an original B, and how well.

A pair's score is one number. A match map says where it comes from, with what the model already
has: each picture is cut into a grid of overlapping windows, and

* ``crops`` (the default): every window is embedded like a whole picture and compared with the
  whole of the other picture; a cell of the map holds the best cosine of the windows that cover
  it, so the map peaks over the best window. The best pair of windows (one of A, one of B, the
  wholes included) links the matched regions.
* ``occlusion``: every window is filled with the picture's mean colour in turn; a cell holds the
  largest drop of the pair's cosine when a window covering it is hidden.

The cosine is that of one part of the model's image vector (:meth:`ArtSimModel.part_weights`):
``copy`` (the copy-detection descriptor: the same pixels), ``content`` (what is drawn) or
``image`` (the image-image score itself, the only one of a model without a copy descriptor).
The defaults were chosen by measurement (docs/decisions/0026-match-maps-copy-crops.md) and are
reported in BENCHMARKS.md ("Match maps").

>>> from artsim.data.pictures.images import load_rgb
>>> embedder = Embedder.from_run("runs/demo")
>>> found = match_map(embedder, load_rgb("generated.png"), load_rgb("original.png"), cells=6)
>>> found.a.grid.shape  # a map on A: how well each region of A matches the whole of B
(6, 6)
>>> x, y = found.a.peak()  # where in A the original matches best: fractions of width, height
>>> 0 <= x <= 1 and 0 <= y <= 1
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from artsim.data.pictures.crops import crop, pixel_box
from artsim.data.pictures.images import check_picture, uninformative_problem
from artsim.errors import ImageError, UserError
from artsim.model.embedder import Embedder
from artsim.model.towers import PairedImageTower

PARTS = ("copy", "content", "image")
METHODS = ("crops", "occlusion")
DEFAULT_CELLS = 12  # a multiple of 4 and 6: cell edges follow the default windows' edges


@dataclass(frozen=True)
class WindowGrid:
    """Square-ish windows over a picture: at each ``scales[k]`` (a fraction of its width and
    height), a ``steps[k]`` x ``steps[k]`` grid of positions from one edge to the other.

    >>> WindowGrid(scales=(0.5,), steps=(3,)).windows()[:2].tolist()
    [[0.0, 0.0, 0.5, 0.5], [0.25, 0.0, 0.75, 0.5]]
    """

    scales: tuple[float, ...] = (0.5,)
    steps: tuple[int, ...] = (3,)

    def __post_init__(self) -> None:
        if len(self.scales) != len(self.steps) or not self.scales:
            raise ValueError("a window grid needs one step count per scale")
        if not all(0.0 < s <= 1.0 for s in self.scales) or not all(n >= 1 for n in self.steps):
            raise ValueError(f"window scales must be in (0, 1] and steps >= 1: {self}")

    def windows(self) -> np.ndarray:
        """``(N, 4)`` windows ``left, top, right, bottom`` as fractions of the picture."""
        rows = []
        for scale, steps in zip(self.scales, self.steps, strict=True):
            starts = [0.0] if steps == 1 else np.linspace(0.0, 1.0 - scale, steps).tolist()
            for top in starts:
                for left in starts:
                    rows.append([left, top, left + scale, top + scale])
        return np.asarray(rows, dtype=np.float64)

    def __len__(self) -> int:
        return sum(n * n for n in self.steps)


# chosen on the held-out family's insets (docs/decisions/0026): windows a third of the side found
# a small inset more often than half-side ones, within 2 s a pair with the copy tower
DEFAULT_CROPS = WindowGrid((1 / 3,), (5,))
DEFAULT_OCCLUSION = WindowGrid((1 / 3,), (4,))


@dataclass
class SideMap:
    """The map of one side: ``grid`` (cells x cells, rows top to bottom; each cell the best value
    of the windows covering it) and the windows behind it with their values (the window's cosine
    with the other whole picture, or the drop of the pair's cosine when it is hidden)."""

    grid: np.ndarray
    windows: np.ndarray
    values: np.ndarray

    def peak(self) -> tuple[float, float]:
        """Where the map is highest, ``(x, y)`` as fractions of the picture (the centre of the
        highest cells, averaged over ties)."""
        rows, cols = self.grid.shape
        best = np.argwhere(self.grid >= self.grid.max() - 1e-6)
        y, x = best.mean(axis=0)
        return float((x + 0.5) / cols), float((y + 0.5) / rows)

    def best_window(self) -> np.ndarray:
        return self.windows[int(np.argmax(self.values))]


@dataclass
class MatchMap:
    """Where A and B match: a map on each (``a``: A's windows against the whole of B; ``b``:
    B's against the whole of A), the part and method that made them, the whole pair's cosine
    ``score`` of that part, and ``link``, the best-matching regions ``(box on A, box on B,
    cosine)`` (fractions; the whole picture is ``(0, 0, 1, 1)``)."""

    part: str
    method: str
    score: float
    a: SideMap
    b: SideMap
    link: tuple[tuple[float, ...], tuple[float, ...], float]

    def to_json(self) -> dict:
        """A JSON-ready dict: the two grids (lists of rows), peaks, link and scores."""

        def side(found: SideMap) -> dict:
            return {
                "grid": np.round(found.grid, 4).tolist(),
                "peak": [round(v, 4) for v in found.peak()],
                "best_window": [round(float(v), 4) for v in found.best_window()],
            }

        box_a, box_b, cosine = self.link
        return {
            "part": self.part,
            "method": self.method,
            "score": round(float(self.score), 6),
            "cells": int(self.a.grid.shape[0]),
            "a": side(self.a),
            "b": side(self.b),
            "link": {
                "a": [round(float(v), 4) for v in box_a],
                "b": [round(float(v), 4) for v in box_b],
                "score": round(float(cosine), 6),
            },
        }


def available_parts(embedder: Embedder) -> tuple[str, ...]:
    """The parts a map can read for this model: ``copy`` and ``content`` with a copy descriptor,
    and always ``image``."""
    weights = embedder.model.part_weights()
    parts = tuple(name for name in ("copy", "content") if weights.get(name, 0.0) > 0)
    return (*parts, "image")


def default_part(embedder: Embedder) -> str:
    """The copy descriptor where the model has one (the best hit rate within 2 s a pair; the
    image score localises a little better at over four times the cost: docs/decisions/0026), else
    the image score."""
    return "copy" if "copy" in available_parts(embedder) else "image"


@torch.no_grad()
def part_vectors(embedder: Embedder, pictures: Sequence[Image.Image], part: str) -> np.ndarray:
    """Unit rows whose dot products are the ``part`` cosines of ``pictures`` (see the module).

    ``copy`` runs the copy tower only and ``content`` the content tower only, so a map of one
    part costs one tower.
    """
    if part not in available_parts(embedder):
        raise UserError(
            f"this model has no {part!r} score to map; it has {', '.join(available_parts(embedder))}"
        )
    pictures = list(pictures)
    model = embedder.model
    tower = embedder.image_tower
    if part == "image" or not isinstance(tower, PairedImageTower):
        return embedder.embed_pil(pictures)
    config = model.config
    device = next(iter(model.buffers())).device
    if part == "copy":
        copy = tower.copy.features_of_images(pictures).float().to(device)
        content = copy.new_zeros(len(pictures), config.content_feature_dim)
        frozen = model.frozen_image(torch.cat([content, copy], dim=1))
        return F.normalize(frozen[:, model.frozen_content_dim :], dim=-1).cpu().numpy()
    # content: the trained head and the frozen content descriptor, as part_queries reads them
    if embedder.tuned_tower is not None:
        vectors = embedder.embed_pil(pictures)
    else:
        content = tower.content.features_of_images(pictures).float().cpu()
        copy = content.new_zeros(len(pictures), config.copy_feature_dim)
        vectors = embedder.project_image_features(torch.cat([content, copy], dim=1).numpy())
    slices = model.part_slices()
    kept = np.zeros_like(vectors)
    for where in (slices["trained"], slices["content"]):
        kept[:, where] = vectors[:, where]
    return kept / math.sqrt(model.part_weights()["content"])


def hide(picture: Image.Image, window: Sequence[float]) -> Image.Image:
    """``picture`` with ``window`` (fractions) filled with the picture's mean colour."""
    pixels = np.array(picture.convert("RGB"), dtype=np.uint8)
    mean = pixels.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
    left, top, right, bottom = pixel_box(window, picture.size)
    pixels[top:bottom, left:right] = mean
    return Image.fromarray(pixels, "RGB")


def window_grid(windows: np.ndarray, values: np.ndarray, cells: int) -> np.ndarray:
    """``cells`` x ``cells`` map: each cell the best (largest) of ``values`` of the windows
    covering its centre (a cell no window covers gets the lowest value). The best, not the
    mean: a mean spreads a small match over every window that touches it (its peak missed 20
    small insets of 100 against 7: docs/decisions/0026)."""
    centres = (np.arange(cells) + 0.5) / cells
    xs, ys = centres[None, :, None], centres[:, None, None]
    inside = (
        (windows[None, None, :, 0] <= xs)
        & (xs < windows[None, None, :, 2])
        & (windows[None, None, :, 1] <= ys)
        & (ys < windows[None, None, :, 3])
    )  # rows x cols x windows
    best = np.where(inside, values[None, None, :], -np.inf).max(axis=2)
    return np.where(np.isfinite(best), best, values.min()).astype(np.float32)


def _picture(picture: Image.Image | None, side: str, name: str) -> Image.Image:
    """``picture`` in RGB, refused (one line) when missing, empty or (almost) one colour: a plain
    picture matches every window of every other, so its map would mean nothing."""
    if picture is None:
        raise UserError(f"a match map needs a picture for {side}")
    problem = uninformative_problem(check_picture(picture, name), name)
    if problem:
        raise ImageError(problem)
    return picture.convert("RGB")


def match_map(
    embedder: Embedder,
    image_a: Image.Image,
    image_b: Image.Image,
    *,
    part: str | None = None,
    method: str = "crops",
    grid: WindowGrid | None = None,
    cells: int = DEFAULT_CELLS,
    names: tuple[str, str] = ("image A", "image B"),
) -> MatchMap:
    """Where ``image_a`` (the generated work) and ``image_b`` (the original) match.

    ``part`` defaults to :func:`default_part`; ``grid`` to 5 x 5 windows of a third of the
    picture's side (crops) or 4 x 4 of them (occlusion). ``cells`` is the maps' side; ``names``
    are how errors call the pictures.
    """
    image_a = _picture(image_a, "A", names[0])
    image_b = _picture(image_b, "B", names[1])
    part = part or default_part(embedder)
    if method not in METHODS:
        raise UserError(f"unknown match-map method {method!r}; known: {', '.join(METHODS)}")
    if cells < 1:
        raise UserError(f"a match map needs at least 1 cell a side, got {cells}")
    if grid is None:
        grid = DEFAULT_CROPS if method == "crops" else DEFAULT_OCCLUSION
    windows = grid.windows()
    n = len(windows)
    whole = (0.0, 0.0, 1.0, 1.0)
    if method == "crops":
        pictures = [image_a, image_b]
        pictures += [crop(image_a, w) for w in windows] + [crop(image_b, w) for w in windows]
        vectors = part_vectors(embedder, pictures, part)
        whole_a, whole_b = vectors[0], vectors[1]
        crops_a, crops_b = vectors[2 : 2 + n], vectors[2 + n :]
        values_a, values_b = crops_a @ whole_b, crops_b @ whole_a
        score = float(whole_a @ whole_b)
        # the link: the best pair of regions, a whole picture against a window of the other
        # or two windows (the two wholes say nothing about where)
        all_a = np.vstack([whole_a[None], crops_a])
        all_b = np.vstack([whole_b[None], crops_b])
        pairs = all_a @ all_b.T
        pairs[0, 0] = -np.inf
        i, j = np.unravel_index(int(np.argmax(pairs)), pairs.shape)
        boxes = [whole, *(tuple(w) for w in windows.tolist())]
        link = (boxes[i], boxes[j], float(pairs[i, j]))
    else:
        pictures = [image_a, image_b]
        pictures += [hide(image_a, w) for w in windows] + [hide(image_b, w) for w in windows]
        vectors = part_vectors(embedder, pictures, part)
        whole_a, whole_b = vectors[0], vectors[1]
        score = float(whole_a @ whole_b)
        values_a = score - vectors[2 : 2 + n] @ whole_b
        values_b = score - vectors[2 + n :] @ whole_a
        best_a, best_b = windows[int(np.argmax(values_a))], windows[int(np.argmax(values_b))]
        link = (tuple(best_a.tolist()), tuple(best_b.tolist()), score)
    return MatchMap(
        part=part,
        method=method,
        score=score,
        a=SideMap(window_grid(windows, values_a, cells), windows, values_a),
        b=SideMap(window_grid(windows, values_b, cells), windows, values_b),
        link=link,
    )
