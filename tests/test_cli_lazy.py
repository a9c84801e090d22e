"""``artsim --help`` lists every command without importing one, and a command's own help (or a
usage error) loads none of torch, Lightning, faiss, FastAPI...: first contact stays fast."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from artsim.cli import COMMANDS, load_command


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listed_help_is_the_commands_own(name):
    command = load_command(name)
    assert command.name == name
    own = command.get_short_help_str(limit=200)
    assert own == COMMANDS[name][2]


def test_the_top_level_help_lists_every_command_without_importing_torch():
    code = (
        "import sys\n"
        "from artsim.cli import main\n"
        "code = main(['--help'])\n"
        "heavy = [m for m in ('torch', 'lightning', 'numpy', 'artsim.training') if m in sys.modules]\n"
        "print('HEAVY', heavy, code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "HEAVY [] 0" in done.stdout
    for name in COMMANDS:
        assert f" {name} " in done.stdout


HEAVY = ("torch", "lightning", "faiss", "fastapi", "matplotlib", "transformers", "onnxruntime")


def _run_and_list_heavy(argv: list[str]) -> tuple[int, list[str]]:
    """``artsim.cli.main(argv)`` in a fresh interpreter: its exit code and the heavy modules loaded."""
    code = (
        "import json, sys\n"
        "from artsim.cli import main\n"
        f"code = main({argv!r})\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('RESULT', json.dumps([code, heavy]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    exit_code, heavy = json.loads(line.removeprefix("RESULT "))
    return exit_code, heavy


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_commands_own_help_imports_none_of_the_heavy_libraries(name):
    exit_code, heavy = _run_and_list_heavy([name, "--help"])
    assert exit_code == 0
    assert heavy == []


def test_an_unknown_option_is_a_usage_error_without_torch():
    exit_code, heavy = _run_and_list_heavy(["train", "--no-such-option"])
    assert exit_code == 2
    assert heavy == []


def test_an_unknown_command_is_one_line_with_a_suggestion(capsys):
    from artsim.cli import main

    assert main(["sarch"]) == 2
    err = capsys.readouterr().err
    assert "No such command 'sarch'" in err and "search" in err
