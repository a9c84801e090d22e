"""``artsim serve``: run the HTTP service for one index under uvicorn."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from artsim.commands import err_console, run_app
from artsim.errors import UserError
from artsim.serve.app import create_app


def serve_command(
    index: Annotated[Path, typer.Option("--index", help="Index folder to serve.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="ARTSIM_TOKEN",
            help="Allow changing the index with 'Authorization: Bearer TOKEN' "
            "(prefer the ARTSIM_TOKEN variable: options show in the process list).",
        ),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", min=0.01, help="Largest accepted upload.")
    ] = 10.0,
    run: Annotated[
        Path | None,
        typer.Option("--run", help="Run folder of the model (default: the one that built it)."),
    ] = None,
) -> None:
    """Serve search, score and the web page for an index (docs at /docs)."""
    import uvicorn

    if token is not None and len(token) < 8:
        raise UserError("--token is too short: use at least 8 characters")
    app = create_app(index, token=token, max_upload_bytes=int(max_upload_mb * 1024 * 1024), run=run)
    mode = "read-write (token required)" if token else "read-only"
    err_console.print(
        f"serving {index} ({app.state.index.count()} originals, model "
        f"{app.state.index.model_id}, {mode}) on http://{host}:{port}/  (API docs: /docs)"
    )
    uvicorn.run(app, host=host, port=port, log_level="info")


app = typer.Typer(add_completion=False)
app.command()(serve_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``artsim serve`` in-process: ``main(["--index", "indexes/demo", "--port", "8080"])``."""
    return run_app(app, argv, prog_name="artsim serve")
