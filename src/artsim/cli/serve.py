"""``artsim serve``: run the HTTP service for one index under uvicorn."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from artsim.cli.commands import RunOfIndexOption, err_console, run_app
from artsim.defaults import ADMISSION_TIMEOUT, DEFAULT_MAX_UPLOAD_BYTES, MAX_TEXT_CHARS
from artsim.errors import UserError

# the service (FastAPI, torch, faiss) is imported when it is served: `--help` needs none of it


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, or one line saying why it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UserError(f"--host {host}: not an address this machine has ({error})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        hint = " (another server is using it: choose another --port)" if port else ""
        raise UserError(f"cannot listen on {host}:{port}: {reason}{hint}") from None
    return sock


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
    ] = DEFAULT_MAX_UPLOAD_BYTES / (1024 * 1024),
    run: RunOfIndexOption = None,
    max_text_chars: Annotated[
        int,
        typer.Option(
            "--max-text-chars", min=1, help="Texts are cut to this many characters (then said so)."
        ),
    ] = MAX_TEXT_CHARS,
    admission_timeout: Annotated[
        float,
        typer.Option(
            "--admission-timeout",
            min=0.1,
            help="Seconds a request may wait for its turn to decode images (then a 503 with "
            "Retry-After).",
        ),
    ] = ADMISSION_TIMEOUT,
) -> None:
    """Serve search, score and the web page for an index (docs at /docs)."""
    import uvicorn

    from artsim.serve import app as service

    if token is not None and len(token) < 8:
        raise UserError("--token is too short: use at least 8 characters")
    # The port is taken before anything is loaded or printed: a busy port is one line, not
    # "serving on ..." followed by uvicorn's error.
    sock = listen(host, port)
    try:
        app = service.create_app(
            index,
            token=token,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            run=run,
            max_text_chars=max_text_chars,
            admission_timeout=admission_timeout,
        )
        port = sock.getsockname()[1]
        mode = "read-write (token required)" if token else "read-only"
        err_console.print(
            f"serving {index} ({len(app.state.index)} originals, model "
            f"{app.state.index.info.model_id}, {mode}) on http://{host}:{port}/  (API docs: /docs)"
        )
        server = uvicorn.Server(uvicorn.Config(app, log_level="info"))
        server.run(sockets=[sock])
    finally:
        sock.close()


app = typer.Typer(add_completion=False)
app.command()(serve_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``artsim serve`` in-process: ``main(["--index", "indexes/demo", "--port", "8080"])``."""
    return run_app(app, argv, prog_name="artsim serve")
