"""Which score should decide "derived": the candidates side by side, on their best thresholds.

Thresholds are fitted on the very queries they are measured on (an upper bound for any
calibration).

Half of each set's groups are indexed (a stable hash of the group); every derivative is a query:
those of the indexed half are matches, the others have no original indexed (distractors). Per
candidate decision score of the best result, the threshold passing 1% (and 1.5%) of the
distractors, and the share of match queries whose best result is their original and reaches it.

Candidates: the task's score plain or minus the query's score at rank 2 or 4 of the same search
(the product's background normalisation uses rank 4), and SSCD's own normalisation: the copy
descriptor's cosine of the best result minus the query's second-best copy cosine.

    python benchmarks/bench_decision_scores.py --run runs/copy --set flare=$S/flare/manifest.csv
"""

from __future__ import annotations

import argparse
import sys
import zlib

import numpy as np

import harness
from artsim.data.manifest.manifest import load_manifest
from artsim.eval.embedding import embed_items
from artsim.model.embedder import Embedder


def at_rank(similarity: np.ndarray, rank: int) -> np.ndarray:
    """Each row's score at ``rank`` (1 = best)."""
    return -np.sort(-similarity, axis=1)[:, rank - 1]


def oracle_recall(decision, correct, match, rate: float) -> float:
    """Share of match queries found (best result correct, decision at or above the threshold
    that ``rate`` of the distractor queries reach)."""
    threshold = np.quantile(decision[~match], 1.0 - rate, method="higher")
    return float((correct & (decision >= threshold))[match].mean())


SECTION = '### Which score decides "derived" (measured, nothing changed)'


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's run (it has a copy descriptor) and held-out set."""
    return ["--run", str(kit.run), "--set", f"heldout={kit.heldout}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--set", action="append", required=True, help="LABEL=MANIFEST")
    args = harness.parse_args(parser, argv, quick)
    embedder = Embedder.from_run(args.run)
    weights = embedder.model.part_weights()
    if not weights:
        raise SystemExit(f"{args.run}: the model has no copy descriptor")
    copy_part = embedder.model.part_slices()["copy"]
    section = harness.Section(SECTION, args)
    section.line("| set | task | decision score | found at 1% false | at 1.5% |")
    section.line("|---|---|---|---:|---:|")
    for spec in args.set:
        label, _, path = spec.partition("=")
        items = load_manifest(path).items
        embedded = embed_items(embedder, items, 50_000_000)
        indexed = [
            i
            for i, it in enumerate(items)
            if it.is_original and zlib.crc32(it.group.encode()) % 2 == 0
        ]
        queries = [i for i, it in enumerate(items) if not it.is_original]
        gallery_groups = np.array([items[i].group for i in indexed])
        query_groups = np.array([items[i].group for i in queries])
        match = np.isin(query_groups, gallery_groups)
        image = embedded.image[queries] @ embedded.image[indexed].T
        copy = (
            embedded.image[queries][:, copy_part] @ embedded.image[indexed][:, copy_part].T
        ) / weights["copy"]
        fused = embedded.fused[queries] @ embedded.fused[indexed].T
        rows = np.arange(len(queries))
        candidates = {
            "image": {
                "image score": (image, image, 0),
                "image score - rank 4": (image, image, 4),
                "image score - rank 2": (image, image, 2),
                "copy cosine - rank 2 (SSCD's)": (image, copy, 2),
            },
            "image + prompt": {
                "fused score": (fused, fused, 0),
                "fused score - rank 4": (fused, fused, 4),
                "copy cosine - rank 2 (SSCD's)": (fused, copy, 2),
            },
        }
        for task, scores in candidates.items():
            for name, (ranking, decided, rank) in scores.items():
                best = ranking.argmax(axis=1)
                decision = decided[rows, best] - (at_rank(decided, rank) if rank else 0.0)
                correct = gallery_groups[best] == query_groups
                found = [oracle_recall(decision, correct, match, r) for r in (0.01, 0.015)]
                section.line(f"| {label} | {task} | {name} | {found[0]:.3f} | {found[1]:.3f} |")
        section.line(f"<!-- {label}: {match.sum()} match, {(~match).sum()} distractor queries -->")
    section.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
