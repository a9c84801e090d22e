"""``artsim --help`` lists every command without importing one: first contact stays fast."""

from __future__ import annotations

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
        "heavy = [m for m in ('torch', 'lightning', 'numpy', 'artsim.train') if m in sys.modules]\n"
        "print('HEAVY', heavy, code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "HEAVY [] 0" in done.stdout
    for name in COMMANDS:
        assert f" {name} " in done.stdout


def test_an_unknown_command_is_one_line_with_a_suggestion(capsys):
    from artsim.cli import main

    assert main(["sarch"]) == 2
    err = capsys.readouterr().err
    assert "No such command 'sarch'" in err and "search" in err
