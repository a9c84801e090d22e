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
partial query against the image store) over 200 pairs. ``--int8``: instead of projecting, every
dimension kept in one byte, as the embedded store holds a modality from 20,000 vectors
(:mod:`artsim.index.storage`; queries stay float32).

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
from artsim.data.manifest.manifest import load_manifest
from artsim.eval.embedding import embed_items
from artsim.model.embedder import Embedder
from artsim.model.heads import fit_block_projection, fit_output_projection
from artsim.stats import sign_test


def _hits(queries: np.ndarray, gallery: np.ndarray, correct: np.ndarray) -> np.ndarray:
    if len(queries) == 0:
        return np.zeros(0, bool)
    return (queries @ gallery.T).argmax(axis=1) == correct


def task_hits(
    items, image, text, fused, has_text, cross=None, stored=None
) -> dict[str, np.ndarray]:
    """Per task, per query: is its original the nearest among the set's originals. ``cross``:
    (image queries in the text store's space, text queries in the image store's space) for i2t
    and t2i when each store has its own projection; ``stored``: the (image, text, fused)
    vectors the stores hold, when they differ from the queries' (8-bit codes)."""
    image_as_text, text_as_image = cross if cross is not None else (image, text)
    held_image, held_text, held_fused = stored if stored is not None else (image, text, fused)
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
        "image": _hits(image[q], held_image[g], correct),
        "fused": _hits(fused[q], held_fused[g], correct),
        "text": _hits(text[tq], held_text[g[text_gallery]], tc),
        "i2t": _hits(image_as_text[tq], held_text[g[text_gallery]], tc),
        "t2i": _hits(text_as_image[tq], held_image[g[text_gallery]], tc),
    }


def evaluation_sets(args, embedder):
    """Per ``--set``: its label, items, embedded vectors, and the full vectors' hits and
    recall cells (the reference row of every table)."""
    for spec in args.set:
        label, _, path = spec.partition("=")
        items = load_manifest(path).items
        embedded = embed_items(embedder, items, 50_000_000)
        full = task_hits(items, embedded.image, embedded.text, embedded.fused, embedded.has_text)
        cells = " | ".join(f"{full[t].mean():.3f}" for t in TASKS)
        yield label, items, embedded, full, cells


TASKS = ("image", "text", "fused", "i2t", "t2i")


def cell(hits: np.ndarray, full: np.ndarray) -> str:
    won, lost = int((hits & ~full).sum()), int((full & ~hits).sum())
    return f"{hits.mean():.3f} (+{won}/-{lost}, p {sign_test(won, lost):.2g})"


SECTION = "### Compact index vectors (8 bits adopted, projections not)"


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's run, its held-out set, few dimensions."""
    return [
        *("--run", str(kit.run), "--train", str(kit.manifest)),
        *("--set", f"heldout={kit.heldout}", "--dims", "4,8", "--int8"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True, help="the run's training manifest")
    parser.add_argument("--set", action="append", required=True, help="LABEL=MANIFEST")
    parser.add_argument(
        "--dims", default="256,384,512", help="projection sizes, or none (with --int8)"
    )
    parser.add_argument("--joint", action="store_true", help="one projection for all modalities")
    parser.add_argument(
        "--blocks", action="store_true", help="per modality, block-diagonal over the model's parts"
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also every dimension kept, each stored as one byte (faiss' 8-bit scalar "
        "quantizer, as the embedded store holds a modality from 20,000 vectors): a second table",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=None,
        help="with --int8: widen each dimension's range by this share of its span a side "
        "(default: the store's, artsim.index.storage.RANGE_MARGIN)",
    )
    args = harness.parse_args(parser, argv, quick)
    embedder = Embedder.from_run(args.run)
    sides = runfolder.read_split_ids(args.run)
    manifest = load_manifest(args.train)
    training = [i for i in manifest.items if i.is_original and sides.get(i.id) == "train"]
    fit = embed_items(embedder, training, 50_000_000)
    dims = [] if args.dims == "none" else [int(d) for d in args.dims.split(",")]
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
    if projections:
        projection_table(section, args, embedder, projections)
    if args.int8:
        if args.margin is not None:
            from artsim.index import storage

            storage.RANGE_MARGIN = args.margin
        int8_table(section, args, embedder, fit)
    section.finish()
    return 0


def projection_table(section, args, embedder, projections) -> None:
    """Recall with the vectors projected onto each size, against the full vectors."""
    from artsim.index.query import part_queries

    section.line("| set | dims | image | text | fused | i2t | t2i | copy score, max abs error |")
    section.line("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, items, embedded, full, cells in evaluation_sets(args, embedder):
        section.line(f"| {label} | {embedder.dim} (full) | {cells} | – |")
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
            compared = " | ".join(cell(hits[t], full[t]) for t in TASKS)
            section.line(f"| {label} | {k} | {compared} | {error} |")
    section.line()


def int8_codecs(fit, embedded, items) -> dict[str, dict]:
    """Per stored modality, the stored vectors as the store's 8-bit codes hold them
    (:mod:`artsim.index.storage`): ranges from the set's own originals (a store built on them),
    and from the training originals (a store whose ranges were set before these pictures came)."""
    from artsim.index.storage import ranges, stored

    originals = np.array([item.is_original for item in items])
    own = {
        "image": embedded.image[originals],
        "text": embedded.text[originals & embedded.has_text],
        "fused": embedded.fused[originals],
    }
    training = {"image": fit.image, "text": fit.text[fit.has_text], "fused": fit.fused}

    def codec(vectors: np.ndarray):
        trained = ranges(vectors)
        return lambda x: stored(x, trained)

    return {
        "ranges of the set's originals": {m: codec(v) for m, v in own.items()},
        "ranges of the training originals": {m: codec(v) for m, v in training.items()},
    }


def int8_table(section, args, embedder, fit) -> None:
    """Recall with 8-bit stored vectors (queries stay float, as faiss searches them)."""
    from artsim.index.query import part_queries

    section.line(
        "| set | stored | image | text | fused | i2t | t2i | copy score, max abs error "
        "| image top-10 as float32's |"
    )
    section.line("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, items, embedded, full, cells in evaluation_sets(args, embedder):
        section.line(f"| {label} | float32 | {cells} | – | – |")
        for name, stores in int8_codecs(fit, embedded, items).items():
            image = stores["image"](embedded.image)
            text = stores["text"](embedded.text)
            fused = stores["fused"](embedded.fused)
            # a query is float; what it is compared with is the store's decoded vector
            hits = task_hits(
                items, embedded.image, embedded.text, embedded.fused, embedded.has_text,
                stored=(image, text, fused),
            )  # fmt: skip
            errors = []
            for row in range(min(200, len(items))):
                other = (row + 1) % len(items)
                for part, partial, weight in part_queries(embedder, embedded.image[row]):
                    if part != "copy":
                        continue
                    exact = float(partial @ embedded.image[other]) / weight
                    errors.append(abs(exact - float(partial @ image[other]) / weight))
            compared = " | ".join(cell(hits[t], full[t]) for t in TASKS)
            error = f"{max(errors):.4f}" if errors else "–"
            overlap = f"{top10_overlap(items, embedded.image, image):.3f}"
            section.line(f"| {label} | int8, {name} | {compared} | {error} | {overlap} |")


def top10_overlap(items, queries: np.ndarray, held: np.ndarray) -> float:
    """Of each non-original's 10 nearest originals by float32 search, the share an 8-bit
    store's search also returns (image queries against the image store)."""
    originals = np.array([item.is_original for item in items])
    exact = np.argsort(-(queries[~originals] @ queries[originals].T), axis=1)[:, :10]
    found = np.argsort(-(queries[~originals] @ held[originals].T), axis=1)[:, :10]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, found, strict=True)]))


if __name__ == "__main__":
    sys.exit(main())
