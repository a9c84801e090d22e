"""``artsim explain A B``: where a generated work and an original match (a match map).

Prints where each picture matches the other best and the linked regions, or JSON (``--json``);
``--out match.png`` writes A and B side by side under their heat overlays. The map comes from
:meth:`artsim.api.Model.explain` (:mod:`artsim.model.explain`), the picture from
:mod:`artsim.report.match_picture`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from artsim.cli.commands import MaxPixelsOption, run_app
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS
from artsim.errors import UserError


def _where(x: float, y: float) -> str:
    rows = ("top", "middle", "bottom")
    columns = ("left", "centre", "right")
    row, column = rows[min(2, int(y * 3))], columns[min(2, int(x * 3))]
    return "centre" if (row, column) == ("middle", "centre") else f"{row} {column}"


def _box(box: Sequence[float]) -> str:
    if tuple(box) == (0.0, 0.0, 1.0, 1.0):
        return "all of it"
    return f"x {box[0]:.0%}-{box[2]:.0%}, y {box[1]:.0%}-{box[3]:.0%}"


def explain_command(
    image_a: Annotated[Path, typer.Argument(help="Artwork A (e.g. the generated one).")],
    image_b: Annotated[Path, typer.Argument(help="Artwork B (e.g. the original).")],
    run: Annotated[Path, typer.Option("--run", help="Run folder with the trained model.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write A and B side by side under their maps (PNG)."),
    ] = None,
    part: Annotated[
        str | None,
        typer.Option(
            "--part",
            help="Which cosine to map: copy, content or image (default: copy where the model "
            "has a copy descriptor, else image).",
        ),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="crops (default) or occlusion.")
    ] = "crops",
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON (the grids too).")
    ] = False,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> None:
    """Where two artworks match: a heat map on each, and the best-matching regions linked."""
    from artsim.api import load_model
    from artsim.data.pictures.images import load_rgb

    if out is not None and out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: the match picture is a PNG; name it .png")
    pictures = [load_rgb(image_a, max_pixels), load_rgb(image_b, max_pixels)]
    model = load_model(run, cache_dir=False)
    found = model.explain(pictures[0], pictures[1], part=part, method=method)
    if out is not None:
        from artsim.report.match_picture import match_png

        out.parent.mkdir(parents=True, exist_ok=True)
        names = (f"A: {image_a.name}", f"B: {image_b.name}")
        out.write_bytes(match_png(pictures[0], pictures[1], found, names=names))
    if json_output:
        print(json.dumps(found.to_json(), indent=2))
        return
    box_a, box_b, cosine = found.link
    print(f"{found.part} cosine of {image_a.name} and {image_b.name}: {found.score:.3f}")
    print(
        f"A matches B best at its {_where(*found.a.peak())}; B matches A best at its {_where(*found.b.peak())}"
    )
    print(f"best-matching regions: A {_box(box_a)} with B {_box(box_b)} ({cosine:.3f})")
    if out is not None:
        print(f"wrote {out}")


app = typer.Typer(add_completion=False)
app.command()(explain_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``main(["a.png", "b.png", "--run", "runs/demo", "--out", "match.png"])``."""
    return run_app(app, argv, prog_name="artsim explain")
