"""The command line: typer apps, rich tables and progress bars over the library.

Every sub-command lives in a module of this package (``artsim.cli.train``, ``artsim.cli.index``,
...) with its own ``main(argv) -> int``; this module mounts them as ``artsim``. A command's module
is imported only when that command runs (or shows its own help): ``artsim --help`` lists them
from :data:`COMMANDS` without importing torch or Lightning. A command's module in turn imports the
library (torch, Lightning, faiss, FastAPI, matplotlib) inside the functions that run, so its own
``--help`` and its usage errors load none of it (option defaults it shows come from light modules
such as :mod:`artsim.defaults`). Nothing below this package imports typer or rich: the library
reports progress through :mod:`artsim.progress`.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer
from typer.core import TyperCommand, TyperGroup

from artsim.cli.commands import run_app

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# name -> (module of artsim.cli, its command: a function or a typer app, the one-line help the
# top-level list shows; tests/test_cli_lazy.py checks it is the command's own)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "pipeline",
        "demo_command",
        "Build the demo corpus, train, evaluate, report, index and search: the whole job.",
    ),
    "train": ("train", "train_command", "Train the multimodal triplet model on a manifest."),
    "evaluate": (
        "evaluate",
        "evaluate_command",
        "Retrieval, verification and baselines of a trained run on a manifest.",
    ),
    "report": (
        "report",
        "report_command",
        "Write an HTML and a Markdown report of a training run.",
    ),
    "compare": (
        "compare",
        "compare_command",
        "Compare training runs figure by figure, with relative changes and a noise check.",
    ),
    "sweep": (
        "sweep",
        "sweep_command",
        "Train every split x seed combination and compare the splits with intervals.",
    ),
    "calibrate": (
        "index",
        "calibrate_command",
        "Fit the verdict thresholds on the indexed collection itself (written to index.json).",
    ),
    "search": (
        "search",
        "search_command",
        "Rank the indexed originals by similarity to an image and/or a text.",
    ),
    "score": (
        "search",
        "score_command",
        "How similar two artworks are: per-modality and fused scores, and a verdict.",
    ),
    "explain": (
        "explain",
        "explain_command",
        "Where two artworks match: a heat map on each, and the best-matching regions linked.",
    ),
    "serve": (
        "serve",
        "serve_command",
        "Serve search, score and the web page for an index (docs at /docs).",
    ),
    "data": (
        "data",
        "app",
        "Check, split and build data sets (manifests of original and generated artworks).",
    ),
    "index": ("index", "app", "Build and change the search index of original artworks."),
}


def load_command(name: str):
    """The click command of ``artsim NAME``, its module imported now."""
    module, attribute, _ = COMMANDS[name]
    found = getattr(importlib.import_module(f"artsim.cli.{module}"), attribute)
    if not isinstance(found, typer.Typer):
        single = typer.Typer(add_completion=False)
        single.command(name)(found)
        found = single
    command = typer.main.get_command(found)
    command.name = name
    return command


class LazyCommands(TyperGroup):
    """``artsim``'s commands, each imported when it is run or asked for its own help."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # placeholders until loaded: what the top-level help lists (and typo suggestions read)
        self.commands = {
            name: TyperCommand(name, help=summary, short_help=summary)
            for name, (_, _, summary) in COMMANDS.items()
        }
        self._loaded: set[str] = set()
        self._listing = False

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, cmd_name: str):
        if cmd_name not in COMMANDS:
            return None
        if not self._listing and cmd_name not in self._loaded:
            self.commands[cmd_name] = load_command(cmd_name)
            self._loaded.add(cmd_name)
        return self.commands[cmd_name]

    def format_help(self, ctx, formatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="artsim",
    cls=LazyCommands,
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def artsim() -> None:
    """How similar is a generated artwork to the originals, and which one did it come from."""


def main(argv: list[str] | None = None) -> int:
    """Run ``artsim`` with ``argv`` (default: the process arguments); returns the exit code."""
    return run_app(app, argv, prog_name="artsim")


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
