"""Which frozen text tower reads the demo corpus's Spanish best?

For every Tux Paint stamp with both captions, the Spanish caption is a query and the English
captions of all stamps are the gallery: recall@1 and MRR of finding the same stamp's English
caption, per tower.

    .venv/bin/python benchmarks/bench_text_towers.py --data data/demo/manifest.csv
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import harness
from artsim.data.manifest.manifest import load_manifest
from artsim.model.towers import create_text_tower

SECTION = "### Text towers"


def ranks(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Rank (0 = first) of the matching gallery row for each query (row i matches row i)."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    scores = q @ g.T
    return (scores > np.diag(scores)[:, None]).sum(axis=1)


def measure(tower_name: str, spanish: list[str], english: list[str]) -> dict[str, float]:
    tower = create_text_tower(tower_name)
    started = time.perf_counter()
    es = tower.encode(spanish).numpy()
    en = tower.encode(english).numpy()
    seconds = time.perf_counter() - started
    r = ranks(es, en)
    return {
        "recall@1": float((r == 0).mean()),
        "recall@5": float((r < 5).mean()),
        "mrr": float((1.0 / (r + 1)).mean()),
        "texts_per_second": (len(spanish) + len(english)) / seconds,
    }


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's corpus (Spanish captions beside the English ones),
    the tiny text tower."""
    return ["--data", str(kit.manifest), "--towers", "tiny"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/demo/manifest.csv")
    parser.add_argument("--towers", default="e5-small,minilm")
    args = harness.parse_args(parser, argv, quick)
    manifest = load_manifest(args.data, check_images=False)
    pairs = [
        (item.metadata["text_es"], item.text)
        for item in manifest.originals()
        if item.metadata.get("text_es") and item.text
    ]
    spanish, english = [p[0] for p in pairs], [p[1] for p in pairs]
    section = harness.Section(SECTION, args)
    section.line(
        f"Spanish caption -> English caption of the same Tux Paint stamp, {len(pairs)} stamps "
        f"(gallery: all {len(pairs)} English captions), frozen towers, no training.\n"
    )
    section.line("| tower | recall@1 | recall@5 | MRR | texts/s |")
    section.line("|---|---:|---:|---:|---:|")
    for name in args.towers.split(","):
        figures = measure(name, spanish, english)
        section.line(
            f"| {name} | {figures['recall@1']:.3f} | {figures['recall@5']:.3f} | "
            f"{figures['mrr']:.3f} | {figures['texts_per_second']:.0f} |"
        )
    section.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
