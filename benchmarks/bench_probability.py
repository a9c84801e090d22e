"""Are the page's probabilities calibrated? Expected calibration error on fresh queries.

A copy of an index is calibrated as ``artsim calibrate`` does it (seed 0); then *fresh* queries
(derivatives of the evaluation-only family drawn with another seed: other groups, other
transforms, never seen by the fit) are searched as the service searches them, twice each: against
the whole index (their original is there) and against the index without their own group (it is
not: even odds that the original is indexed, as the probability is stated). Every result of
ranks 1-10 of both searches gives (stated probability, whether it is the query's original); the
expected calibration error is measured over ten equal-width bins, overall and for rank 1, rank 2
and ranks 3-10, with the best-result table at every rank (what the page showed before) beside it.
A reliability diagram is written too.

    .venv/bin/python benchmarks/bench_probability.py --index runs/demo/index --name demo
    .venv/bin/python benchmarks/bench_probability.py --index idx/art4apps --name art4apps
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

import harness
from artsim.data.families.heldout.derive import derive_heldout_manifest
from artsim.data.manifest.manifest import Manifest, load_manifest
from artsim.index.calibrate import (
    _draw_groups,
    _originals,
    calibrate_index,
    derivatives_per_original,
)
from artsim.index.catalog import ArtIndex
from artsim.verdicts.grades import PROBABILITY_DEPTH
from artsim.verdicts.openset import isotonic_probability, reliability

RESULTS = Path(__file__).parent / "results" / "probability"
BUCKETS = {"rank 1": (1, 1), "rank 2": (2, 2), "ranks 3-10": (3, PROBABILITY_DEPTH)}


def fresh_queries(index: ArtIndex, embedder, sample: int, seed: int, folder: Path):
    """Derivatives of ``sample`` groups drawn with ``seed``, embedded: (queries, image, fused)."""
    originals = _originals(index)
    drawn = [item for item in originals if item.group in _draw_groups(originals, sample, seed)]
    derived = derive_heldout_manifest(
        Manifest(path=folder / "originals.csv", items=drawn),
        folder / "fresh",
        per_original=derivatives_per_original(sample, len(drawn)),
        seed=seed,
    )
    queries = load_manifest(derived, check_images=False).generated()
    image = embedder.embed_images([query.image for query in queries])
    texts = [query.text or " " for query in queries]
    text = embedder.embed_texts(texts)
    fused = embedder.fuse(image, text, np.array([bool(q.text.strip()) for q in queries]))
    return queries, {"image": image, "fused": fused}


def outcomes(index: ArtIndex, calibration, task: str, queries, vectors):
    """(rank, stated probability, best-result table's probability, is the original, weight)
    per result of ranks 1-10 of each query's two searches."""
    table = calibration.tasks[task]
    group_of = {record.id: record.group for record in index.store.get(index.store.ids()).values()}
    sizes: dict[str, int] = {}
    for group in group_of.values():
        sizes[group] = sizes.get(group, 0) + 1
    depth = PROBABILITY_DEPTH + max(sizes.values())
    rows = []
    hits = index.store.search(task, vectors, depth)
    for hit, query in zip(hits, queries, strict=True):
        pairs = list(zip(hit.ids, hit.scores, strict=True))
        away = [(i, s) for i, s in pairs if group_of[i] != query.group]
        for listed in (pairs[:PROBABILITY_DEPTH], away[:PROBABILITY_DEPTH]):
            rank = table.background_rank
            background = listed[rank - 1][1] if table.normalised and len(listed) >= rank else 0.0
            shift = table.background_weight * background if table.normalised else 0.0
            for place, (item_id, score) in enumerate(listed, start=1):
                decision = score - shift
                rows.append(
                    (
                        place,
                        table.probability_at(decision, place),
                        isotonic_probability(table.probability, decision),
                        group_of[item_id] == query.group,
                    )
                )
    return rows


def measure(rows) -> dict:
    figures = {}
    for name, (low, high) in {"all ranks": (1, PROBABILITY_DEPTH), **BUCKETS}.items():
        kept = [row for row in rows if low <= row[0] <= high]
        truth = [row[3] for row in kept]
        figures[name] = {
            "n": len(kept),
            "share_original": float(np.mean(truth)) if kept else None,
            "per_rank": reliability([row[1] for row in kept], truth),
            "best_result_table": reliability([row[2] for row in kept], truth),
        }
    return figures


def diagram(figures: dict, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], ":", color="#999999", label="perfect")
    for name, style in (("all ranks", "o-"), ("rank 1", "s--"), ("ranks 3-10", "^--")):
        bins = figures[name]["per_rank"]["bins"]
        axis.plot(
            [b["stated"] for b in bins],
            [b["observed"] for b in bins],
            style,
            label=f"{name} (ECE {figures[name]['per_rank']['ece']:.3f})",
        )
    bins = figures["all ranks"]["best_result_table"]["bins"]
    axis.plot(
        [b["stated"] for b in bins],
        [b["observed"] for b in bins],
        "x:",
        color="#cc3333",
        label=f"best-result table at every rank (ECE {figures['all ranks']['best_result_table']['ece']:.3f})",
    )
    axis.set_xlabel("stated probability")
    axis.set_ylabel("share that was the query's original")
    axis.set_title(title)
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


SECTION = "### Probabilities per rank"
TASK_NAMES = {"image": "image", "fused": "image + prompt"}


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's index, a small sample, results beside the kit."""
    return [
        *("--index", str(kit.index), "--name", "quick", "--sample", "12"),
        *("--results", str(kit.folder / "probability")),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--fresh-seed", type=int, default=1)
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where the diagrams and the JSON go"
    )
    args = harness.parse_args(parser, argv, quick)
    args.results.mkdir(parents=True, exist_ok=True)
    section = harness.Section(SECTION, args)
    section.line(
        "| collection, search | results | ECE, all ranks | rank 1 | rank 2 | ranks 3-10 "
        "| best-result table everywhere (all / rank 2) |"
    )
    section.line("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench-probability-") as scratch:
        copy = Path(scratch) / "index"
        shutil.copytree(args.index, copy, ignore=shutil.ignore_patterns("write.lock"))
        index = ArtIndex.open(copy)
        embedder = index.load_embedder(args.run or index.info.run)
        calibration = calibrate_index(index, embedder, sample=args.sample, seed=0)
        queries, vectors = fresh_queries(
            index, embedder, args.sample, args.fresh_seed, Path(scratch)
        )
        report = {"index": str(args.index), "fresh_queries": len(queries), "tasks": {}}
        for task in ("image", "fused"):
            if task not in calibration.tasks:
                continue
            figures = measure(outcomes(index, calibration, task, queries, vectors[task]))
            report["tasks"][task] = figures
            picture = args.results / f"{args.name}-{task}.png"
            diagram(figures, f"{args.name}, {task} search", picture)
            ece = {name: figure["per_rank"]["ece"] for name, figure in figures.items()}
            table = {name: figure["best_result_table"]["ece"] for name, figure in figures.items()}
            section.line(
                f"| {args.name}, {TASK_NAMES[task]} | {figures['all ranks']['n']} "
                f"| {ece['all ranks']:.3f} | {ece['rank 1']:.3f} | {ece['rank 2']:.3f} "
                f"| {ece['ranks 3-10']:.3f} | {table['all ranks']:.3f} / {table['rank 2']:.3f} |"
            )
        index.close()
    (args.results / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    section.line(
        f"\n{len(queries)} fresh queries; reliability diagrams and the figures bin by bin "
        f"(share of originals included): `{args.results}/{args.name}-*.png`, `{args.name}.json`."
    )
    section.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
