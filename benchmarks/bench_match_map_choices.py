"""How match maps were chosen: part, windows, method and how cells read windows.

    python benchmarks/bench_match_map_choices.py --run runs/copy \\
        --set inset-heldout-val=data/inset-heldout-val/manifest.csv --side a --per-pattern 100 \\
        --cache features-inset.npz
    python benchmarks/bench_match_map_choices.py --run runs/copy \\
        --set heldout-val=data/heldout-val/manifest.csv --side b --cache features-b.npz

Every window of several grids is cut from each pair's picture (side ``a``: the derived picture,
scored against the whole original; side ``b``: the original, where the derived picture shows
part of it, scored against the whole derived picture) and run through both towers once
(``--cache`` keeps the raw features: a second run only scores). Each configuration is then
scored from those features, as :func:`artsim.model.explain.match_map` would compute it:

* part: ``copy`` (the copy tower alone), ``content`` (the content tower alone) or ``image``
  (the model's image score, both towers);
* windows: crops of a half (3 x 3), two fifths (4 x 4) or a third (5 x 5) of the side, and
  unions of two; occlusion of a third (4 x 4) or a quarter (5 x 5);
* cells: ``best`` (each cell the best window covering it, what the library does) or ``mean``
  (the mean of the windows covering it).

Prints one row per configuration: the pointing game's hit rate of the map's peak (inside the box
on A, inside ``source_box`` on B), the centre's and a random point's, and the exact sign tests
against both; and what the configuration costs, in tower runs a pair (both sides).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import harness
from artsim.data.manifest.manifest import load_manifest
from artsim.data.pictures.images import load_rgb
from artsim.eval.pointing import MAX_BOX_SHARE, inside, pointing_pairs
from artsim.model.embedder import Embedder
from artsim.model.explain import WindowGrid, crop, hide, window_grid
from artsim.stats import sign_test

# (name, method, grid): the order is the cache's column order, after the two whole pictures
GRIDS = {
    "a": [
        ("crops 1/2 3x3", "crops", WindowGrid((0.5,), (3,))),
        ("crops 2/5 4x4", "crops", WindowGrid((0.4,), (4,))),
        ("crops 1/3 5x5", "crops", WindowGrid((1 / 3,), (5,))),
        ("occlusion 1/3 4x4", "occlusion", WindowGrid((1 / 3,), (4,))),
        ("occlusion 1/4 5x5", "occlusion", WindowGrid((0.25,), (5,))),
    ],
    "b": [
        ("crops 1/2 3x3", "crops", WindowGrid((0.5,), (3,))),
        ("crops 1/3 5x5", "crops", WindowGrid((1 / 3,), (5,))),
        ("occlusion 1/3 4x4", "occlusion", WindowGrid((1 / 3,), (4,))),
    ],
}
UNIONS = {"a": [("crops 1/2 3x3", "crops 1/3 5x5"), ("crops 2/5 4x4", "crops 1/3 5x5")], "b": []}
CELLS = 12


def mean_grid(windows: np.ndarray, values: np.ndarray, cells: int) -> np.ndarray:
    """Each cell the mean value of the windows covering its centre (the alternative to the
    library's best)."""
    centres = (np.arange(cells) + 0.5) / cells
    xs, ys = centres[None, :, None], centres[:, None, None]
    covering = (
        (windows[None, None, :, 0] <= xs)
        & (xs < windows[None, None, :, 2])
        & (windows[None, None, :, 1] <= ys)
        & (ys < windows[None, None, :, 3])
    )
    return (covering * values).sum(axis=2) / np.maximum(covering.sum(axis=2), 1)


def peak(grid: np.ndarray) -> tuple[float, float]:
    rows, cols = grid.shape
    best = np.argwhere(grid >= grid.max() - 1e-6)
    y, x = best.mean(axis=0)
    return (x + 0.5) / cols, (y + 0.5) / rows


class PartVectors:
    """The part vectors of raw [content | copy] tower features, as part_vectors makes them."""

    def __init__(self, embedder: Embedder):
        self.embedder, self.model = embedder, embedder.model

    @torch.no_grad()
    def __call__(self, content: np.ndarray, copy: np.ndarray, part: str) -> np.ndarray:
        model = self.model
        content_t = torch.from_numpy(content.astype(np.float32))
        copy_t = torch.from_numpy(copy.astype(np.float32))
        if part == "copy":
            joined = torch.cat([torch.zeros_like(content_t), copy_t], dim=1)
            frozen = model.frozen_image(joined)[:, model.frozen_content_dim :]
            return F.normalize(frozen, dim=-1).numpy()
        if part == "content":
            joined = torch.cat([content_t, torch.zeros_like(copy_t)], dim=1).numpy()
            vectors = self.embedder.project_image_features(joined)
            slices = model.part_slices()
            kept = np.zeros_like(vectors)
            for where in (slices["trained"], slices["content"]):
                kept[:, where] = vectors[:, where]
            return kept / math.sqrt(model.part_weights()["content"])
        return self.embedder.project_image_features(torch.cat([content_t, copy_t], 1).numpy())


def features(embedder: Embedder, pairs, side: str, cache: Path | None) -> dict[str, np.ndarray]:
    stored = dict(np.load(cache)) if cache is not None and cache.exists() else {}
    tower = embedder.image_tower
    missing = [p for p in pairs if f"{p.id}|copy" not in stored]
    for k, pair in enumerate(missing):
        picture_a, picture_b = load_rgb(pair.generated), load_rgb(pair.original)
        cut = picture_a if side == "a" else picture_b
        pictures = [picture_a, picture_b]
        for _, method, grid in GRIDS[side]:
            make = crop if method == "crops" else hide
            pictures += [make(cut, window) for window in grid.windows()]
        content = tower.content.features_of_images(pictures).numpy()
        stored[f"{pair.id}|content"] = content.astype(np.float16)
        stored[f"{pair.id}|copy"] = tower.copy.features_of_images(pictures).numpy()
        print(f"features {k + 1}/{len(missing)}", file=sys.stderr, flush=True)
    if cache is not None and missing:
        np.savez_compressed(cache, **stored)
    return stored


SECTION = "### Match map choices"


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's run (content and copy towers) on its held-out set,
    two pairs a pattern."""
    return ["--run", str(kit.run), "--set", f"heldout={kit.heldout}", "--per-pattern", "2"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--set", required=True, help="NAME=manifest.csv")
    parser.add_argument("--side", choices=("a", "b"), default="a")
    parser.add_argument("--per-pattern", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = harness.parse_args(parser, argv, quick)
    torch.set_num_threads(args.threads)
    embedder = Embedder.from_run(args.run, cache_dir=False)
    name, _, path = args.set.partition("=")
    pairs = pointing_pairs(load_manifest(path, check_images=False), per_pattern=args.per_pattern)
    if args.side == "b":  # the pairs where A shows part of B
        kept = []
        for pair in pairs:
            source = pair.source_box
            with Image.open(pair.original) as picture:
                width, height = picture.size
            area = (source[2] - source[0]) * (source[3] - source[1]) if source else math.inf
            if area < MAX_BOX_SHARE * width * height:
                kept.append(pair)
        pairs = kept
    stored = features(embedder, pairs, args.side, args.cache)
    vectors_of = PartVectors(embedder)
    offsets, start = {}, 2
    for grid_name, method, grid in GRIDS[args.side]:
        offsets[grid_name] = (start, start + len(grid), method, grid)
        start += len(grid)
    configurations = [(g,) for g, _, _ in GRIDS[args.side]] + list(UNIONS[args.side])
    rng = np.random.default_rng(0)
    random_points = {pair.id: (rng.uniform(), rng.uniform()) for pair in pairs}
    sizes = {}
    for pair in pairs:
        with Image.open(pair.generated if args.side == "a" else pair.original) as picture:
            sizes[pair.id] = picture.size
    section = harness.Section(SECTION, args)
    section.line(f"{name}, side {args.side}: {len(pairs)} pairs\n")
    section.line(
        "| part | windows | cells | tower runs a pair | map | centre | random | "
        "map vs centre (+/-, p) | map vs random (+/-, p) |"
    )
    section.line("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for part in ("copy", "content", "image"):
        vectors = {
            p.id: vectors_of(stored[f"{p.id}|content"], stored[f"{p.id}|copy"], part) for p in pairs
        }
        for members in configurations:
            for how in ("best", "mean"):
                hits = []
                for pair in pairs:
                    v = vectors[pair.id]
                    whole_a, whole_b = v[0], v[1]
                    other = whole_b if args.side == "a" else whole_a
                    score = float(whole_a @ whole_b)
                    windows, values = [], []
                    for member in members:
                        first, last, method, grid = offsets[member]
                        cosines = v[first:last] @ other
                        values.append(cosines if method == "crops" else score - cosines)
                        windows.append(grid.windows())
                    windows, values = np.vstack(windows), np.concatenate(values)
                    grid = (window_grid if how == "best" else mean_grid)(windows, values, CELLS)
                    x, y = peak(grid)
                    width, height = sizes[pair.id]
                    box = pair.box if args.side == "a" else pair.source_box
                    rx, ry = random_points[pair.id]
                    hits.append(
                        (
                            inside((x * width, y * height), box),
                            inside((width / 2, height / 2), box),
                            inside((rx * width, ry * height), box),
                        )
                    )
                hit = np.array(hits)
                runs = 2 + 2 * sum(offsets[m][1] - offsets[m][0] for m in members)
                towers = {"copy": "copy", "content": "content", "image": "both"}[part]
                row = [part, " + ".join(members), how, f"{runs} ({towers})"]
                row += [f"{hit[:, k].mean():.2f}" for k in range(3)]
                for k in (1, 2):
                    wins = int((hit[:, 0] & ~hit[:, k]).sum())
                    losses = int((~hit[:, 0] & hit[:, k]).sum())
                    row.append(f"+{wins}/-{losses}, {sign_test(wins, losses):.1g}")
                section.line("| " + " | ".join(row) + " |")
    section.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
