"""Run a typer app as ``main(argv) -> int`` so every command can be called in-process.

Each command module of :mod:`artsim.cli` builds its own ``typer.Typer`` and exposes ``main(argv)`` through
:func:`run_app`; the top-level ``artsim`` CLI mounts them as sub-commands.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.markup import escape

from artsim.errors import UserError, storage_error

# typer >= 0.2x vendors its own copy of click, whose exceptions are not click's: catch both kinds.
_typer_exceptions = getattr(typer, "exceptions", None)
_ABORTS = (click.exceptions.Abort, typer.Abort)
_EXITS = (click.exceptions.Exit, typer.Exit)
_CLICK_ERRORS: tuple[type[Exception], ...] = (click.exceptions.ClickException,)
if _typer_exceptions is not None and hasattr(_typer_exceptions, "TyperException"):
    _CLICK_ERRORS += (_typer_exceptions.TyperException,)

err_console = Console(stderr=True, highlight=False, soft_wrap=True)

# Options several commands share, declared once.
IndexOption = Annotated[Path, typer.Option("--index", help="Index folder.")]
RunOfIndexOption = Annotated[
    Path | None,
    typer.Option("--run", help="Run folder of the model (default: the one that built it)."),
]
MaxPixelsOption = Annotated[
    int, typer.Option("--max-pixels", help="Refuse images larger than this.")
]


def fail(message: str) -> None:
    """Print a one-line error for the user (no traceback)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True)


def run_app(app: typer.Typer, argv: Sequence[str] | None = None, prog_name: str = "artsim") -> int:
    """Invoke ``app`` with ``argv`` and return an exit code instead of raising ``SystemExit``.

    User mistakes (``UserError``, bad options) print one line, and so does a write the disk
    refused (full, read-only: :func:`artsim.errors.storage_error`, exit code 4); other
    exceptions propagate, because they are bugs and their traceback is what a developer needs.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except UserError as error:
        fail(str(error))
        return error.exit_code
    except _ABORTS:
        fail("aborted")
        return 130
    except _CLICK_ERRORS as error:
        if hasattr(error, "show"):
            error.show()
        else:
            fail(str(error))
        return error.exit_code
    except _EXITS as error:
        return error.exit_code
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except Exception as error:
        refused = storage_error(error)
        if refused is None:
            raise
        fail(str(refused))
        return refused.exit_code
    if isinstance(result, int):
        return result
    return 0
