"""``artsim sweep`` with a fake train_run that writes run folders (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from artsim.cli import sweep
from artsim.cli.sweep import main, parse_list, run_sweep
from artsim.errors import UserError
from artsim.report.sweep import run_name, split_name


@pytest.fixture
def fake_train(report_manifest, write_run, make_rows):
    """A train_run stand-in: 80/20 clearly better on validation loss, seeds add a little noise."""
    calls: list = []

    def train(config) -> Path:
        calls.append(config)
        val_final = 0.08 if config.val_fraction < 0.3 else 0.12
        rows = make_rows(val_final=val_final + 0.001 * config.seed, seed=config.seed)
        return write_run(Path(config.out), Path(config.data), val_fraction=config.val_fraction,
                         seed=config.seed, rows=rows, config_extra={"max_epochs": config.max_epochs})  # fmt: skip

    train.calls = calls
    return train


def test_sweep_trains_each_combination_once_and_writes_its_report(
    tmp_path, report_manifest, fake_train
):
    out = tmp_path / "sweep"
    result = run_sweep(report_manifest, [0.2, 0.4], [0, 1, 2], out, max_epochs=3,
                       train=fake_train, evaluate=False)  # fmt: skip
    assert len(fake_train.calls) == 6
    assert {c.max_epochs for c in fake_train.calls} == {3}
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(
        run_name(f, s) for f in (0.2, 0.4) for s in range(3)
    )
    assert result["splits"] == ["80/20", "60/40"]
    cell = result["summary"]["val/loss"]["80/20"]
    assert cell["n"] == 3 and cell["low"] < cell["mean"] < cell["high"]
    verdicts = {v["figure"]: v for v in result["verdicts"]["en"]}
    assert verdicts["val/loss"]["kind"] == "better" and verdicts["val/loss"]["best"] == "80/20"
    assert verdicts["val/loss"]["text"].startswith("80/20 is better on validation loss")
    assert verdicts["epochs_completed"]["kind"] == "neutral"
    spanish = {v["figure"]: v["text"] for v in result["verdicts"]["es"]}
    assert spanish["val/loss"].startswith("80/20 es mejor en pérdida de validación")

    markdown = (out / "sweep.md").read_text(encoding="utf-8")
    assert "80/20 is better on validation loss" in markdown
    assert "80/20 es mejor en pérdida de validación" in markdown
    assert (out / "sweep.png").stat().st_size > 1000
    assert json.loads((out / "sweep.json").read_text())["seeds"] == [0, 1, 2]

    # complete combinations are skipped: a second call trains nothing
    again = run_sweep(report_manifest, [0.2, 0.4], [0, 1, 2], out, train=fake_train,
                      evaluate=False)  # fmt: skip
    assert len(fake_train.calls) == 6
    assert {r["status"] for r in again["runs"]} == {"reused"}


def test_one_seed_per_split_says_noise_cannot_be_judged(tmp_path, report_manifest, fake_train):
    result = run_sweep(report_manifest, [0.2, 0.4], [0], tmp_path / "one", train=fake_train,
                       evaluate=True)  # fmt: skip
    kinds = {v["kind"] for v in result["verdicts"]["en"]}
    assert kinds <= {"one_seed", "neutral"}
    assert "eval/fused/recall@1" in result["summary"]  # each run's val split was evaluated


def test_sweep_command(tmp_path, report_manifest, fake_train, monkeypatch, capsys):
    monkeypatch.setattr(sweep, "_default_train", lambda: fake_train)
    code = main(["--data", str(report_manifest), "--out", str(tmp_path / "s"),
                 "--val-fractions", "0.2,0.4", "--seeds", "0,1", "--no-evaluate"])  # fmt: skip
    assert code == 0 and (tmp_path / "s" / "sweep.md").is_file()
    assert main(["--data", str(report_manifest), "--out", str(tmp_path / "s"),
                 "--seeds", "zero"]) == 2  # fmt: skip
    assert "--seeds" in capsys.readouterr().err


def test_names_and_parsing():
    assert split_name(0.2) == "80/20" and split_name(0.4) == "60/40" and split_name(0.25) == "75/25"
    assert run_name(0.2, 1) == "vf0.2_s1"
    assert parse_list("0.2, 0.4,0.2", float, "--val-fractions") == [0.2, 0.4]
    with pytest.raises(UserError):
        parse_list("", int, "--seeds")


@pytest.mark.slow
def test_real_training_sweep_then_report_and_compare(tmp_path, report_manifest):
    """The whole chain on real (tiny) training: sweep -> evaluate -> report -> compare."""
    from artsim.report.compare import compare_runs
    from artsim.report.report import build_report

    out = tmp_path / "sweep"
    result = run_sweep(report_manifest, [0.25], [0, 1], out, max_epochs=2, image_tower="tiny",
                       text_tower="tiny")  # fmt: skip
    assert {r["status"] for r in result["runs"]} == {"trained"}
    assert result["summary"]["eval/fused/recall@1"]["75/25"]["n"] == 2
    run = out / run_name(0.25, 0)
    paths = build_report(run, lang="es")
    assert "sobreajuste" in paths["md"].read_text(encoding="utf-8")
    assert compare_runs([out / run_name(0.25, 0), out / run_name(0.25, 1)])["seed_only"]


def test_the_sweep_takes_every_run_option_of_train_and_passes_it_to_each_run(
    tmp_path, report_manifest, monkeypatch
):
    """Every TrainConfig field the sweep does not set itself is one of its flags, and reaches
    every run's config; the sweep's own data, split and seeds win over a config file's."""
    import dataclasses

    from artsim.training.config import TrainConfig, flag_of

    seen = []

    def stop(config) -> Path:
        seen.append(config)
        raise UserError("stopped before training")  # a failed run: the sweep goes on

    monkeypatch.setattr(sweep, "_default_train", lambda: stop)
    options = tmp_path / "options.yaml"
    options.write_text("data: elsewhere.csv\nseed: 9\nlr: 0.01\nmax_epochs: 7\n")
    argv = ["--data", str(report_manifest), "--out", str(tmp_path / "s"), "--val-fractions",
            "0.3", "--seeds", "4", "--no-evaluate", "--config", str(options),
            "--max-epochs", "2", "--loss-weight", "copy=0.5", "--no-progress"]  # fmt: skip
    main(argv)  # its one run fails on purpose: what counts is the config it was given
    assert len(seen) == 1
    config = seen[0]
    assert (config.data, config.val_fraction, config.seed) == (str(report_manifest), 0.3, 4)
    assert (config.lr, config.max_epochs, config.progress) == (0.01, 2, False)
    assert config.loss_weights == {**TrainConfig().loss_weights, "copy": 0.5}
    # every field but the swept ones is a flag of the sweep (data and out are its own)
    command = sweep.sweep_command.__signature__.parameters
    for field in dataclasses.fields(TrainConfig):
        if field.name not in ("data", "out"):
            assert (field.name in command) == (field.name not in sweep.SWEPT), flag_of(field.name)
