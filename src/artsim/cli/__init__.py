"""The command line: typer apps, rich tables and progress bars over the library.

Every sub-command lives in a module of this package (``artsim.cli.train``, ``artsim.cli.index``,
...) with its own ``main(argv) -> int``; this module mounts them as ``artsim``. Nothing below this
package imports typer or rich: the library reports progress through :mod:`artsim.progress`.
"""

from __future__ import annotations

import os
import sys

import typer

from artsim.cli.commands import run_app

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    name="artsim",
    help="How similar is a generated artwork to the originals, and which one did it come from.",
    no_args_is_help=True,
    add_completion=False,
)


def _mount() -> None:
    from artsim.cli.compare import compare_command
    from artsim.cli.data import app as data_app
    from artsim.cli.evaluate import evaluate_command
    from artsim.cli.explain import explain_command
    from artsim.cli.index import app as index_app
    from artsim.cli.index import calibrate_command
    from artsim.cli.pipeline import demo_command
    from artsim.cli.report import report_command
    from artsim.cli.search import score_command, search_command
    from artsim.cli.serve import serve_command
    from artsim.cli.sweep import sweep_command
    from artsim.cli.train import train_command

    app.command("demo")(demo_command)
    app.add_typer(data_app, name="data")
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("report")(report_command)
    app.command("compare")(compare_command)
    app.command("sweep")(sweep_command)
    app.add_typer(index_app, name="index")
    app.command("calibrate")(calibrate_command)
    app.command("search")(search_command)
    app.command("score")(score_command)
    app.command("explain")(explain_command)
    app.command("serve")(serve_command)


_mount()


def main(argv: list[str] | None = None) -> int:
    """Run ``artsim`` with ``argv`` (default: the process arguments); returns the exit code."""
    return run_app(app, argv, prog_name="artsim")


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
