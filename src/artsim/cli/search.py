"""``artsim search`` (which originals is this like?) and ``artsim score`` (how alike are these two?).

Both print a table for people or JSON (``--json``) for programs; they reach the model and the
index through :mod:`artsim.api` (``Index.search_response``, ``Model.score``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from artsim.cli.commands import IndexOption, MaxPixelsOption, RunOfIndexOption, run_app
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.errors import UserError
from artsim.verdicts.grades import (
    VERDICT_COPY,
    VERDICT_DERIVED,
    VERDICT_RELATED,
    VERDICT_UNCALIBRATED,
    VERDICT_UNINFORMATIVE,
)

# artsim.api (torch, faiss) is imported by the functions that use it: `artsim search --help`
# needs none of it
if TYPE_CHECKING:
    from artsim.verdicts.source import Calibration

console = Console(highlight=False)

TASK_WORDS = {
    "image": "image vs. image",
    "text": "prompt vs. caption",
    "fused": "image + prompt vs. image + caption",
    "i2t": "image vs. caption",
    "t2i": "prompt vs. image",
    # the two readings of the image score of a model with a copy descriptor
    "copy": "copy descriptor: the same pixels",
    "content": "what is drawn",
}


# columns a search table needs for every score; narrower terminals leave the cross-modal out
WIDE_ENOUGH = 120
CROSS_MODAL = ("i2t", "t2i")


def _verdict_markup(verdict: str, probability: float | None = None) -> str:
    chance = f" {probability:.0%}" if probability is not None else ""
    if verdict == VERDICT_COPY:
        return f"[bold magenta]copy[/]{chance}"
    if verdict == VERDICT_DERIVED:
        return f"[bold red]derived[/]{chance}"
    if verdict == VERDICT_RELATED:
        return f"[yellow]related[/]{chance}"
    if verdict == VERDICT_UNCALIBRATED:
        return "[dim]uncalibrated[/]"
    if verdict == VERDICT_UNINFORMATIVE:
        return "[dim]uninformative (a picture of one colour)[/]"
    return f"[green]unrelated[/]{chance}"


def _search_line(search: dict) -> str:
    """How the ranking was found: exact, or approximate with its measured recall."""
    from artsim.index.vector_index import APPROXIMATE_KINDS, describe_plan

    modality = search.get("modality", "?")
    if search.get("exact"):
        return f"search: exact over the {modality} vectors"
    if search.get("kind") in APPROXIMATE_KINDS:
        return (
            f"search: approximate over the {modality} vectors ({describe_plan(search)}); "
            "a true neighbour can be missed that often"
        )
    return f"search: {modality} vectors, recall not measured by this store"


def _calibration_line(calibration: Calibration, task: str, threshold: float | None) -> str:
    if calibration.status != "calibrated":
        return f"verdict: uncalibrated ({calibration.note}); no threshold is assumed"
    if threshold is None:
        return f"verdict: uncalibrated (no calibrated threshold for task {task!r})"
    return (
        f"verdict: derived when the {task} score is >= {threshold:.3f} ({calibration.note}); "
        "copy, related and unrelated are graded around it; % = calibrated probability that "
        "the result is the query's original"
    )


def search_command(
    index: IndexOption,
    image: Annotated[
        Path | None, typer.Option("--image", help="Image file to look up (e.g. a generated one).")
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="Prompt or description.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="How many originals.")] = 10,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    run: RunOfIndexOption = None,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> None:
    """Rank the indexed originals by similarity to an image and/or a text."""
    if image is None and not (text or "").strip():
        raise UserError("give --image FILE, --text TEXT, or both")
    from artsim.api import open_index
    from artsim.index.query import SCORE_NAMES

    picture = load_rgb(image, max_pixels) if image is not None else None
    # no feature cache: a query writes nothing
    with open_index(index, run=run, read_only=True, cache_dir=False) as opened:
        response = opened.search_response(picture, text, k=k)
    if json_output:
        print(json.dumps(response.to_json(), indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{len(response.results)} closest originals ({TASK_WORDS[response.task]})")
    # a terminal too narrow for every score keeps the ids readable: the titles go, and so do
    # the cross-modal scores of a search that is not cross-modal (both stay in --json)
    narrow = console.width < WIDE_ENOUGH
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("id", overflow="fold", min_width=12)
    if not narrow:
        table.add_column("title", overflow="ellipsis", max_width=24)
    # in most collections an original's group is its own id: show the column only when it says more
    show_group = any(result.group != result.id for result in response.results)
    if show_group:
        table.add_column("group", overflow="fold")
    present = [n for n in SCORE_NAMES if any(n in r.scores for r in response.results)]
    left_out = [] if not narrow else ["title"]
    if narrow and response.task != "t2i":
        left_out += [n for n in present if n in CROSS_MODAL]
        present = [n for n in present if n not in CROSS_MODAL]
    for name in present:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True, min_width=11)
    for result in response.results:
        cells = [f"{result.scores[n]:.3f}" if n in result.scores else "" for n in present]
        table.add_row(
            str(result.rank),
            result.id,
            *([] if narrow else [result.title]),
            *([result.group] if show_group else []),
            *cells,
            _verdict_markup(result.verdict, result.probability),
        )
    console.print(table)
    if left_out:
        console.print(f"[dim]{', '.join(left_out)}: in --json or a wider terminal[/]")
    # in score units for THIS query: a background-normalised task's calibrated threshold is on
    # score minus the query's background, which derived_threshold adds back
    console.print(
        _calibration_line(response.calibration, response.task, response.derived_threshold)
    )
    console.print(_search_line(response.search))
    for cut in response.truncated:
        console.print(
            f"[dim]--text was cut to its first {cut['used_chars']:,} of {cut['given_chars']:,} "
            f"characters ({cut['used_tokens']} tokens of the text tower)[/]"
        )


def score_command(
    image_a: Annotated[Path, typer.Argument(help="Artwork A (e.g. the generated one).")],
    image_b: Annotated[Path, typer.Argument(help="Artwork B (e.g. the original).")],
    run: Annotated[Path, typer.Option("--run", help="Run folder with the trained model.")],
    text_a: Annotated[str | None, typer.Option("--text-a", help="A's prompt.")] = None,
    text_b: Annotated[str | None, typer.Option("--text-b", help="B's caption.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> None:
    """How similar two artworks are: per-modality and fused scores, and a verdict."""
    from artsim.api import load_model

    pictures = [load_rgb(image_a, max_pixels), load_rgb(image_b, max_pixels)]
    model = load_model(run, cache_dir=False)
    result = model.score(pictures[0], pictures[1], text_a=text_a, text_b=text_b)
    if json_output:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{image_a.name} vs. {image_b.name}")
    table.add_column("score")
    table.add_column("value", justify="right")
    for name, value in result.scores.items():
        label = f"{name} ({TASK_WORDS[name]})"
        table.add_row(f"[bold]{label}[/]" if name == result.task else label, f"{value:.3f}")
    console.print(table)
    console.print(
        f"verdict: {_verdict_markup(result.verdict, result.probability)} "
        f"on the {result.decided_by or result.task} score"
    )
    # the verdict's own threshold may be the copy or the text one: the line is about "derived"
    open_set = result.calibration.open_set
    derived = open_set.derived_threshold(result.task) if open_set is not None else None
    console.print(_calibration_line(result.calibration, result.task, derived))


app = typer.Typer(
    help="Search the index and score pairs of artworks.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("search")(search_command)
app.command("score")(score_command)

search_app = typer.Typer(add_completion=False)
search_app.command()(search_command)
score_app = typer.Typer(add_completion=False)
score_app.command()(score_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``main(["search", "--index", ...])`` or ``main(["score", "a.png", "b.png", ...])``."""
    return run_app(app, argv)


def search_main(argv: Sequence[str] | None = None) -> int:
    """``artsim search`` alone: ``search_main(["--index", "idx", "--text", "a red fox"])``."""
    return run_app(search_app, argv, prog_name="artsim search")


def score_main(argv: Sequence[str] | None = None) -> int:
    """``artsim score`` alone: ``score_main(["a.png", "b.png", "--run", "runs/demo"])``."""
    return run_app(score_app, argv, prog_name="artsim score")
