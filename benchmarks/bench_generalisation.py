"""Generalisation figures of trained runs next to the frozen towers and the perceptual hash.

Evaluates each run on each evaluation set (manifests built as README.md, Generalisation, says)
and prints the Markdown rows of BENCHMARKS.md's Generalisation tables: per evaluation, a row for
the frozen towers, one for the perceptual hash and one per run, with recall@1 of image, text,
fused (image + prompt), i2t and t2i, image triplet accuracy, and the tasks below frozen.

    python benchmarks/bench_generalisation.py \\
        --run "trained default=runs/demo" \\
        --set "heldout-val=data/heldout-val/manifest.csv" \\
        --set "art4apps (heldout family)=data/external-art4apps/manifest.csv"

Each evaluation is written to ``RUN/eval/gen-<set>.json`` (so the run's report shows it) and
reused when it is already there for the same model and data; ``--json-out`` collects them all.
``--versus LABEL`` then compares every other run with that one, query by query (recall@1 hits
from ``RUN/eval/gen-<set>.top5.json``, ties shared as :func:`artsim.eval.metrics.hits_at_k`
shares them): queries won and lost with the exact sign test's p.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import harness
from artsim.data.manifest.manifest import load_manifest
from artsim.eval.evaluate import evaluate_run
from artsim.model.heads import model_id
from artsim.stats import sign_test

TASKS = ("image", "text", "fused", "i2t", "t2i")


def _pair(text: str) -> tuple[str, Path]:
    label, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label.strip(), Path(path.strip())


def _slug(label: str) -> str:
    return "gen-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-").lower()


def evaluate(run: Path, label: str, manifest: Path) -> dict:
    """The run's evaluation on ``manifest`` (reused from RUN/eval when model and data match)."""
    name = _slug(label)
    saved = run / "eval" / f"{name}.json"
    if saved.is_file():
        result = json.loads(saved.read_text(encoding="utf-8"))
        fingerprint = load_manifest(manifest, check_images=False).fingerprint()
        if (
            result.get("model_id") == model_id(run)
            and result.get("data_fingerprint") == fingerprint
        ):
            return result
    return evaluate_run(run, manifest, name=name).to_dict()


def _r1(figures: dict | None) -> str:
    value = (figures or {}).get("recall@1")
    return "–" if value is None else f"{value:.3f}"


def rows(label: str, run_label: str, result: dict, with_baselines: bool) -> list[str]:
    """Markdown rows: frozen and hash (once per evaluation), then the run."""
    counts = result["counts"]
    where = f"{label} ({counts['queries']} queries, {counts['gallery']} originals)"
    out = []
    if with_baselines:
        frozen, phash = result["baselines"]["frozen"], result["baselines"]["phash"]
        trip = (frozen.get("image") or {}).get("triplet_acc")
        out.append(
            f"| {where} | frozen towers | {_r1(frozen.get('image'))} | {_r1(frozen.get('text'))} "
            f"| {_r1(frozen.get('fused'))} | – | – | {trip:.3f} | |"
        )
        trip = (phash.get("image") or {}).get("triplet_acc")
        out.append(
            f"| {where} | perceptual hash | {_r1(phash.get('image'))} | – | – | – | – "
            f"| {trip:.3f} | |"
        )
        copy = (result["baselines"].get("copy") or {}).get("image")
        if copy:  # a model with a copy descriptor: that descriptor alone (e.g. SSCD)
            paired = copy.get("paired") or {}
            versus = (
                f"{run_label} against it: +{paired['wins']}/-{paired['losses']}, "
                f"p {paired['p_value']:.2g}"
                if paired
                else ""
            )
            out.append(
                f"| {where} | copy descriptor alone | {_r1(copy)} | – | – | – | – "
                f"| {copy['triplet_acc']:.3f} | {versus} |"
            )
    tasks = result["tasks"]
    below = ", ".join(result.get("below_frozen") or []) or "none"
    vs = result.get("vs_baselines") or {}
    within = [
        f"{task} within chance (+{vs[task]['wins']} / -{vs[task]['losses']}, "
        f"p {vs[task]['p_value']:.2f})"
        for task in result.get("lower_within_chance") or []
    ]
    if within:
        below = "; ".join([below, *within]) if below != "none" else "; ".join(["none", *within])
    out.append(
        f"| {where} | {run_label} | "
        + " | ".join(_r1(tasks.get(task)) for task in TASKS)
        + f" | {tasks['image']['triplet_acc']:.3f} | {below} |"
    )
    return out


def query_hits(run: Path, label: str) -> dict[str, dict[str, float]]:
    """Per task, each query's recall@1 hit (1, 0, or 1 / (1 + ties) for a tie at the top) from
    the evaluation's per-query top 5."""
    top5 = json.loads((run / "eval" / f"{_slug(label)}.top5.json").read_text(encoding="utf-8"))
    hits: dict[str, dict[str, float]] = {}
    for task, queries in top5["tasks"].items():
        for query in queries:
            top = query["top"]
            correct = [entry["score"] for entry in top if entry["hit"]]
            hit = 0.0
            if correct:
                higher = sum(entry["score"] > correct[0] for entry in top)
                tied = sum(entry["score"] == correct[0] for entry in top) - 1
                hit = 1.0 / (1 + tied) if higher == 0 else 0.0
            hits.setdefault(task, {})[query["query"]] = hit
    return hits


def versus_row(label: str, run_label: str, hits: dict, reference: dict) -> str:
    """``+won/-lost (p)`` per task of a run against the reference run, on the same queries."""
    cells = []
    for task in TASKS:
        mine, theirs = hits.get(task, {}), reference.get(task, {})
        shared = sorted(set(mine) & set(theirs))
        won = sum(mine[q] > theirs[q] for q in shared)
        lost = sum(mine[q] < theirs[q] for q in shared)
        cells.append(f"+{won}/-{lost} (p {sign_test(won, lost):.2g})" if shared else "–")
    return f"| {label} | {run_label} | " + " | ".join(cells) + " |"


def pattern_rows(label: str, run_label: str, result: dict) -> list[str]:
    """Markdown rows of trained vs frozen recall@1 per held-out pattern."""
    out = []
    for pattern, figures in sorted((result.get("by_pattern") or {}).items()):
        cells = []
        for task in ("image", "text", "fused"):
            part = figures.get(task) or {}
            for key in ("trained", "frozen"):
                value = part.get(key)
                cells.append("–" if value is None else f"{value:.3f}")
        n = (figures.get("image") or {}).get("n_queries", "–")
        out.append(f"| {label} | {run_label} | {pattern} | {n} | " + " | ".join(cells) + " |")
    return out


SECTION = "## Generalisation"


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's two runs on its held-out set, every table."""
    return [
        *("--run", f"tiny={kit.run}", "--run", f"tiny fine-tuned={kit.tuned_run}"),
        *("--set", f"heldout={kit.heldout}", "--patterns", "--versus", "tiny"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=_pair, action="append", required=True, help="LABEL=RUN_DIR")
    parser.add_argument("--set", type=_pair, action="append", required=True, help="LABEL=MANIFEST")
    parser.add_argument("--json-out", type=Path, help="also write every result to this file")
    parser.add_argument(
        "--patterns", action="store_true", help="then a table per held-out pattern (each run)"
    )
    parser.add_argument(
        "--versus", help="LABEL of a run: then every other run against it, query by query"
    )
    args = harness.parse_args(parser, argv, quick)
    runs = dict(args.run)
    if args.versus is not None and args.versus not in runs:
        parser.error(f"--versus {args.versus!r}: no --run has that label")
    section = harness.Section(SECTION, args)
    section.line(
        "| evaluation | model | image | text | fused | i2t | t2i | image triplet acc "
        "| below frozen |"
    )
    section.line("|---|---|---:|---:|---:|---:|---:|---:|---|")
    collected = {}
    for set_label, manifest in args.set:
        for position, (run_label, run) in enumerate(args.run):
            result = evaluate(run, set_label, manifest)
            collected[f"{run_label} | {set_label}"] = result
            for row in rows(set_label, run_label, result, with_baselines=position == 0):
                section.line(row)
    if args.patterns:
        section.line()
        section.line(
            "| evaluation | model | pattern | queries | image | frozen image | text "
            "| frozen text | fused | frozen fused |"
        )
        section.line("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for key, result in collected.items():
            run_label, set_label = key.split(" | ", 1)
            for row in pattern_rows(set_label, run_label, result):
                section.line(row)
    if args.versus is not None:
        section.line()
        section.line(f"Queries won / lost against {args.versus} (exact sign test):")
        section.line()
        section.line("| evaluation | model | image | text | fused | i2t | t2i |")
        section.line("|---|---|---:|---:|---:|---:|---:|")
        for set_label, _ in args.set:
            reference = query_hits(runs[args.versus], set_label)
            for run_label, run in args.run:
                if run_label != args.versus:
                    hits = query_hits(run, set_label)
                    section.line(versus_row(set_label, run_label, hits, reference))
    section.finish()
    if args.json_out:
        args.json_out.write_text(json.dumps(collected, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
