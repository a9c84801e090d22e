"""``artsim serve`` with a port that is taken: one line, and no "serving on ..." first."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from artsim.cli.serve import main


def test_a_taken_port_is_one_line_before_anything_is_served(built_index: Path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code = main(["--index", str(built_index), "--port", str(port)])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 2
    assert "serving" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0] and "--port" in lines[0]
    assert "Traceback" not in output


def test_admission_timeout_option_reaches_the_service(built_index: Path, monkeypatch):
    """--admission-timeout is how long a request waits for its turn to decode images; the
    service built by the command gets it (the server itself is not started here)."""
    import artsim.serve.app as service
    from artsim.serve.limits import ADMISSION_TIMEOUT

    seen = []

    def fake_create_app(index, **options):
        seen.append(options["admission_timeout"])
        raise SystemExit(0)  # stop before uvicorn starts

    # the command imports the service when it serves and calls service.create_app
    monkeypatch.setattr(service, "create_app", fake_create_app)
    for args, expected in ((["--admission-timeout", "5"], 5.0), ([], ADMISSION_TIMEOUT)):
        with contextlib.suppress(SystemExit):
            main(["--index", str(built_index), "--port", "0", *args])
        assert seen[-1] == expected
