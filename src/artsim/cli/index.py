"""``artsim index build|add|remove|info``: make and change the search index (:mod:`artsim.index`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from artsim.cli.commands import IndexOption, MaxPixelsOption, RunOfIndexOption, run_app
from artsim.cli.progress import RichReporter
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS
from artsim.defaults import DEFAULT_SAMPLE
from artsim.errors import UserError

# artsim.api, artsim.index and artsim.model (torch, faiss) are imported by the commands that run:
# `--help` needs none of them
if TYPE_CHECKING:
    from artsim.api import Index

err_console = Console(stderr=True, highlight=False)


def _reporter() -> RichReporter:
    return RichReporter(err_console, remaining=True, description_width=22)


app = typer.Typer(
    name="index",
    help="Build and change the search index of original artworks.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("build")
def build_command(
    run: Annotated[Path, typer.Option("--run", help="Run folder with the trained model.")],
    data: Annotated[Path, typer.Option("--data", help="Manifest; its originals are indexed.")],
    out: Annotated[Path, typer.Option("--out", help="Index folder to create.")],
    store: Annotated[
        str | None,
        typer.Option("--store", help="Keep vectors in Milvus: milvus://HOST:PORT."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an index at --out.")] = False,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
    calibrate_sample: Annotated[
        int,
        typer.Option(
            "--calibrate-sample",
            min=0,
            help="Groups drawn to calibrate verdicts on this collection (0: do not calibrate).",
        ),
    ] = DEFAULT_SAMPLE,
    devices: Annotated[
        int, typer.Option("--devices", min=1, help="Processes (GPUs) per machine for the images.")
    ] = 1,
    num_nodes: Annotated[
        int, typer.Option("--num-nodes", min=1, help="Machines, each running this command.")
    ] = 1,
) -> None:
    """Embed the ORIGINALS of a manifest (image, caption, fused vectors) into a new index."""
    from artsim.api import Index, Model
    from artsim.index.build import build_index, originals_of
    from artsim.model.embedder import Embedder

    embedder = None
    if devices * num_nodes > 1:
        embedder = Embedder.from_run(Path(run).resolve(), devices=devices, num_nodes=num_nodes)
        # every machine's processes embed the images into the feature cache first (Lightning's
        # prediction loop); the first machine then builds the index from the cache
        with _reporter() as reporter:
            originals = originals_of(data, max_pixels, reporter)
        paths = [item.image for item in originals]
        embedder.image_features(paths, max_pixels=max_pixels)
        embedder.tuned_image_features(paths, max_pixels=max_pixels)  # None without one
        if int(os.environ.get("NODE_RANK", "0")) != 0:
            err_console.print("embedded this machine's share; the first machine writes the index")
            return
    with _reporter() as reporter:
        index = build_index(
            run,
            data,
            out,
            store=store,
            force=force,
            max_pixels=max_pixels,
            reporter=reporter,
            embedder=embedder,
        )
    try:
        err_console.print(
            f"indexed {index.count()} originals into {out} "
            f"(model {index.model_id}, {index.store.describe()})"
        )
        if calibrate_sample:
            try:
                built = Index(index, Model(index.load_embedder(run), Path(run)))
                _calibrate_and_say(built, calibrate_sample, 0, max_pixels)
            except UserError as error:  # the index is built and usable: say why, keep it
                err_console.print(f"[yellow]verdicts not calibrated: {error}[/]")
    finally:
        index.close()


def _calibrate_and_say(index: Index, sample: int, seed: int, max_pixels: int) -> None:
    with err_console.status("calibrating verdicts on this collection"):
        calibration = index.calibrate(sample=sample, seed=seed, max_pixels=max_pixels)
    for line in calibration_lines(index.info.calibration or {}):
        err_console.print(line)
    if not calibration.tasks:
        err_console.print("[yellow]too few usable queries: verdicts stay uncalibrated[/]")


def calibration_lines(raw: dict) -> list[str]:
    """What ``index.json``'s calibration says, in a few lines for people."""
    if not raw:
        return ["calibration: none (run `artsim calibrate --index INDEX`)"]
    about = raw.get("about", {})
    on = about.get("on", {})
    lines = [
        f"calibration: {on.get('match_queries', '?')} derivatives of indexed originals, each "
        f"searched with its original and, as one of {on.get('distractor_queries', '?')} "
        "distractor queries, without its own group "
        f"({on.get('originals_in_index', '?')} originals, seed {on.get('seed', '?')}, "
        f"{about.get('seconds', '?')} s); 'derived' at a {raw.get('rate', 0):.1%} false rate"
    ]
    for task, rates in about.get("measured", {}).items():
        parts = []
        for rate, values in rates.items():
            if float(rate) > 0.05:
                continue
            high = values["false_rate_interval"][1]
            parts.append(
                f"{float(rate):.1%}: t={values['threshold']:.3f} recall {values['recall']:.2f} "
                f"(false {values['false_rate']:.1%}, <= {high:.1%} at 95%)"
            )
        background = raw.get("tasks", {}).get(task, {}).get("background_rank", 0)
        how = f" (score minus the query's score at rank {background})" if background else ""
        lines.append(f"  {task}{how}: " + "; ".join(parts))
    copy = raw.get("copy")
    if copy:
        lines.append(
            f"  copy: {'copy' if copy.get('on_copy_score') else 'image'} score >= "
            f"{copy['threshold']:.3f} "
            f"({copy['recall']:.0%} of {int(copy['n'])} near-duplicates)"
        )
    look = about.get("look_alikes") or {}
    if look.get("found"):
        shown = ", ".join(
            f"{pair['original']} ~ {pair['look_alike']} {pair['score']:.2f}"
            for pair in look["pairs"][:3]
        )
        lines.append(
            f"  look-alikes: {look['found']} of {look['checked']} drawn originals reach the image "
            f"'derived' threshold with an original of another group ({shown}): a derivative of "
            "one is called derived from the other; put each work in one group"
        )
    return lines


@app.command("calibrate")
def calibrate_command(
    index_path: IndexOption,
    sample: Annotated[
        int,
        typer.Option(
            "--sample", min=4, help="Groups drawn; each gives a match and a distractor query."
        ),
    ] = DEFAULT_SAMPLE,
    seed: Annotated[int, typer.Option("--seed", help="Which groups are drawn.")] = 0,
    run: RunOfIndexOption = None,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> None:
    """Fit the verdict thresholds on the indexed collection itself (written to index.json)."""
    from artsim.api import open_index

    with open_index(index_path, run=run) as index:
        _calibrate_and_say(index, sample, seed, max_pixels)


@app.command("add")
def add_command(
    index_path: IndexOption,
    data: Annotated[Path, typer.Option("--data", help="Manifest whose originals to add.")],
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> None:
    """Add a manifest's originals to an index (an id already there is replaced)."""
    from artsim.api import open_index

    with open_index(index_path) as index:
        before = len(index)
        with _reporter() as reporter:
            given = index.add(data, max_pixels=max_pixels, progress=reporter)
        # a manifest's ids are unique: each one the index did not hold grows it by one
        added = len(index) - before
        err_console.print(
            f"added {added} and replaced {given - added} originals; the index holds {len(index)}"
        )


def _ids_from_file(path: Path) -> list[str]:
    """One id per line (UTF-8); surrounding spaces and blank lines are ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"--ids-file {path}: cannot read it ({error})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _some_ids(ids: list[str], shown: int = 10) -> str:
    """The first ``shown`` ids, quoted (an id may hold commas, newlines, anything), and how many
    more: one short line however many were asked for."""
    listed = ", ".join(repr(item_id) for item_id in ids[:shown])
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return f"{len(ids)} id(s): {listed}{more}"


@app.command("remove")
def remove_command(
    index_path: IndexOption,
    ids: Annotated[str | None, typer.Option("--ids", help="Comma-separated ids to remove.")] = None,
    id_list: Annotated[
        list[str] | None,
        typer.Option("--id", help="One id to remove, taken whole (commas too); repeatable."),
    ] = None,
    ids_file: Annotated[
        Path | None, typer.Option("--ids-file", help="File with one id per line to remove.")
    ] = None,
) -> None:
    """Remove originals from an index by id (--ids a,b or --id 'a, b' or --ids-file FILE)."""
    wanted = [part.strip() for part in (ids or "").split(",") if part.strip()]
    wanted += [item_id for item_id in id_list or [] if item_id.strip()]  # exact, as stored
    if ids_file is not None:
        wanted += _ids_from_file(ids_file)
    wanted = list(dict.fromkeys(wanted))
    if not wanted:
        raise UserError(
            "no id to remove: give --ids a,b, --id ID (repeatable; an id may hold commas) "
            "or --ids-file FILE"
        )
    from artsim.api import open_index

    with open_index(index_path, with_model=False) as index:
        removed = index.remove(wanted)
        unknown = [item_id for item_id in wanted if item_id not in set(removed)]
        if not removed:
            raise UserError(f"none of these ids is in {index_path}: {_some_ids(unknown)}")
        if unknown:
            err_console.print(f"[yellow]not in the index:[/] {escape(_some_ids(unknown))}")
        err_console.print(f"removed {len(removed)}; the index holds {len(index)}")


@app.command("info")
def info_command(
    index_path: IndexOption,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Say what an index holds, which model built it and how each modality is searched."""
    from artsim.api import open_index
    from artsim.index.vector_index import describe_plan

    with open_index(index_path, read_only=True, with_model=False) as index:
        data = index.describe()  # the store's committed plans, not index.json's mirror
    plans = data["search"]
    if json_output:
        print(json.dumps(data, indent=2))
        return
    calibration = data.pop("calibration", None)
    for key, value in data.items():
        if key != "search":
            print(f"{key}: {value}")
    for modality, plan in plans.items():
        print(f"search {modality}: {describe_plan(plan)} ({plan.get('vectors', 0)} vectors)")
        if plan.get("note"):
            print(f"  {plan['note']}")
    for line in calibration_lines(calibration or {}):
        print(line)


def main(argv: Sequence[str] | None = None) -> int:
    """``artsim index ...`` in-process: ``main(["build", "--run", ...])``."""
    return run_app(app, argv, prog_name="artsim index")
