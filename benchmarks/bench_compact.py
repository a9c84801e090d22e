"""Compact index vectors: the model's vectors projected onto K dimensions, against the full ones.

The default model's vectors concatenate the trained heads, the whitened content and copy
descriptors and the frozen text part (256 + 768 + 512 + 384 = 1920 floats). An index may store
fewer. ``--joint``: one orthonormal projection onto the top K directions of the training
originals' image, text and fused vectors together (uncentred PCA); default: one projection per
stored modality (image, text, fused), each fitted on that modality's vectors of the training
originals, and a query projected with the projection of the store it searches (so an image
query searching captions, i2t, uses the text store's). Dot products are kept where the stored
vectors lie in the kept directions. Per evaluation set and K: recall@1 of image, text (prompt ->
caption), fused, i2t and t2i with the projected vectors, query by query against the full vectors
(won / lost, exact sign test), and the largest error of the copy score (the copy part as a
partial query against the image store) over 200 pairs.

    python benchmarks/bench_compact.py --run runs/copy --train data/demo/manifest.csv \\
        --set flare=$S/flare/manifest.csv --dims 256,384,512
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import harness
from artsim import runfolder
from artsim.data.manifest import load_manifest
from artsim.eval.embedding import embed_items
from artsim.model.embedder import Embedder
from artsim.model.heads import fit_block_projection, fit_output_projection
from artsim.stats import sign_test


def _hits(queries: np.ndarray, gallery: np.ndarray, correct: np.ndarray) -> np.ndarray:
    if len(queries) == 0:
        return np.zeros(0, bool)
    return (queries @ gallery.T).argmax(axis=1) == correct


def task_hits(items, image, text, fused, has_text, cross=None) -> dict[str, np.ndarray]:
    """Per task, per query: is its original the nearest among the set's originals. ``cross``:
    (image queries in the text store's space, text queries in the image store's space) for i2t
    and t2i when each store has its own projection."""
    image_as_text, text_as_image = cross if cross is not None else (image, text)
    originals = [r for r, item in enumerate(items) if item.is_original]
    position = {items[r].group: k for k, r in enumerate(originals)}
    queries = [r for r, i in enumerate(items) if not i.is_original and i.group in position]
    correct = np.array([position[items[r].group] for r in queries])
    q, g = np.array(queries), np.array(originals)
    with_text = has_text[q] & has_text[g][correct]
    text_gallery = has_text[g]
    remap = np.cumsum(text_gallery) - 1
    tq, tc = q[with_text], remap[correct[with_text]]
    return {
        "image": _hits(image[q], image[g], correct),
        "fused": _hits(fused[q], fused[g], correct),
        "text": _hits(text[tq], text[g[text_gallery]], tc),
        "i2t": _hits(image_as_text[tq], text[g[text_gallery]], tc),
        "t2i": _hits(text_as_image[tq], image[g[text_gallery]], tc),
    }


def cell(hits: np.ndarray, full: np.ndarray) -> str:
    won, lost = int((hits & ~full).sum()), int((full & ~hits).sum())
    return f"{hits.mean():.3f} (+{won}/-{lost}, p {sign_test(won, lost):.2g})"


SECTION = "### Compact index vectors (measured, not adopted)"


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's run, its held-out set, few dimensions."""
    return [
        *("--run", str(kit.run), "--train", str(kit.manifest)),
        *("--set", f"heldout={kit.heldout}", "--dims", "4,8"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True, help="the run's training manifest")
    parser.add_argument("--set", action="append", required=True, help="LABEL=MANIFEST")
    parser.add_argument("--dims", default="256,384,512")
    parser.add_argument("--joint", action="store_true", help="one projection for all modalities")
    parser.add_argument(
        "--blocks", action="store_true", help="per modality, block-diagonal over the model's parts"
    )
    args = harness.parse_args(parser, argv, quick)
    embedder = Embedder.from_run(args.run)
    sides = runfolder.read_split_ids(args.run)
    manifest = load_manifest(args.train)
    training = [i for i in manifest.items if i.is_original and sides.get(i.id) == "train"]
    fit = embed_items(embedder, training, 50_000_000)
    dims = [int(d) for d in args.dims.split(",")]
    has_text = fit.has_text
    projections = {}
    for k in dims:
        if args.joint:
            joint = fit_output_projection(np.concatenate([fit.image, fit.text, fit.fused]), k)
            projections[k] = {"image": joint, "text": joint, "fused": joint}
        elif args.blocks:
            blocks = list(embedder.model.part_slices().values())
            projections[k] = {
                "image": fit_block_projection(fit.image, blocks, k),
                "text": fit_block_projection(fit.text[has_text], blocks, k),
                "fused": fit_block_projection(fit.fused, blocks, k),
            }
        else:
            projections[k] = {
                "image": fit_output_projection(fit.image, k),
                "text": fit_output_projection(fit.text[has_text], k),
                "fused": fit_output_projection(fit.fused, k),
            }
    section = harness.Section(SECTION, args)
    section.line("| set | dims | image | text | fused | i2t | t2i | copy score, max abs error |")
    section.line("|---|---:|---:|---:|---:|---:|---:|---:|")
    from artsim.index.query import part_queries

    for spec in args.set:
        label, _, path = spec.partition("=")
        items = load_manifest(path).items
        embedded = embed_items(embedder, items, 50_000_000)
        full = task_hits(items, embedded.image, embedded.text, embedded.fused, embedded.has_text)
        cells = [f"{full[t].mean():.3f}" for t in ("image", "text", "fused", "i2t", "t2i")]
        section.line(f"| {label} | {embedder.dim} (full) | " + " | ".join(cells) + " | – |")
        for k, stores in projections.items():
            projection = stores["image"]
            image = embedded.image @ stores["image"]
            text = embedded.text @ stores["text"]
            fused = embedded.fused @ stores["fused"]
            cross = (embedded.image @ stores["text"], embedded.text @ stores["image"])
            hits = task_hits(items, image, text, fused, embedded.has_text, cross)
            errors = []
            for row in range(min(200, len(items))):
                for name, partial, weight in part_queries(embedder, embedded.image[row]):
                    if name != "copy":
                        continue
                    exact = float(partial @ embedded.image[(row + 1) % len(items)]) / weight
                    compact = float((partial @ projection) @ image[(row + 1) % len(items)]) / weight
                    errors.append(abs(exact - compact))
            error = f"{max(errors):.3f}" if errors else "–"
            cells = [cell(hits[t], full[t]) for t in ("image", "text", "fused", "i2t", "t2i")]
            section.line(f"| {label} | {k} | " + " | ".join(cells) + f" | {error} |")
    section.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
