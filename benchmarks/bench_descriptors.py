"""Frozen image descriptors on generalisation sets: pooling, scales and PCA-whitening.

    python benchmarks/bench_descriptors.py --train data/demo/manifest.csv \\
        --split runs/demo/split.csv --split-set "demo val=val" \\
        --set "heldout-val=data/heldout-val/manifest.csv" ... \\
        [--tower efficientnet-lite0-gem ...] [--scales 224 --scales 224+320 ...] [--dims 0,768]

The whitening is fitted on the training originals (the ``train`` side of ``--split``) only; it is
skipped (and those features are not computed) when ``--dims`` is ``0``. Prints one Markdown row
per descriptor: image recall@1 (generated -> its original among all originals of each set);
with ``--paired`` each later row also says how many queries only it / only the first descriptor
gets right, with the sign test's p.

``--tower NAME`` evaluates a registered image tower; ``--scales 224+320`` the GeM (p = 3)
descriptor at several input sizes: the mean of the L2-normalised descriptors of single-scale
towers (:class:`artsim.model.towers.descriptors.DescriptorTower` with one scale each), so each size is
extracted once and reused by every combination. Unlike ``DescriptorTower(scales=(224, 320))``,
which resizes the 320-px tensor down with torch, each size here is resized from the file by PIL.
Without ``--tower`` and ``--scales`` the two towers of BENCHMARKS' first table are evaluated.

Tower features are cached as in training (``~/.cache/artsim/features``), so an interrupted run
resumes; each computation reports its images per second on stderr.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

import harness
from artsim.data.manifest.manifest import Item, load_manifest
from artsim.model.blend import fit_whitening, whiten
from artsim.model.features import FeatureCache, compute_image_features
from artsim.model.towers import ImageTower, create_image_tower
from artsim.model.towers.descriptors import DescriptorTower
from artsim.stats import sign_test

DEFAULT_TOWERS = ("efficientnet-lite0", "efficientnet-lite0-gem")


def hits_at_1(features: np.ndarray, items) -> np.ndarray:
    """Per query (generated item whose original is in ``items``): is its original the nearest?"""
    originals = [row for row, item in enumerate(items) if item.is_original]
    position = {items[row].group: k for k, row in enumerate(originals)}
    queries = [r for r, i in enumerate(items) if not i.is_original and i.group in position]
    similarity = features[queries] @ features[originals].T
    correct = np.array([position[items[r].group] for r in queries])
    return similarity.argmax(axis=1) == correct


def recall_at_1(features: np.ndarray, items) -> float:
    return float(hits_at_1(features, items).mean())


def paired_cell(hits: np.ndarray, baseline: np.ndarray | None) -> str:
    """``0.773`` or, against a baseline's hits on the same queries, ``0.773 (+9/-4, p 0.27)``:
    queries only this descriptor gets right / only the baseline, exact two-sided sign test."""
    cell = f"{hits.mean():.3f}"
    if baseline is None:
        return cell
    wins, losses = int((hits & ~baseline).sum()), int((baseline & ~hits).sum())
    return f"{cell} (+{wins}/-{losses}, p {sign_test(wins, losses):.2g})"


def normalise(features: np.ndarray) -> np.ndarray:
    return features / np.linalg.norm(features, axis=1, keepdims=True)


def mean_of_scales(per_scale: Sequence[np.ndarray]) -> np.ndarray:
    """The several-scale descriptor: the mean of each scale's L2-normalised descriptor."""
    return np.mean([normalise(np.asarray(x, dtype=np.float32)) for x in per_scale], axis=0)


def parse_scales(spec: str) -> tuple[int, ...]:
    """``"224+320"`` -> ``(224, 320)``; one clear error for anything else."""
    try:
        scales = tuple(int(part) for part in spec.split("+"))
    except ValueError:
        raise SystemExit(f"--scales {spec!r}: expected sizes joined by '+', e.g. 224+320") from None
    if not scales or min(scales) < 32:
        raise SystemExit(f"--scales {spec!r}: each size must be at least 32 px")
    return scales


Extractor = Callable[[list[Item]], np.ndarray]


def tower_extractor(tower: ImageTower) -> Extractor:
    """Cached features of one tower, reporting the images per second of what it computes."""
    cache = FeatureCache(None, tower.version)

    def features(items: list[Item]) -> np.ndarray:
        calls: list[int] = []  # the last call counts the rows read from the cache
        start = time.perf_counter()
        x = compute_image_features(tower, [i.image for i in items], cache, progress=calls.append)
        seconds, computed = time.perf_counter() - start, sum(calls[:-1])
        if computed:
            print(
                f"{tower.name}: computed {computed} images in {seconds:.1f} s "
                f"({computed / seconds:.1f} images/s)",
                file=sys.stderr,
                flush=True,
            )
        return x

    return features


def scales_extractor(scales: tuple[int, ...], single: dict[int, Extractor]) -> Extractor:
    for size in scales:
        if size not in single:
            single[size] = tower_extractor(DescriptorTower(p=3.0, scales=(size,)))
    return lambda items: mean_of_scales([single[size](items) for size in scales])


def query_patterns(manifest: str, items: list[Item]) -> list[str] | None:
    """The heldout pattern of each query of :func:`hits_at_1` (``combination`` for any combo),
    or None when the manifest has no ``pattern`` column."""
    with open(manifest, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "pattern" not in rows[0]:
        return None
    pattern = {row["id"]: row["pattern"] for row in rows}
    groups = {item.group for item in items if item.is_original}
    queries = [i for i in items if not i.is_original and i.group in groups]
    named = [pattern.get(q.id) or "none" for q in queries]
    return ["combination" if p.startswith("combo:") else p for p in named]


def pattern_rows(
    patterns: dict[str, list[str]], hits: dict[str, np.ndarray], baseline: dict[str, np.ndarray]
) -> list[str]:
    """Rows ``| pattern | 0.680 -> 0.800 (+3/-0) | ...`` per set: baseline -> these hits."""
    names = sorted({p for labels in patterns.values() for p in labels})
    rows = []
    for name in names:
        cells = []
        for label, labels in patterns.items():
            mask = np.array([p == name for p in labels], dtype=bool)
            if not mask.any():
                cells.append("–")
                continue
            new, old = hits[label][mask], baseline[label][mask]
            wins, losses = int((new & ~old).sum()), int((old & ~new).sum())
            cells.append(f"{old.mean():.3f} -> {new.mean():.3f} (+{wins}/-{losses})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def split_set(train_manifest: str, split_path: str, split: str) -> list[Item]:
    with open(split_path, encoding="utf-8") as handle:
        ids = {row["id"] for row in csv.DictReader(handle) if row["split"] == split}
    items = [i for i in load_manifest(train_manifest).items if i.id in ids]
    if not items:
        raise SystemExit(f"--split-set: no row of {train_manifest} is in split {split!r}")
    return items


SECTION = "### Frozen image descriptors"


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's corpus and held-out set, the tiny towers and GeM
    at small sizes, every table."""
    return [
        *("--train", str(kit.manifest), "--split", str(kit.run / "split.csv")),
        *("--set", f"heldout={kit.heldout}", "--split-set", "val=val"),
        *("--tower", "tiny", "--tower", "tiny-copy", "--scales", "32+48"),
        *("--dims", "0,8", "--paired", "--by-pattern", "8"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="training manifest (its originals)")
    parser.add_argument("--split", required=True, help="the run's split.csv (train side used)")
    parser.add_argument("--set", action="append", default=[], help="LABEL=MANIFEST")
    parser.add_argument(
        "--split-set", action="append", default=[], help="LABEL=SPLIT: --train's rows in SPLIT"
    )
    parser.add_argument("--tower", action="append", default=[], help="registered image tower")
    parser.add_argument("--scales", action="append", default=[], help="GeM sizes, e.g. 224+320")
    parser.add_argument("--dims", default="0,256,512,768,1024", help="whitening dimensions")
    parser.add_argument(
        "--paired", action="store_true", help="each row against the first descriptor (same dims)"
    )
    parser.add_argument(
        "--by-pattern",
        type=int,
        metavar="DIM",
        help="then, per heldout pattern of each --set, each row against the first at this DIM",
    )
    args = harness.parse_args(parser, argv, quick)
    paths = dict(spec.split("=", 1) for spec in args.set)
    sets = {label: load_manifest(path).items for label, path in paths.items()}
    for spec in args.split_set:
        label, split = spec.split("=", 1)
        sets[label] = split_set(args.train, args.split, split)
    if not sets:
        parser.error("give at least one --set or --split-set")
    dims = [int(d) for d in args.dims.split(",")]
    if args.by_pattern is not None and args.by_pattern not in dims:
        parser.error(f"--by-pattern {args.by_pattern}: not one of --dims {args.dims}")
    training: list[Item] = []
    if any(dims):
        training = [i for i in split_set(args.train, args.split, "train") if i.is_original]

    descriptors: dict[str, Extractor] = {}
    single: dict[int, Extractor] = {}
    towers = args.tower or ([] if args.scales else list(DEFAULT_TOWERS))
    for name in towers:
        descriptors[name] = tower_extractor(create_image_tower(name))
    for spec in args.scales:
        scales = parse_scales(spec)
        descriptors[f"GeM {spec} px"] = scales_extractor(scales, single)

    section = harness.Section(SECTION, args)
    section.line("| descriptor | " + " | ".join(sets) + " |")
    section.line("|---|" + "---:|" * len(sets))
    baselines: dict[tuple[int, str], np.ndarray] = {}
    by_pattern: dict[str, dict[str, np.ndarray]] = {}
    for row, (name, features) in enumerate(descriptors.items()):
        fitted = normalise(features(training)) if training else None
        for dim in dims:
            if dim:
                mean, projection = (torch.from_numpy(a) for a in fit_whitening(fitted, dim))
            cells = []
            for label, items in sets.items():
                x = torch.from_numpy(normalise(features(items)))
                x = whiten(x, mean, projection) if dim else x
                hits = hits_at_1(x.numpy(), items)
                if row == 0:
                    baselines[dim, label] = hits
                if dim == args.by_pattern:
                    by_pattern.setdefault(name, {})[label] = hits
                baseline = baselines.get((dim, label)) if args.paired and row else None
                cells.append(paired_cell(hits, baseline))
            label = f"{name}" + (f", whitened {dim}" if dim else "")
            section.line(f"| {label} | " + " | ".join(cells) + " |")
    if args.by_pattern is not None:
        patterns = {label: query_patterns(path, sets[label]) for label, path in paths.items()}
        patterns = {label: labels for label, labels in patterns.items() if labels is not None}
        first, *others = by_pattern
        for name in others:
            how = f"whitened {args.by_pattern}" if args.by_pattern else "raw"
            section.line(f"\n{first} -> {name}, {how}, per pattern (+only this / -only {first}):")
            section.line("\n| pattern | " + " | ".join(patterns) + " |")
            section.line("|---|" + "---|" * len(patterns))
            for line in pattern_rows(patterns, by_pattern[name], by_pattern[first]):
                section.line(line)
    section.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
