"""Query-side multi-crop descriptors against the whole picture alone (partial copies).

A generated work that holds only part of an original (a collage, an inset, a border) is where a
global descriptor fails. ISC 2021 entries embedded several crops of each query and scored an
original by the best crop. Here each query is embedded whole, as its 2x2 grid of half-size
crops and as its centre crop (``--crops``), through the run's model; an original's image score
is the maximum over the query's crops (``--penalties``: a crop must beat the whole picture by that
margin to count). The crops and the scoring are the product's (:mod:`artsim.index.crops`).
Originals are embedded whole, as an index holds them.

Prints per set: image recall@1 whole vs max-over-crops (query by query, exact sign test), per
held-out pattern, and the open-set figure that matters for verdicts: leaving each query's own
group out gives a distractor top-1; the threshold passing 1% of distractors, and the share of
queries found (top-1 correct) at or above it.

    python benchmarks/bench_multicrop.py --run runs/copy --set flare=$S/flare/manifest.csv
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

import harness
from artsim.data.manifest.manifest import load_manifest
from artsim.data.pictures.crops import QUERY_CROP_WINDOWS, crops
from artsim.data.pictures.images import load_rgb
from artsim.eval.embedding import embed_items
from artsim.index.crops import best_of_crops
from artsim.model.embedder import Embedder
from artsim.stats import sign_test


def open_set(scores: np.ndarray, correct: np.ndarray, own: np.ndarray, rate: float = 0.01):
    """(threshold, share found): top-1 with each query's own group left out gives distractors;
    the threshold passes ``rate`` of them; found = top-1 correct and at or above it."""
    distractor = np.where(own, -np.inf, scores).max(axis=1)
    threshold = float(np.quantile(distractor, 1.0 - rate, method="higher"))
    top = scores.argmax(axis=1)
    found = (top == correct) & (scores.max(axis=1) > threshold)
    return threshold, float(found.mean())


SECTION = "### Query crops"


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's run on its held-out set, two margins."""
    return ["--run", str(kit.run), "--set", f"heldout={kit.heldout}", "--penalties", "0,0.05"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--set", action="append", required=True, help="LABEL=MANIFEST")
    parser.add_argument(
        "--penalties",
        default="0",
        help="comma-separated margins a crop must beat the whole picture by: an original's score "
        "is max(whole, best crop - margin)",
    )
    parser.add_argument("--cache", type=Path, help="folder keeping each set's crop scores")
    args = harness.parse_args(parser, argv, quick)
    penalties = [float(p) for p in args.penalties.split(",")]
    embedder = Embedder.from_run(args.run)
    section = harness.Section(SECTION, args)
    for spec in args.set:
        label, _, path = spec.partition("=")
        items = load_manifest(path).items
        originals = [r for r, i in enumerate(items) if i.is_original]
        position = {items[r].group: k for k, r in enumerate(originals)}
        queries = [r for r, i in enumerate(items) if not i.is_original and i.group in position]
        correct = np.array([position[items[r].group] for r in queries])
        embedded = embed_items(embedder, items, 50_000_000)
        gallery = embedded.image[originals]
        whole = embedded.image[queries] @ gallery.T
        saved = args.cache / f"{label}-{embedder.model_id}.npy" if args.cache else None
        if saved is not None and saved.is_file():
            crop_best = np.load(saved)
        else:
            crop_best = np.full_like(whole, -np.inf)
            for row, query in enumerate(queries):
                pieces = crops(load_rgb(items[query].image))
                if pieces:
                    crop_best[row] = (embedder.embed_pil(pieces) @ gallery.T).max(0)
            if saved is not None:
                saved.parent.mkdir(parents=True, exist_ok=True)
                np.save(saved, crop_best)
        for penalty in penalties:
            best = best_of_crops(whole.T, crop_best.T[None], penalty).T
            _report(section, label, items, queries, originals, correct, whole, best, penalty)
    section.finish()
    return 0


def _report(
    section: harness.Section, label, items, queries, originals, correct, whole, best, penalty
) -> None:
    """Recall@1 and the 1%-false figures of whole against best, overall and per pattern."""
    own = np.zeros_like(whole, dtype=bool)
    own[np.arange(len(queries)), correct] = True
    hits_whole = whole.argmax(1) == correct
    hits_best = best.argmax(1) == correct
    won, lost = int((hits_best & ~hits_whole).sum()), int((hits_whole & ~hits_best).sum())
    t_whole, found_whole = open_set(whole, correct, own)
    t_best, found_best = open_set(best, correct, own)
    section.line(
        f"\n{label}, margin {penalty:g}: {len(queries)} queries, {len(originals)} originals\n"
    )
    section.line("| scoring | image recall@1 | threshold at 1% false | found at 1% false |")
    section.line("|---|---:|---:|---:|")
    section.line(f"| whole picture | {hits_whole.mean():.3f} | {t_whole:.3f} | {found_whole:.3f} |")
    section.line(
        f"| max over whole + up to {len(QUERY_CROP_WINDOWS)} crops | "
        f"{hits_best.mean():.3f} (+{won}/-{lost}, p {sign_test(won, lost):.2g}) "
        f"| {t_best:.3f} | {found_best:.3f} |"
    )
    patterns: dict[str, list[int]] = defaultdict(list)
    for row, query in enumerate(queries):
        patterns[items[query].metadata.get("pattern", "").split(":")[0] or "(none)"].append(row)
    section.line("\n| pattern | queries | whole | max over crops | won / lost |")
    section.line("|---|---:|---:|---:|---|")
    for pattern, rows in sorted(patterns.items()):
        w, b = hits_whole[rows], hits_best[rows]
        section.line(
            f"| {pattern} | {len(rows)} | {w.mean():.3f} | {b.mean():.3f} "
            f"| +{int((b & ~w).sum())}/-{int((w & ~b).sum())} |"
        )


if __name__ == "__main__":
    sys.exit(main())
