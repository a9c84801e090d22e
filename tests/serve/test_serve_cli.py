"""``artsim serve`` with a port that is taken: one line, and no "serving on ..." first."""

from __future__ import annotations

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
