"""Frozen image descriptors on generalisation sets: pooling and PCA-whitening (issue 10).

    python benchmarks/bench_descriptors.py --train data/demo/manifest.csv \\
        --split runs/demo/split.csv --set "heldout-val=data/heldout-val/manifest.csv" ...

The whitening is fitted on the training originals (the ``train`` side of ``--split``) only. Prints
one Markdown row per descriptor: image recall@1 (generated -> its original among all originals of
each set). Tower features are cached as in training (``~/.cache/artsim/features``).
"""

from __future__ import annotations

import argparse
import csv
import sys

import numpy as np
import torch

from artsim.data.manifest import load_manifest
from artsim.model.blend import fit_whitening, whiten
from artsim.model.features import FeatureCache, compute_image_features
from artsim.model.towers import create_image_tower


def recall_at_1(features: np.ndarray, items) -> float:
    originals = [row for row, item in enumerate(items) if item.is_original]
    position = {items[row].group: k for k, row in enumerate(originals)}
    queries = [r for r, i in enumerate(items) if not i.is_original and i.group in position]
    similarity = features[queries] @ features[originals].T
    correct = np.array([position[items[r].group] for r in queries])
    return float((similarity.argmax(axis=1) == correct).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="training manifest (its originals)")
    parser.add_argument("--split", required=True, help="the run's split.csv (train side used)")
    parser.add_argument("--set", action="append", required=True, help="LABEL=MANIFEST")
    parser.add_argument("--dims", default="0,256,512,768,1024", help="whitening dimensions")
    args = parser.parse_args(argv)
    with open(args.split, encoding="utf-8") as handle:
        train_ids = {row["id"] for row in csv.DictReader(handle) if row["split"] == "train"}
    training = [i for i in load_manifest(args.train).items if i.is_original and i.id in train_ids]
    sets = {label: load_manifest(path).items for label, path in (s.split("=", 1) for s in args.set)}
    print("| descriptor | " + " | ".join(sets) + " |")
    print("|---|" + "---:|" * len(sets))
    for name in ("efficientnet-lite0", "efficientnet-lite0-gem"):
        tower = create_image_tower(name)
        cache = FeatureCache(None, tower.version)

        def features(items, tower=tower, cache=cache):
            return compute_image_features(tower, [i.image for i in items], cache)

        fitted = features(training)
        fitted = fitted / np.linalg.norm(fitted, axis=1, keepdims=True)
        for dim in (int(d) for d in args.dims.split(",")):
            if dim:
                mean, projection = (torch.from_numpy(a) for a in fit_whitening(fitted, dim))
            cells = []
            for items in sets.values():
                x = features(items)
                x = torch.from_numpy(x / np.linalg.norm(x, axis=1, keepdims=True))
                x = whiten(x, mean, projection) if dim else x
                cells.append(f"{recall_at_1(x.numpy(), items):.3f}")
            label = f"{name}" + (f", whitened {dim}" if dim else "")
            print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
