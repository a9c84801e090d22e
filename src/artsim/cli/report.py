"""``artsim report RUN_DIR``: write a run's report (:mod:`artsim.report.report`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from artsim.cli.commands import run_app

# artsim.report (torch, matplotlib) is imported when the command runs: `--help` needs none of it

console = Console(highlight=False)


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="run folder written by artsim train")],
    lang: Annotated[str, typer.Option("--lang", help="en or es")] = "en",
    out: Annotated[
        Path | None, typer.Option("--out", help="folder for the report (default: the run folder)")
    ] = None,
) -> int:
    """Write an HTML and a Markdown report of a training run."""
    from artsim.report.reading import load_evaluation, load_run
    from artsim.report.report import build_report

    evaluation = load_evaluation(load_run(run_dir), "val")
    paths = build_report(run_dir, lang=lang, out_dir=out, evaluation=evaluation)
    if evaluation.reason:
        console.print(f"[yellow]no evaluation in the report:[/] {escape(evaluation.reason)}")
    console.print(f"wrote {paths['html']}")
    console.print(f"wrote {paths['md']}")
    return 0


app = typer.Typer(add_completion=False, help="Report on a training run.")
app.command("report")(report_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``artsim report ...`` in-process; returns the exit code."""
    return run_app(app, argv)
