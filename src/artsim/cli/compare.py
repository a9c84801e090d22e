"""``artsim compare RUN_A RUN_B [...]``: runs compared figure by figure (:mod:`artsim.report.compare`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from artsim.cli.commands import run_app
from artsim.errors import UserError
from artsim.report.text import check_lang, say

# artsim.report.compare (torch) is imported when the command runs: `--help` needs none of it

console = Console(highlight=False)


def compare_command(
    runs: Annotated[list[Path], typer.Argument(help="run folders (or folders of runs)")],
    lang: Annotated[str, typer.Option("--lang", help="en or es")] = "en",
    out: Annotated[
        Path | None, typer.Option("--out", help="write the comparison as Markdown")
    ] = None,
) -> int:
    """Compare training runs figure by figure, with relative changes and a noise check."""
    try:
        check_lang(lang)
    except ValueError as error:
        raise UserError(str(error)) from None

    from artsim.report.compare import (
        compare_runs,
        comparison_markdown,
        comparison_sentences,
        comparison_table,
    )

    result = compare_runs(runs)
    header, rows = comparison_table(result, lang)
    table = Table(title=say(lang, "compare_title"))
    for index, column in enumerate(header):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for sentence in comparison_sentences(result, lang):
        console.print(sentence)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(comparison_markdown(result, lang), encoding="utf-8")
        console.print(f"wrote {out}")
    return 0


app = typer.Typer(add_completion=False, help="Compare training runs.")
app.command("compare")(compare_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``artsim compare ...`` in-process; returns the exit code."""
    return run_app(app, argv)
