"""Match maps: the pointing game on the held-out family's boxes, and what a map costs.

    python benchmarks/bench_match_maps.py --run runs/copy \\
        --set art4apps-heldout=data/art4apps-heldout/manifest.csv [--per-pattern 40] \\
        [--method crops] [--part copy] [--scales 0.5 --steps 3] [--threads 2]

For each derived picture A whose recorded ``box`` (where the held-out family put the original's
pixels; :mod:`artsim.data.families.heldout.derive`) leaves part of it out, the map of A against its
original B (:func:`artsim.model.explain.match_map`) points at its peak; a hit is a peak inside the
box. Baselines: the centre of A, and a uniformly random point (seeded). Rows per pattern group, with
the exact sign test of the map against each baseline over the same pairs; ``B`` rows play the same
game on the original where A shows only part of it (``source_box``: crops, mosaic cells). Timing:
seconds per pair of the map alone (both pictures already decoded), on ``--threads`` threads, the
median and the 90th percentile; the load average before and after says what else ran.

Manifests made before boxes were recorded have none: derive the set again (``artsim data derive
--family heldout``, same seed: the same pictures, now with boxes).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np
import torch

import harness
from artsim.data.manifest.manifest import load_manifest
from artsim.eval.pointing import POINTING_PATTERNS, play, pointing_pairs, pointing_table
from artsim.model.embedder import Embedder
from artsim.model.explain import (
    DEFAULT_CROPS,
    DEFAULT_OCCLUSION,
    METHODS,
    WindowGrid,
    default_part,
    match_map,
)


def _p(value: float) -> str:
    text = f"{value:.2g}" if value >= 0.001 else f"{value:.0e}"
    return f"**{text}**" if value < 0.05 else text


def markdown(table: dict, label: str) -> str:
    lines = [
        f"| {label} | pairs | box share | map | centre | random | map vs centre (+/-, p) | "
        "map vs random (+/-, p) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table["rows"]:
        name = f"**{row['pattern']}**" if row["pattern"] == "all" else row["pattern"]
        lines.append(
            f"| {name} | {row['pairs']} | {row['box_share']:.2f} | {row['map']:.2f} | "
            f"{row['centre']:.2f} | {row['random']:.2f} | "
            f"+{row['centre_wins']}/-{row['centre_losses']}, {_p(row['p_vs_centre'])} | "
            f"+{row['random_wins']}/-{row['random_losses']}, {_p(row['p_vs_random'])} |"
        )
    if table["b_rows"]:
        lines += ["", f"On B (the original), where A shows part of it ({label}):", ""]
        lines += [
            "| pattern | pairs | map | centre | random | map vs centre (+/-, p) | "
            "map vs random (+/-, p) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in table["b_rows"]:
            lines.append(
                f"| {row['pattern']} | {row['pairs']} | {row['map']:.2f} | {row['centre']:.2f} | "
                f"{row['random']:.2f} | +{row['centre_wins']}/-{row['centre_losses']}, "
                f"{_p(row['p_vs_centre'])} | +{row['random_wins']}/-{row['random_losses']}, "
                f"{_p(row['p_vs_random'])} |"
            )
    return "\n".join(lines)


SECTION = "## Match maps"


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's run on its held-out set, two pairs a pattern."""
    return ["--run", str(kit.run), "--set", f"heldout={kit.heldout}", "--per-pattern", "2"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="Run folder of the model.")
    parser.add_argument("--set", action="append", required=True, help="NAME=manifest.csv")
    parser.add_argument("--per-pattern", type=int, default=40, help="Pairs per pattern group.")
    parser.add_argument("--patterns", default=",".join(POINTING_PATTERNS))
    parser.add_argument("--method", default="crops", choices=METHODS)
    parser.add_argument("--part", default=None, help="copy, content or image (default: model's)")
    parser.add_argument("--scales", type=float, nargs="+", default=None)
    parser.add_argument("--steps", type=int, nargs="+", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = harness.parse_args(parser, argv, quick)

    torch.set_num_threads(args.threads)
    embedder = Embedder.from_run(args.run, cache_dir=False)
    grid = WindowGrid(tuple(args.scales), tuple(args.steps)) if args.scales else None
    part = args.part or default_part(embedder)
    explain = functools.partial(match_map, part=part, method=args.method, grid=grid)
    default = DEFAULT_CROPS if args.method == "crops" else DEFAULT_OCCLUSION
    window_count = len(grid or default)
    section = harness.Section(SECTION, args)
    section.line(
        f"{args.threads} threads; model {embedder.model_id} "
        f"({embedder.model.config.image_tower}); method {args.method}, part {part}, "
        f"{window_count} windows a side; load average {os.getloadavg()[0]:.1f}"
    )
    patterns = [p for p in args.patterns.split(",") if p]
    all_records = []
    for spec in args.set:
        name, _, path = spec.partition("=")
        manifest = load_manifest(path, check_images=False)
        pairs = pointing_pairs(manifest, patterns, per_pattern=args.per_pattern, seed=args.seed)
        if not pairs:
            section.line(
                f"{name}: no derived item with a partial box (made before boxes were recorded?)"
            )
            continue
        started = time.perf_counter()
        records = play(embedder, pairs, explain=explain, seed=args.seed)
        all_records += records
        table = pointing_table(records)
        section.line(f"\n{name}: {len(pairs)} pairs in {time.perf_counter() - started:.0f} s\n")
        section.line(markdown(table, name))
        section.line(
            f"\nseconds per pair (map only): median {table['seconds_median']:.2f}, "
            f"90th percentile {table['seconds_p90']:.2f}"
        )
    if all_records:
        seconds = np.array([r.seconds for r in all_records])
        section.line(
            f"\nall sets: {len(seconds)} pairs, median {np.median(seconds):.2f} s, "
            f"90th percentile {np.percentile(seconds, 90):.2f} s, max {seconds.max():.2f} s; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
    section.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
