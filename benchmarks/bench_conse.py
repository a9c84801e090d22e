"""Cross-modal search through the image tower's ImageNet classifier (the ConSE bridge).

The bridge (:mod:`artsim.model.conse`): the classifier's probabilities of an image's top ``T``
ImageNet classes, renormalised, weigh the frozen e5 vectors of those classes' names; the bridge
vector scores against a text's e5 vector. This prints Markdown rows of recall@1 (the tasks of
``artsim evaluate``: the same queries and gallery, evaluation seed 0) for

- each run as it is (all five tasks);
- the bridge alone (i2t, t2i) for each ``--tops``, name template (the bare name or "a picture of
  a NAME"), e5 prefix of the names (``query: `` as the default text tower, or ``passage: ``) and
  classifier input (``avg``: the old tower's average-pooled features, as the classifier was
  trained; ``gem``: the default GeM descriptor times ``conse.GEM_LOGIT_SCALE``);
- each run with the bridge attached as training attaches it (``ArtSimModel.set_bridge``: image
  vectors ``sqrt(1 - b) * blend + sqrt(b) * [0 | bridge]``, fused vectors without it) for each
  ``--blend-tops`` and each weight ``b``: ``--betas`` as given, ``--ratios`` through the run's
  blend (``conse.bridge_weight_for``: the bridge counts that many times the trained heads in
  image <-> text scores); all five tasks, with the paired count of queries won and lost against
  the run without the bridge and the exact sign test's p.

    python benchmarks/bench_conse.py --run "default, seed 0=runs/s0" \\
        --set "heldout-val=data/heldout/val/manifest.csv" --set "flare=S/flare/manifest.csv"

Features come from the feature cache (``efficientnet-lite0`` for ``avg``; the runs' towers).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch

import harness
from artsim import runfolder
from artsim.data.manifest.manifest import load_manifest
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS
from artsim.eval.embedding import Embedded, embed_items
from artsim.eval.tasks import TASK_SPECS, build_task, retrieval_figures, task_similarity
from artsim.model import conse
from artsim.model.embedder import Embedder
from artsim.model.features import FeatureCache, compute_image_features, compute_text_features
from artsim.model.towers import E5SmallTower, EfficientNetLite0Tower
from artsim.stats import sign_test

TASKS = ("image", "text", "fused", "i2t", "t2i")
TEMPLATES = {"name": "{}", "picture": conse.BRIDGE_TEMPLATE}


def _pair(text: str) -> tuple[str, Path]:
    label, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label.strip(), Path(path.strip())


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def task_hits(task: str, embedded: Embedded, query_rows: list[int]) -> tuple[float, np.ndarray]:
    """recall@1 of a task and, per query, whether its first answer is right."""
    spec = TASK_SPECS[task]
    data = build_task(spec, embedded, query_rows)
    similarity = task_similarity(spec, embedded, data)
    figures = retrieval_figures(task, similarity, data, seed=0)
    hits = data.relevant[np.arange(len(data.queries)), similarity.argmax(axis=1)]
    return figures["recall@1"], hits


def replaced(embedded: Embedded, image: np.ndarray, text: np.ndarray, fused: np.ndarray):
    return Embedded(
        embedded.items,
        embedded.image_features,
        embedded.text_features,
        image,
        text,
        fused,
        embedded.has_text,
        embedded.tuned_image_features,
    )


SECTION = "### ConSE bridge"


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: an untrained run with the bridge's packaged towers on four groups of
    the quick kit's held-out set; 20 classes, few tops and ratios."""
    return [
        *("--run", f"untrained={kit.bridge_run}", "--set", f"heldout={kit.heldout_groups(4)}"),
        *("--classes", "20", "--tops", "1,5", "--ratios", "1", "--betas", "0.1"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=_pair, action="append", default=[], help="LABEL=RUN")
    parser.add_argument("--set", type=_pair, action="append", default=[], help="LABEL=MANIFEST")
    parser.add_argument(
        "--lengths",
        type=_pair,
        action="append",
        default=[],
        help="LABEL=MANIFEST: print the median length of its originals' average-pooled features "
        "(what conse.GEM_LOGIT_SCALE is) and stop",
    )
    parser.add_argument(
        "--set-run", action="append", default=[], help="SET_LABEL=RUN_LABEL: only that run there"
    )
    parser.add_argument("--tops", default="1,3,5,10,20,50", help="T of the bridge-alone rows")
    parser.add_argument("--no-alone", action="store_true", help="skip the bridge-alone rows")
    parser.add_argument("--blend-tops", default="5", help="T of the attached-bridge rows")
    parser.add_argument("--betas", default="", help="bridge weights b (fixed)")
    parser.add_argument(
        "--ratios", default="0.5,1,2,4", help="bridge ratios (b from each run's blend)"
    )
    parser.add_argument(
        "--classes",
        type=int,
        default=1000,
        help="the first N ImageNet classes only (the quick mode's; every class by default)",
    )
    args = harness.parse_args(parser, argv, quick)
    only = dict(pair.split("=", 1) for pair in args.set_run)
    if args.lengths:
        tower = EfficientNetLite0Tower()
        cache = FeatureCache(None, tower.version)
        for label, manifest_path in args.lengths:
            paths = [i.image for i in load_manifest(manifest_path).items if i.is_original]
            lengths = np.linalg.norm(compute_image_features(tower, paths, cache), axis=1)
            print(f"{label}: {len(paths)} originals, median length {np.median(lengths):.2f}")
        return 0
    if not args.run or not args.set:
        parser.error("--run and --set are required (or --lengths)")

    weight, bias = conse.imagenet_classifier()
    names = conse.class_names()
    weight, bias, names = weight[: args.classes], bias[: args.classes], names[: args.classes]
    avg_tower = EfficientNetLite0Tower()
    avg_cache = FeatureCache(None, avg_tower.version)
    name_vectors = {}
    for prefix in ("query", "passage"):
        tower = E5SmallTower(prefix=prefix)
        cache = FeatureCache(None, tower.version)
        for key, template in TEMPLATES.items():
            encode = lambda texts, t=tower, c=cache: compute_text_features(t, texts, c)  # noqa: E731
            name_vectors[prefix, key] = torch.from_numpy(
                conse.name_vectors(encode, names, template)
            )

    section = harness.Section(SECTION, args)
    section.line(
        "| set | model | T | names | e5 prefix | input | b | " + " | ".join(TASKS) + " | vs run |"
    )
    section.line("|---|---|---:|---|---|---|---:|" + "---:|" * len(TASKS) + "---|")
    for set_label, manifest_path in args.set:
        items = load_manifest(manifest_path).items
        groups = {item.group for item in items if item.is_original}
        query_rows = [r for r, i in enumerate(items) if not i.is_original and i.group in groups]
        runs = [(label, run) for label, run in args.run if only.get(set_label, label) == label]
        for position, (run_label, run) in enumerate(runs):
            max_pixels = int(runfolder.read_config(run).get("max_pixels") or DEFAULT_MAX_PIXELS)
            embedder = Embedder.from_run(run)
            embedded = embed_items(embedder, items, max_pixels)
            base = {task: task_hits(task, embedded, query_rows) for task in TASKS}
            cells = [base[task][0] for task in TASKS]
            section.line(_row(set_label, run_label, "", "", "", "", "", cells, ""))
            text_unit = _unit(embedded.text_features) * embedded.has_text[:, None]
            inputs = {"gem": torch.from_numpy(_unit(embedded.image_features)), "avg": None}
            if position == 0 and not args.no_alone:  # the bridge alone does not depend on the run
                paths = [item.image for item in items]
                avg = compute_image_features(avg_tower, paths, avg_cache, max_pixels=max_pixels)
                inputs["avg"] = torch.from_numpy(avg)
                scales = {"avg": 1.0, "gem": conse.GEM_LOGIT_SCALE}
                for top, key, prefix, source in itertools.product(
                    [int(t) for t in args.tops.split(",")],
                    TEMPLATES,
                    ("query", "passage"),
                    ("avg", "gem"),
                ):
                    vectors = conse.bridge_vectors(
                        inputs[source], weight, bias, name_vectors[prefix, key], top, scales[source]
                    ).numpy()
                    alone = replaced(embedded, vectors, text_unit, vectors)
                    cells = ["", "", ""] + [
                        task_hits(task, alone, query_rows)[0] for task in ("i2t", "t2i")
                    ]
                    section.line(
                        _row(set_label, "bridge alone", top, key, prefix, source, "", cells, "")
                    )
            model = embedder.model
            if not model.config.blended:
                continue
            config = model.config
            weights = [(f"{float(b):g}", float(b)) for b in args.betas.split(",") if b]
            for ratio in (float(r) for r in args.ratios.split(",") if r):
                beta = conse.bridge_weight_for(ratio, config.image_blend, config.text_blend)
                weights.append((f"ratio {ratio:g}: {beta:.2g}", beta))
            for top, (shown, beta) in itertools.product(
                [int(t) for t in args.blend_tops.split(",")], weights
            ):
                model.set_bridge(
                    weight,
                    bias,
                    name_vectors["query", "picture"],
                    weight=beta,
                    top=top,
                    scale=conse.GEM_LOGIT_SCALE,
                )
                image = embedder.project_image_features(
                    embedded.image_features, embedded.tuned_image_features
                )
                fused = embedder.fuse(image, embedded.text, embedded.has_text)
                bridged = replaced(embedded, image, embedded.text, fused)
                cells, versus = [], []
                for task in TASKS:
                    value, hits = task_hits(task, bridged, query_rows)
                    cells.append(value)
                    won = int((hits & ~base[task][1]).sum())
                    lost = int((~hits & base[task][1]).sum())
                    if won or lost:
                        versus.append(f"{task} +{won}/-{lost} p {sign_test(won, lost):.2f}")
                label = f"{run_label} + bridge"
                section.line(
                    _row(set_label, label, top, "picture", "query", "gem", shown, cells, versus)
                )
    section.finish()
    return 0


def _row(set_label, model, top, names, prefix, source, beta, cells, versus) -> str:
    values = " | ".join(c if isinstance(c, str) else f"{c:.3f}" for c in cells)
    versus = "; ".join(versus) if isinstance(versus, list) else versus
    return (
        f"| {set_label} | {model} | {top} | {names} | {prefix} | {source} | {beta} | {values} "
        f"| {versus} |"
    )


if __name__ == "__main__":
    sys.exit(main())
