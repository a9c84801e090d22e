"""Image recall@1 of a fine-tuned run's parts, next to the frozen tower's, on evaluation sets.

For each run and set (items embedded as ``artsim evaluate`` embeds them, features from the
cache), the image task's recall@1 (a derivative finds its original among all originals) of:

- ``frozen``: the packaged tower's descriptor, raw cosine (the evaluation's frozen baseline);
- ``tuned``: the run's fine-tuned tower's descriptor, raw cosine (``–`` without one);
- ``head``: the trained image head alone (on the fine-tuned features where the run has them);
- ``model``: the run's image vectors (blend, whitened frozen part and bridge: the evaluation's
  image figure);
- ``old path``: the same model as it embedded before the frozen part and the bridge were kept
  on the packaged tower (everything on the fine-tuned features; ``–`` without one);
- ``frozen whitened``: the model's frozen part alone (the packaged descriptor, PCA-whitened on
  the training originals);
- ``tuned whitened``: the fine-tuned descriptor whitened the same way on its own features of the
  run's training originals (``–`` without a fine-tuned tower or a whitening).

Then, per run with a fine-tuned tower, its descriptor against the frozen one query by query
(first answer right or not), raw and whitened: queries won and lost, exact two-sided sign test.

    python benchmarks/bench_finetune.py --run "default=runs/s0" --run "tuned=runs/ft" \\
        --set "flare=data/external-flare/manifest.csv"
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import harness
from artsim import runfolder
from artsim.data.manifest.manifest import load_manifest
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS
from artsim.eval.embedding import embed_items, normalise_rows
from artsim.eval.tasks import TASK_SPECS, build_task, retrieval_figures, task_similarity
from artsim.model.blend import fit_whitening, whiten
from artsim.model.embedder import Embedder
from artsim.stats import sign_test

COLUMNS = ("frozen", "tuned", "head", "model", "old path", "frozen whitened", "tuned whitened")


def _pair(text: str) -> tuple[str, Path]:
    label, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label.strip(), Path(path.strip())


def image_recalls(run: Path, manifest: Path) -> dict[str, float | None]:
    """recall@1 of the image task for each of :data:`COLUMNS` (None where it does not apply),
    and under ``"hits"`` each column's per-query first-answer hits (None where it does not)."""
    config = runfolder.read_config(run)
    max_pixels = int(config.get("max_pixels") or DEFAULT_MAX_PIXELS)
    embedder = Embedder.from_run(run, cache_dir=config.get("cache_dir"), device="cpu")
    items = load_manifest(manifest, max_pixels=max_pixels).items
    embedded = embed_items(embedder, items, max_pixels)
    groups = {item.group for item in items if item.is_original}
    queries = [r for r, item in enumerate(items) if not item.is_original and item.group in groups]
    spec = TASK_SPECS["image"]
    data = build_task(spec, embedded, queries)
    frozen, tuned = embedded.image_features, embedded.tuned_image_features
    model = embedder.model
    with torch.no_grad():
        head = model.embed_image(torch.from_numpy(frozen if tuned is None else tuned)).numpy()
        old = None if tuned is None else model.infer_image(torch.from_numpy(tuned)).numpy()
    frozen_whitened = tuned_whitened = None
    if model.config.whiten_dim:
        with torch.no_grad():
            frozen_whitened = model.frozen_image(torch.from_numpy(frozen)).numpy()
        if tuned is not None:
            tuned_whitened = _tuned_whitening(run, embedder, max_pixels)(tuned)
    spaces = {
        "frozen": normalise_rows(frozen),
        "tuned": None if tuned is None else normalise_rows(tuned),
        "head": head,
        "model": embedded.image,
        "old path": old,
        "frozen whitened": frozen_whitened,
        "tuned whitened": tuned_whitened,
    }
    out: dict = {"hits": {}}
    for column, space in spaces.items():
        if space is None:
            out[column] = out["hits"][column] = None
            continue
        similarity = task_similarity(spec, replace(embedded, image=space), data)
        out[column] = retrieval_figures("image", similarity, data, seed=0)["recall@1"]
        rows = np.arange(len(data.queries))
        out["hits"][column] = data.relevant[rows, similarity.argmax(axis=1)]
    return out


def _tuned_whitening(run: Path, embedder: Embedder, max_pixels: int):
    """The run's whitening refitted on its fine-tuned tower's features of its training originals."""
    training = load_manifest(runfolder.training_manifest(run), max_pixels=max_pixels)
    sides = runfolder.read_split_ids(run)
    paths = [i.image for i in training.items if i.is_original and sides.get(i.id) == "train"]
    features = embedder.tuned_image_features(paths, max_pixels)
    dim = embedder.model.config.whiten_dim
    mean, projection = fit_whitening(features, dim)
    projection = np.pad(projection, ((0, 0), (0, dim - projection.shape[1])))
    mean_t, projection_t = torch.from_numpy(mean), torch.from_numpy(projection)
    return lambda x: whiten(
        torch.from_numpy(np.asarray(x, np.float32)), mean_t, projection_t
    ).numpy()


def versus_frozen(recalls: dict, whitened: bool = False) -> str | None:
    """``+won/-lost (p)`` of the fine-tuned descriptor against the frozen one (raw, or both
    whitened), or None."""
    suffix = " whitened" if whitened else ""
    tuned, frozen = recalls["hits"][f"tuned{suffix}"], recalls["hits"][f"frozen{suffix}"]
    if tuned is None or frozen is None:
        return None
    won, lost = int(np.sum(tuned & ~frozen)), int(np.sum(frozen & ~tuned))
    return f"+{won}/-{lost} (p {sign_test(won, lost):.2g})"


SECTION = "### Image recall of a fine-tuned run's parts"


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's plain and fine-tuned runs on its held-out set."""
    return [
        *("--run", f"tiny={kit.run}", "--run", f"tiny fine-tuned={kit.tuned_run}"),
        *("--set", f"heldout={kit.heldout}"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=_pair, action="append", required=True, help="LABEL=RUN_DIR")
    parser.add_argument("--set", type=_pair, action="append", required=True, help="LABEL=MANIFEST")
    args = harness.parse_args(parser, argv, quick)
    section = harness.Section(SECTION, args)
    section.line("| evaluation | model | " + " | ".join(COLUMNS) + " |")
    section.line("|---|---|" + "---:|" * len(COLUMNS))
    versus = []
    for set_label, manifest in args.set:
        for run_label, run in args.run:
            recalls = image_recalls(run, manifest)
            cells = ["–" if recalls[c] is None else f"{recalls[c]:.3f}" for c in COLUMNS]
            section.line(f"| {set_label} | {run_label} | " + " | ".join(cells) + " |")
            if versus_frozen(recalls) is not None:
                whitened = versus_frozen(recalls, whitened=True) or "–"
                versus.append(
                    f"| {set_label} | {run_label} | {versus_frozen(recalls)} | {whitened} |"
                )
    if versus:
        section.line("\n| evaluation | model | fine-tuned against frozen, raw | both whitened |")
        section.line("|---|---|---:|---:|")
        section.line("\n".join(versus))
    section.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
