"""Verdicts on a collection, calibrated automatically on that collection: how often wrong.

Half of a collection's groups are indexed (a stable hash of the group decides). The index is
calibrated as ``artsim calibrate`` does (``artsim.index.calibrate``, seed 0). Then fresh
derivatives (evaluation-only family, seed 1) of ``--queries`` groups of EACH half are searched:
those of the other half have no original in the index and must rarely be called derived.

For the trained model the path is the product's (index, ``calibrate_index``, ``search_index``,
image-only and image + prompt queries). The frozen image tower and the perceptual hash get the
same protocol in numpy: thresholds fitted on the same calibration queries (the same drawn groups,
the same derivatives, each a match and, without its own group, a distractor), with the query's
background taken off the scores where that recalls more of them (as the product decides image
searches), then measured on the same test queries.

Per scorer: the share of queries with no indexed original called derived (or copy) at the 1%
calibrated rate, with its 95% interval; the indexed half's recall there (top-1 is the original
and called derived or copy); µAP and recall at precision 0.90 of the top-10 predictions pooled
(ISC protocol: the distractor queries' predictions kept).

Every false "derived" is listed in result.json (query, the original it came from, the indexed
original it was matched with, the score). Some collections hold the same picture under several
names (art4apps: "bike", "bicycle" and "pedal" are one drawing recoloured): a derivative of the
unindexed "bike" found as the indexed "bicycle" is rightly called derived. ``--same-work FILE``
(CSV ``original,hit,same_work``, each listed pair checked by eye) reports, beside the share as
labelled, the share left once hits on the same work under another name are set apart.

    python benchmarks/bench_calibration.py --run runs/demo \\
        --originals data/demo/manifest.csv --name demo --out /tmp/bench-calibration
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

import harness
from artsim.data.families.heldout.derive import derive_heldout_manifest
from artsim.data.manifest.manifest import Manifest, load_manifest
from artsim.eval.embedding import hamming_similarity, phash_bits
from artsim.index.build import add_items
from artsim.index.calibrate import (
    DEFAULT_SAMPLE,
    _draw_groups,
    calibrate_index,
    derivatives_per_original,
)
from artsim.index.catalog import ArtIndex, IndexInfo
from artsim.index.faiss_store import FaissStore
from artsim.index.query import search_index
from artsim.index.storage import DEFAULT_INT8_FROM
from artsim.model.embedder import Embedder
from artsim.verdicts.grades import BACKGROUND_RANK, BACKGROUND_WEIGHT, OpenSetCalibration, fit_task
from artsim.verdicts.openset import (
    binomial_interval,
    gallery_halves,
    isc_from_predictions,
)

FLAGGED = ("derived", "copy")


def read_same_work(path: Path | None) -> dict[tuple[str, str], bool]:
    """``{(original, hit): same work?}`` from a CSV ``original,hit,same_work`` (yes/no), both
    orders."""
    if path is None:
        return {}
    verdicts = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            same = row["same_work"].strip().lower() == "yes"
            verdicts[(row["original"], row["hit"])] = verdicts[(row["hit"], row["original"])] = same
    return verdicts


def _figures(
    top1_ok_in, flagged_in, flagged_out, scores, matches, n_in, same_work, decisions
) -> dict:
    """``flagged_out``: per distractor query, None or the flagged ``(query, original, hit,
    score)``; ``decisions``: the scores as the verdict weighs them (minus the query's background
    where the task is normalised), for the ISC figures across queries."""
    n_out = len(flagged_out)
    false_pairs = [pair for pair in flagged_out if pair is not None]
    false = len(false_pairs)
    low, high = binomial_interval(false, n_out)
    isc = isc_from_predictions(np.concatenate(scores), np.concatenate(matches), n_in)
    decided = isc_from_predictions(np.concatenate(decisions), np.concatenate(matches), n_in)
    unchecked = [p for p in false_pairs if (p["original"], p["hit"]) not in same_work]
    other_work = [p for p in false_pairs if not same_work.get((p["original"], p["hit"]), False)]
    other_low, other_high = binomial_interval(len(other_work), n_out)
    return {
        "false_derived": false / n_out,
        "false_derived_interval": [low, high],
        "false_derived_pairs": false_pairs,
        "false_derived_other_work": len(other_work) / n_out,
        "false_derived_other_work_interval": [other_low, other_high],
        "pairs_not_checked": len(unchecked),
        "n_distractor_queries": n_out,
        "recall": float(np.mean(np.asarray(top1_ok_in) & np.asarray(flagged_in))),
        "n_indexed_queries": n_in,
        "micro_ap": isc["micro_ap"],
        "recall_at_precision_0.9": isc["at_precision_0.9"]["recall"],
        "micro_ap_decision": decided["micro_ap"],
        "recall_at_precision_0.9_decision": decided["at_precision_0.9"]["recall"],
    }


def _flag(query, originals_of, hit: str, score: float) -> dict:
    return {
        "query": query.id,
        "original": originals_of.get(query.group, query.group),
        "hit": hit,
        "score": round(float(score), 6),
    }


def trained(
    index: ArtIndex,
    embedder: Embedder,
    queries,
    indexed_groups,
    task: str,
    originals_of,
    same,
    category_of,
) -> dict:
    top1_ok, flagged_in, flagged_out, scores, matches, decisions = [], [], [], [], [], []
    grades: dict[str, dict[str, int]] = {}  # distractor queries: grade of the first result
    plain_threshold = None
    for query in queries:
        picture = Image.open(query.image).convert("RGB")
        text = query.text if task == "fused" else None
        response = search_index(index, embedder, image=picture, text=text, k=10)
        groups = [r.group for r in response.results]
        scores.append(np.array([r.score for r in response.results]))
        matches.append(np.array([g == query.group for g in groups]))
        if plain_threshold is None:
            plain_threshold = response.calibration.open_set.tasks[response.task].threshold(0.01)
        derived = response.derived_threshold
        shift = 0.0 if derived is None else derived - plain_threshold
        decisions.append(scores[-1] - shift)
        top = response.results[0]
        flagged = top.verdict in FLAGGED
        if query.group in indexed_groups:
            top1_ok.append(groups[0] == query.group)
            flagged_in.append(flagged)
        else:
            flagged_out.append(_flag(query, originals_of, top.id, top.score) if flagged else None)
            # "related" should mean same subject: does the hit share the query's category?
            counts = grades.setdefault(top.verdict, {"n": 0, "same_category": 0})
            counts["n"] += 1
            own = category_of.get(originals_of.get(query.group, ""))
            counts["same_category"] += int(own is not None and category_of.get(top.id) == own)
    out = _figures(top1_ok, flagged_in, flagged_out, scores, matches, len(top1_ok), same, decisions)
    out["distractor_grades"] = grades
    return out


def _background(similarity: np.ndarray) -> np.ndarray:
    """Each row's score at ``BACKGROUND_RANK`` (1 = best)."""
    return -np.sort(-similarity, axis=1)[:, BACKGROUND_RANK - 1]


def _recall(task) -> float:
    return float(task.thresholds["0.01"]["recall"])


def baseline(
    similarity_of, gallery, calib, test, indexed_groups, originals_of, same, confidence=None
) -> dict:
    """Fit the 1% threshold on the calibration queries as ``calibrate_index`` does (each query a
    match against the whole indexed half and a distractor against it without its own group; the
    same ``confidence``),
    then measure on the test queries against the whole indexed half."""
    sim = similarity_of([q.image for q in calib], [item.image for item in gallery])
    best = sim.argmax(axis=1)
    top1 = sim[np.arange(len(calib)), best]
    correct = np.array([gallery[b].group == q.group for b, q in zip(best, calib, strict=True)])
    own = np.array([[item.group == q.group for item in gallery] for q in calib])
    without_own = np.where(own, -np.inf, sim)
    away = without_own.max(axis=1)
    # decided as the product decides image searches: minus the query's background score where
    # that recalls more of the calibration queries at the rate
    plain = fit_task(top1, correct, away, confidence=confidence)
    normalised = fit_task(
        top1 - BACKGROUND_WEIGHT * _background(sim),
        correct,
        away - BACKGROUND_WEIGHT * _background(without_own),
        confidence=confidence,
    )
    weight = BACKGROUND_WEIGHT if _recall(normalised) > _recall(plain) else 0.0
    threshold = (normalised if weight else plain).threshold(0.01)
    sim = similarity_of([q.image for q in test], [item.image for item in gallery])
    order = np.argsort(-sim, axis=1, kind="stable")[:, :10]
    shift = weight * _background(sim)
    top1_ok, flagged_in, flagged_out, scores, matches, decisions = [], [], [], [], [], []
    for row, query in enumerate(test):
        groups = [gallery[k].group for k in order[row]]
        scores.append(sim[row, order[row]])
        decisions.append(scores[-1] - shift[row])
        matches.append(np.array([g == query.group for g in groups]))
        best = order[row][0]
        flagged = sim[row, best] - shift[row] >= threshold
        if query.group in indexed_groups:
            top1_ok.append(groups[0] == query.group)
            flagged_in.append(flagged)
        else:
            hit = gallery[best].id
            flagged_out.append(_flag(query, originals_of, hit, sim[row, best]) if flagged else None)
    out = _figures(top1_ok, flagged_in, flagged_out, scores, matches, len(top1_ok), same, decisions)
    out["threshold"] = threshold
    out["background_normalised"] = bool(weight)
    return out


SECTION = "### Calibration as it ships"
SAME_WORK = Path(__file__).parent / "same_work"


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's run and corpus, a few queries and a small sample."""
    return [
        *("--run", str(kit.run), "--originals", str(kit.manifest), "--name", "quick"),
        *("--out", str(kit.folder / "calibration"), "--queries", "6", "--sample", "12"),
        *("--same-work", str(SAME_WORK / "demo.csv")),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--originals", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=150, help="groups per half queried")
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE)
    parser.add_argument(
        "--confidence", type=float, help="rates bounded with this confidence, not on average"
    )
    parser.add_argument(
        "--same-work", type=Path, help="CSV original,hit,same_work of pairs checked by eye"
    )
    parser.add_argument(
        "--whole-pictures",
        action="store_true",
        help="calibrate (and so search) image queries on the whole picture only, without the "
        "model's query crops",
    )
    parser.add_argument(
        "--calibration-from",
        type=Path,
        help="an index folder of another collection (same model) whose calibration this index "
        "takes instead of calibrating itself: does a calibration transfer across sources?",
    )
    parser.add_argument(
        "--int8-from",
        type=int,
        default=DEFAULT_INT8_FROM,
        help="the store holds a modality's vectors in 8 bits from this many (1: always; "
        "artsim.index.storage)",
    )
    args = harness.parse_args(parser, argv, quick)
    started = time.perf_counter()
    work = args.out / args.name
    work.mkdir(parents=True, exist_ok=True)
    originals = load_manifest(args.originals).originals()
    same = read_same_work(args.same_work)
    category_of = {
        item.id: item.metadata["category"] for item in originals if item.metadata.get("category")
    }
    originals_of = {}
    for item in originals:
        originals_of.setdefault(item.group, item.id)  # the group's first original
    halves = gallery_halves([item.group for item in originals])
    indexed = [item for item, half in zip(originals, halves, strict=True) if half == 0]
    indexed_groups = {item.group for item in indexed}
    embedder = Embedder.from_run(args.run)

    folder = work / "index"
    if not (folder / "index.json").is_file():
        store = FaissStore.create(folder, embedder.dim, int8_from=args.int8_from)
        info = IndexInfo(embedder.model_id, str(args.run.resolve()), embedder.dim)
        info.write(folder)
        index = ArtIndex(folder, info, store)
        add_items(index, indexed, embedder)
        index.close()
    index = ArtIndex.open(folder)
    t0 = time.perf_counter()
    if args.calibration_from is not None:
        # another collection's calibration, as a user who calibrated elsewhere would carry it
        source = IndexInfo.read(args.calibration_from)
        if source.model_id != embedder.model_id or not source.calibration:
            raise SystemExit(
                f"{args.calibration_from}: no calibration of model {embedder.model_id}"
            )
        with index.write_lock():
            info = replace(IndexInfo.read(index.path), calibration=source.calibration)
            info.write(index.path)
        index.info = info
        calibration = OpenSetCalibration.from_json(source.calibration)
    else:
        calibration = calibrate_index(
            index,
            embedder,
            sample=args.sample,
            seed=0,
            confidence=args.confidence,
            query_crops=not args.whole_pictures,
        )
    calibrate_seconds = time.perf_counter() - t0

    rng = np.random.default_rng(5)
    query_groups = set()
    for side in (0, 1):
        groups = sorted(
            {item.group for item, h in zip(originals, halves, strict=True) if h == side}
        )
        picked = rng.permutation(len(groups))[: args.queries]
        query_groups |= {groups[i] for i in picked.tolist()}
    chosen = Manifest(path=work / "o.csv", items=originals)
    test = load_manifest(
        derive_heldout_manifest(chosen, work / "test", per_original=1, seed=1, groups=query_groups)
    ).generated()
    result = {
        "collection": str(args.originals),
        "run": str(args.run),
        "originals": len(originals),
        "indexed": len(indexed),
        "calibration": calibration.about,
        "calibrate_seconds": round(calibrate_seconds, 1),
        "trained": {
            task: trained(
                index, embedder, test, indexed_groups, task, originals_of, same, category_of
            )
            for task in ("image", "fused")
        },
    }
    index.close()

    # the same calibration queries for the baselines
    drawn_groups = _draw_groups(indexed, args.sample, 0)
    drawn = Manifest(path=work / "d.csv", items=[i for i in indexed if i.group in drawn_groups])
    calib = load_manifest(
        derive_heldout_manifest(
            drawn,
            work / "calib",
            per_original=derivatives_per_original(args.sample, len(drawn.items)),
            seed=0,
        )
    ).generated()

    copy_dim = embedder.model.config.copy_feature_dim

    def raw(part: str):
        """Cosines of the raw tower features: the content tower's (frozen) or the copy tower's."""

        def similarity(queries, gallery):
            a = embedder.image_features([str(p) for p in queries], 50_000_000)
            b = embedder.image_features([str(p) for p in gallery], 50_000_000)
            end = a.shape[1] - copy_dim
            a, b = (x[:, :end] if part == "content" else x[:, end:] for x in (a, b))
            a /= np.linalg.norm(a, axis=1, keepdims=True)
            b /= np.linalg.norm(b, axis=1, keepdims=True)
            return a @ b.T

        return similarity

    def model_part(names: tuple[str, ...]):
        """Cosines of parts of the model's image vectors (the copy score, the content score)."""
        slices = embedder.model.part_slices()

        def similarity(queries, gallery):
            a, b = (
                embedder.embed_images([str(p) for p in paths], 50_000_000)
                for paths in (queries, gallery)
            )
            a, b = (np.concatenate([x[:, slices[n]] for n in names], axis=1) for x in (a, b))
            a /= np.linalg.norm(a, axis=1, keepdims=True)
            b /= np.linalg.norm(b, axis=1, keepdims=True)
            return a @ b.T

        return similarity

    frozen = raw("content")

    def phash(queries, gallery):
        return hamming_similarity(phash_bits(queries, 50_000_000), phash_bits(gallery, 50_000_000))

    common = (calib, test, indexed_groups, originals_of, same, args.confidence)
    result["frozen_image"] = baseline(frozen, indexed, *common)
    result["phash"] = baseline(phash, indexed, *common)
    if copy_dim:
        result["copy_score"] = baseline(model_part(("copy",)), indexed, *common)
        result["content_score"] = baseline(model_part(("trained", "content")), indexed, *common)
        result["copy_alone"] = baseline(raw("copy"), indexed, *common)
    result["seconds"] = round(time.perf_counter() - started, 1)
    (work / "result.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    rows = [
        ("trained, image", result["trained"]["image"]),
        ("trained, image + prompt", result["trained"]["fused"]),
        ("frozen image tower", result["frozen_image"]),
        ("perceptual hash", result["phash"]),
    ]
    if copy_dim:
        rows += [
            ("the model's copy score alone", result["copy_score"]),
            ("the model's content score alone", result["content_score"]),
            ("copy tower alone (raw SSCD)", result["copy_alone"]),
        ]
    section = harness.Section(SECTION, args)
    section.line(
        "| collection | scorer | false derived at 1% (95% interval) | false derived, other work "
        "| recall at 1% | µAP | recall at P 0.90 | µAP, decision scores "
        "| recall at P 0.90, decision scores |"
    )
    section.line("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    flagged = []
    for label, figures in rows:
        low, high = figures["false_derived_interval"]
        other_low, other_high = figures["false_derived_other_work_interval"]
        section.line(
            f"| {args.name} | {label} | {figures['false_derived']:.3f} ({low:.3f}-{high:.3f}) | "
            f"{figures['false_derived_other_work']:.3f} ({other_low:.3f}-{other_high:.3f}) | "
            f"{figures['recall']:.3f} | {figures['micro_ap']:.3f} | "
            f"{figures['recall_at_precision_0.9']:.3f} | {figures['micro_ap_decision']:.3f} | "
            f"{figures['recall_at_precision_0.9_decision']:.3f} |"
        )
        for pair in figures["false_derived_pairs"]:
            verdict = same.get((pair["original"], pair["hit"]))
            mark = "not checked" if verdict is None else ("same work" if verdict else "other")
            flagged.append(
                f"- {label}: {pair['original']} -> {pair['hit']} {pair['score']:.3f} ({mark})"
            )
    if flagged:
        section.line("\nFalse derived verdicts (original of the query -> indexed hit, score):\n")
        section.line("\n".join(flagged))
    section.line()
    for task, figures in result["trained"].items():
        shown = ", ".join(
            f"{grade} {c['n']} ({c['same_category']} same category)"
            for grade, c in sorted(figures["distractor_grades"].items())
        )
        section.line(f"Distractor queries, trained {task}, first result graded: {shown}.")
    section.line(f"\nCalibration {calibrate_seconds:.0f} s, total {result['seconds']:.0f} s.")
    section.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
