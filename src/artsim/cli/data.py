"""``artsim data``: validate a manifest, split it by group, derive stand-ins, build the demo corpus.

Every command is callable in-process: ``main(["validate", "manifest.csv"]) -> int``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from artsim.cli.commands import run_app
from artsim.cli.progress import RichReporter
from artsim.data.manifest.manifest import Manifest, load_manifest, validate_manifest
from artsim.data.manifest.split import DEFAULT_VAL_FRACTION, group_split, split_sizes, write_split
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS
from artsim.errors import UserError

app = typer.Typer(
    name="data",
    help="Check, split and build data sets (manifests of original and generated artworks).",
    no_args_is_help=True,
    add_completion=False,
)

# Problem texts quote user data (paths, ids) that may contain [brackets]: no markup there.
console = Console(highlight=False, soft_wrap=True)


def _reporter() -> RichReporter:
    return RichReporter(console, transient=True)


Seed = Annotated[int, typer.Option("--seed", min=0, help="Random seed.")]
PerOriginal = Annotated[
    int, typer.Option("--per-original", min=1, help="Generated stand-ins per original.")
]
CacheDir = Annotated[Path | None, typer.Option("--cache-dir", help="Where downloads are cached.")]
MaxOriginals = Annotated[
    int | None, typer.Option("--max-originals", min=1, help="Keep at most this many originals.")
]
ManifestArgument = Annotated[
    Path,
    typer.Argument(
        metavar="MANIFEST", help="Manifest file (.csv, .jsonl or .parquet).", show_default=False
    ),
]
MaxPixels = Annotated[
    int,
    typer.Option(
        "--max-pixels", min=1, help="Refuse images with more pixels (decompression bombs)."
    ),
]


def _langs(manifest: Manifest) -> str:
    counts = Counter(item.lang or "?" for item in manifest.items)
    return ", ".join(f"{lang} {count}" for lang, count in sorted(counts.items())) or "-"


def _print_counts(title: str, manifest: Manifest) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("rows", manifest.n_rows),
        ("usable", len(manifest.items)),
        ("errors", len(manifest.errors)),
        ("warnings", len(manifest.warnings)),
        ("groups", len(manifest.groups())),
        ("originals", len(manifest.originals())),
        ("generated", len(manifest.generated())),
        ("langs", _langs(manifest)),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)


def _print_written(path: Path) -> None:
    """Counts of a manifest a command has just written, read without reopening its images."""
    _print_counts(f"wrote {path}", load_manifest(path, check_images=False))


@app.command()
def validate(manifest_path: ManifestArgument, max_pixels: MaxPixels = DEFAULT_MAX_PIXELS) -> int:
    """Check every row and image; print one line per problem and a summary.

    Exit code 0 when every row is usable, 1 otherwise (warnings do not count).
    """
    manifest = validate_manifest(manifest_path, max_pixels=max_pixels)
    for problem in manifest.problems:
        console.print(problem.format(manifest.path.name), markup=False)
    _print_counts(str(manifest.path), manifest)
    if manifest.errors:
        console.print(f"{len(manifest.errors)} row(s) cannot be used.", markup=False)
        return 1
    console.print("Every row is usable.")
    return 0


def refuse_writing_over_input(out: Path, *inputs: Path, option: str = "--out") -> None:
    """Raise UserError when the file ``out`` is one of ``inputs`` (same file, however named)."""
    for given in inputs:
        same = Path(out).resolve() == Path(given).resolve()
        with contextlib.suppress(OSError):
            same = same or Path(out).samefile(given)
        if same:
            raise UserError(f"{option} {out} is the input {given}: choose another file to write")


@app.command()
def split(
    manifest_path: ManifestArgument,
    out: Annotated[Path, typer.Option("--out", help="Where to write the id,split CSV.")],
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of items for validation.")
    ] = DEFAULT_VAL_FRACTION,
    seed: Seed = 0,
    stratify: Annotated[
        str | None,
        typer.Option("--stratify", help="Split each value of this column (e.g. lang) apart."),
    ] = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> int:
    """Split usable items into train and val by group and write id,split to --out."""
    refuse_writing_over_input(out, manifest_path)
    # Images are checked so the split holds exactly the items a training run will load.
    manifest = load_manifest(manifest_path, max_pixels=max_pixels)
    if manifest.errors:
        console.print(
            f"note: {len(manifest.errors)} unusable row(s) left out "
            f"(see: artsim data validate {manifest_path})",
            markup=False,
        )
    assignment = group_split(manifest.items, val_fraction, seed=seed, stratify=stratify)
    write_split(assignment, out)
    sizes = split_sizes(assignment, manifest.items)
    table = Table(title=f"wrote {out}", title_justify="left")
    table.add_column("side")
    table.add_column("items", justify="right")
    table.add_column("groups", justify="right")
    for side, counts in sizes.items():
        table.add_row(side, str(counts["items"]), str(counts["groups"]))
    console.print(table)
    return 0


@app.command()
def derive(
    manifest_path: ManifestArgument,
    out: Annotated[Path, typer.Option("--out", help="Folder for the new images and manifest.")],
    per_original: PerOriginal = 3,
    seed: Seed = 0,
    family: Annotated[
        str,
        typer.Option(
            "--family",
            help="training: the stand-ins training uses; heldout: the evaluation-only family "
            "(other code, patterns and prompts).",
        ),
    ] = "training",
    distractors: Annotated[
        Path | None,
        typer.Option(
            "--distractors",
            help="heldout only: folder or manifest of unrelated pictures that mosaics and "
            "collages borrow from (default: procedural tiles).",
        ),
    ] = None,
    split_file: Annotated[
        Path | None,
        typer.Option("--split-file", help="heldout only: an id,split CSV (a run's split.csv)."),
    ] = None,
    side: Annotated[
        str, typer.Option("--side", help="With --split-file: keep the groups on this side.")
    ] = "val",
    patterns: Annotated[
        str | None,
        typer.Option(
            "--patterns",
            help="heldout only: comma-separated patterns to draw from (default: all but the "
            "opt-in inset and detail).",
        ),
    ] = None,
) -> int:
    """Make generated stand-ins for each original and write a new manifest under --out."""
    if family not in ("training", "heldout"):
        raise UserError(f"--family must be training or heldout, got {family!r}")
    if family == "training" and (
        distractors is not None or split_file is not None or patterns is not None
    ):
        raise UserError("--distractors, --split-file and --patterns go with --family heldout")
    # the new manifest is written as --out/manifest.csv: never over the one being read
    refuse_writing_over_input(out / "manifest.csv", manifest_path)
    manifest = load_manifest(manifest_path)
    if family == "heldout":
        from artsim.data.families.heldout.derive import (
            derive_heldout_manifest,
            distractor_paths,
            split_groups,
        )

        groups = split_groups(split_file, side, manifest) if split_file is not None else None
        pool = distractor_paths(distractors) if distractors is not None else []
        written = derive_heldout_manifest(
            manifest,
            out,
            per_original=per_original,
            seed=seed,
            distractors=pool,
            groups=groups,
            patterns=[p.strip() for p in patterns.split(",") if p.strip()]
            if patterns is not None
            else None,
        )
    else:
        from artsim.data.families.training.derive import derive_manifest

        with _reporter() as reporter:
            written = derive_manifest(
                manifest, out, per_original=per_original, seed=seed, reporter=reporter
            )
    _print_written(written)
    return 0


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo corpus.")] = Path(
        "data/demo"
    ),
    max_originals: MaxOriginals = None,
    per_original: PerOriginal = 3,
    seed: Seed = 0,
    cache_dir: CacheDir = None,
    corpus: Annotated[
        str,
        typer.Option(
            "--corpus",
            help="demo (Tux Paint stamps + Open Clip Art, 1600 originals) or full (every "
            "usable original of 9 packages of drawings, icons, emoji and game art).",
        ),
    ] = "demo",
) -> int:
    """Build the demo corpus (originals plus generated stand-ins) under --out."""
    from artsim.data.corpora.demo import build_demo_corpus

    with _reporter() as reporter:
        written = build_demo_corpus(
            out,
            max_originals=max_originals,
            per_original=per_original,
            seed=seed,
            cache_dir=cache_dir,
            corpus=corpus,
            reporter=reporter,
        )
    # the builder's last note already says "wrote ...": the counts are titled by the path alone
    _print_counts(str(written), load_manifest(written, check_images=False))
    return 0


@app.command()
def folder(
    images: Annotated[Path, typer.Argument(help="Folder of images (sub-folders are categories).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the new images and manifest.")],
    per_original: Annotated[
        int, typer.Option("--per-original", min=0, help="Generated stand-ins per original.")
    ] = 3,
    max_originals: MaxOriginals = None,
    source: Annotated[str, typer.Option("--source", help="Credit written in each row.")] = "",
    seed: Seed = 0,
) -> int:
    """Make a manifest from a folder of images: captions from file names, then stand-ins."""
    from artsim.data.corpora.folder import originals_from_folder
    from artsim.data.families.training.derive import derive_manifest

    written = originals_from_folder(
        images, out, source=source, max_originals=max_originals, seed=seed
    )
    if per_original > 0:
        with _reporter() as reporter:
            written = derive_manifest(
                load_manifest(written), out, per_original=per_original, seed=seed, reporter=reporter
            )
    _print_written(written)
    return 0


@app.command()
def external(
    out: Annotated[Path, typer.Option("--out", help="Folder for the external set.")] = Path(
        "data/external"
    ),
    per_original: PerOriginal = 3,
    seed: Seed = 0,
    cache_dir: CacheDir = None,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="art4apps (pysiogame's flat illustrations) or flare (flare-game's painted art).",
        ),
    ] = "art4apps",
    family: Annotated[
        str,
        typer.Option("--family", help="Derivatives: training stand-ins or the heldout family."),
    ] = "training",
) -> int:
    """Build an external evaluation set from a Debian package, never trained on."""
    from artsim.data.corpora.folder import build_external_corpus

    with _reporter() as reporter:
        written = build_external_corpus(
            out,
            per_original=per_original,
            seed=seed,
            cache_dir=cache_dir,
            source=source,
            family=family,
            reporter=reporter,
        )
    _print_written(written)
    return 0


@app.command()
def lofo(
    manifest_path: ManifestArgument,
    source: Annotated[
        str,
        typer.Option("--source", help="The source (Debian package) to leave out of training."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for train/ and eval/ manifests.")],
    per_original: Annotated[
        int, typer.Option("--per-original", min=1, help="Held-out derivatives per original.")
    ] = 3,
    seed: Seed = 0,
    distractors: Annotated[
        Path | None,
        typer.Option("--distractors", help="Folder or manifest for mosaics and collages."),
    ] = None,
) -> int:
    """Leave one source out: OUT/train without it, OUT/eval with its originals (heldout family)."""
    from artsim.data.corpora.lofo import leave_one_source_out
    from artsim.data.families.heldout.derive import distractor_paths

    manifest = load_manifest(manifest_path, check_images=False)
    pool = distractor_paths(distractors) if distractors is not None else []
    train_path, eval_path = leave_one_source_out(
        manifest, source, out, per_original=per_original, seed=seed, distractors=pool
    )
    _print_written(train_path)
    _print_written(eval_path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``artsim data`` with ``argv`` (default: the process arguments); return the exit code."""
    return run_app(app, argv, prog_name="artsim data")


if __name__ == "__main__":
    raise SystemExit(main())
