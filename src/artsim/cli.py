"""The ``artsim`` command: every sub-command is a module's typer command, mounted here."""

from __future__ import annotations

import os
import sys

import typer

from artsim.commands import run_app

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
    from artsim.data.cli import app as data_app
    from artsim.train.run import train_command

    app.add_typer(data_app, name="data")
    app.command("train")(train_command)


_mount()


def main(argv: list[str] | None = None) -> int:
    """Run ``artsim`` with ``argv`` (default: the process arguments); returns the exit code."""
    return run_app(app, argv, prog_name="artsim")


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
