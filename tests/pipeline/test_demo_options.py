"""`artsim demo`'s training options are the config's fields, generated (as `artsim train`'s):
every field but the ones the demo sets itself is a flag, and a bad value stops the demo in one
line before its first step builds anything."""

from __future__ import annotations

import dataclasses

from artsim.cli import main
from artsim.cli.pipeline import DEMO_OWNED, demo_command
from artsim.training.config import TrainConfig, flag_of


def test_every_training_field_but_the_demos_own_is_a_demo_option():
    parameters = demo_command.__signature__.parameters
    assert "data" not in parameters and "split" not in parameters  # the demo builds its own
    assert parameters["out"].default.name == "demo"  # its own run folder, runs/demo
    for field in dataclasses.fields(TrainConfig):
        if field.name not in DEMO_OWNED:
            option = parameters[field.name].annotation.__metadata__[0]
            # in an Annotated option typer takes the first declaration in ``default``
            declared = [option.default, *option.param_decls]
            assert declared[0].split("/")[0] == flag_of(field.name), field.name
            assert field.metadata["help"] in option.help, field.name


def test_a_bad_training_option_stops_the_demo_before_it_builds_anything(tmp_path, capsys):
    data = tmp_path / "data"
    code = main(["demo", "--data-dir", str(data), "--out", str(tmp_path / "run"), "--lr", "-1"])
    assert code != 0
    assert "--lr must be a positive number, got -1" in capsys.readouterr().err
    assert not data.exists() and not (tmp_path / "run").exists()
