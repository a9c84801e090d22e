"""``artsim sweep``: train every (validation fraction, seed) pair and say which split is better.

Each split is trained with several seeds into ``OUT/vf{fraction}_s{seed}/`` (combinations whose
``summary.json`` exists are skipped, so an interrupted sweep resumes) and each run's validation
split is evaluated; :mod:`artsim.report.sweep` then reads the runs and writes ``OUT/sweep.json``,
``OUT/sweep.md`` (English and Spanish) and ``OUT/sweep.png``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from artsim import runfolder
from artsim.cli.commands import run_app
from artsim.cli.evaluate import evaluate_with_progress
from artsim.cli.progress import RichReporter
from artsim.cli.train import config_parameters
from artsim.errors import UserError
from artsim.progress import Reporter, or_silent
from artsim.report.text import label, say
from artsim.training.config import TrainConfig, flag_of

# artsim.report.sweep (matplotlib) and artsim.training (torch, Lightning) are imported where a sweep
# runs: `artsim sweep --help` needs neither

console = Console(highlight=False)
# the run options a sweep sets itself; every other option of `artsim train` is one of its own
SWEPT = ("data", "out", "val_fraction", "seed", "split")
COMMON_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in SWEPT)

TrainFunction = Callable[[Any], Path]


def parse_list(text: str, kind: type, option: str) -> list:
    """``"0.2,0.4"`` -> ``[0.2, 0.4]``; a UserError naming the option otherwise."""
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(
            f"{option}: expected comma-separated {kind.__name__}s, got {text!r}"
        ) from None
    if not values:
        raise UserError(f"{option}: give at least one value")
    return list(dict.fromkeys(values))


def _train_one(train: TrainFunction, config_fields: dict[str, Any]) -> Path:
    from artsim.training.config import TrainConfig

    return Path(train(TrainConfig(**config_fields)))


def _default_train() -> TrainFunction:
    from functools import partial

    from artsim.cli.train import train_with_progress  # lightning is heavy: only to train

    # a sweep's run folders are its own: one not reused is trained again from scratch
    return partial(train_with_progress, overwrite=True)


def run_sweep(
    data: str | Path,
    val_fractions: Sequence[float],
    seeds: Sequence[int],
    out: str | Path,
    *,
    max_epochs: int | None = None,
    image_tower: str | None = None,
    text_tower: str | None = None,
    options: dict[str, Any] | None = None,
    evaluate: bool = True,
    train: TrainFunction | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Train (or reuse) every combination, evaluate, aggregate; returns what sweep.json holds.

    ``options``: any other :class:`~artsim.training.config.TrainConfig` fields, the same for
    every run. ``train`` defaults to :func:`artsim.training.run.train_run` with progress bars;
    tests pass a fake. ``reporter`` receives a line per run trained or failed. The aggregation
    and the sweep files are :func:`artsim.report.sweep.write_sweep`.

    ``run_sweep("data/demo/manifest.csv", [0.2, 0.4], [0, 1, 2], "runs/sweep")`` trains six
    runs on the default towers, as ``artsim sweep`` does; two seeds of one split, an epoch each
    on the tiny towers, take seconds:

    >>> result = run_sweep("data/demo/manifest.csv", [0.5], [0, 1], tmp_path / "sweep",
    ...                    max_epochs=1, image_tower="tiny", text_tower="tiny",
    ...                    options={"progress": False})  # each run notes its split
    split: train ... (kept for calibrating verdicts)
    split: train ... (kept for calibrating verdicts)
    >>> result["splits"], [run["status"] for run in result["runs"]]
    (['50/50'], ['trained', 'trained'])
    >>> sorted(path.name for path in (tmp_path / "sweep").glob("sweep.*"))
    ['sweep.json', 'sweep.md', 'sweep.png']
    """
    from artsim.report.sweep import run_name, write_sweep

    out = Path(out)
    _check_inputs(data, val_fractions)
    out.mkdir(parents=True, exist_ok=True)
    trainer = train or _default_train()
    options = _run_options(options, max_epochs, image_tower, text_tower)
    reporter = or_silent(reporter)
    runs: list[dict[str, Any]] = []
    for fraction in val_fractions:
        for seed in seeds:
            run_dir = out / run_name(fraction, seed)
            record: dict[str, Any] = {"val_fraction": fraction, "seed": seed, "run": str(run_dir)}
            run_dir = _train_or_reuse(trainer, run_dir, record, data, options, reporter)
            if run_dir is None:  # failed before it wrote a summary
                runs.append(record)
                continue
            if evaluate and runfolder.has_model(run_dir):
                _evaluate_once(run_dir, record)
            runs.append(record)
    return write_sweep(out, data, val_fractions, seeds, runs)


def _check_inputs(data: str | Path, val_fractions: Sequence[float]) -> None:
    """A UserError for a missing manifest or a validation fraction outside (0, 1)."""
    if not Path(data).is_file():
        raise UserError(f"manifest not found: {data}")
    for fraction in val_fractions:
        if not 0.0 < fraction < 1.0:
            raise UserError(f"--val-fractions: {fraction} is not between 0 and 1")


def _run_options(
    options: dict[str, Any] | None,
    max_epochs: int | None,
    image_tower: str | None,
    text_tower: str | None,
) -> dict[str, Any]:
    """The options every run of the sweep gets; a UserError for one the sweep sets itself."""
    options = {
        key: value
        for key, value in (
            *(options or {}).items(),
            ("max_epochs", max_epochs),
            ("image_tower", image_tower),
            ("text_tower", text_tower),
        )
        if value is not None
    }
    for owned in SWEPT:
        if owned in options:
            raise UserError(f"{flag_of(owned)}: the sweep sets it for each run")
    return options


def _train_or_reuse(
    trainer: TrainFunction,
    run_dir: Path,
    record: dict[str, Any],
    data: str | Path,
    options: dict[str, Any],
    reporter: Reporter,
) -> Path | None:
    """Train one combination unless its summary.json exists; ``record["status"]`` says which
    (or why it failed). Returns the run folder, or ``None`` when a failed run left no summary."""
    from artsim.report.sweep import split_name

    if (run_dir / runfolder.SUMMARY_FILE).is_file():
        record["status"] = "reused"
        return run_dir
    fraction, seed = record["val_fraction"], record["seed"]
    reporter.note(f"training {run_dir.name} ({split_name(fraction)}, seed {seed})")
    fields = {"data": str(data), "out": str(run_dir), "val_fraction": fraction, "seed": seed}
    try:
        run_dir = _train_one(trainer, {**fields, **options})
        record["status"] = "trained"
    except UserError as error:  # one failed run (NaN loss...) does not stop a sweep
        record["status"] = f"failed: {error}"
        reporter.note(f"{run_dir.name}: {error}", "warning")
        if not (run_dir / runfolder.SUMMARY_FILE).is_file():
            return None
    return run_dir


def _evaluate_once(run_dir: Path, record: dict[str, Any]) -> None:
    """Evaluate a run's validation split unless ``eval/val.json`` exists; a failure is noted in
    ``record["evaluation"]``."""
    if runfolder.evaluation_path(run_dir, "val").is_file():
        return
    try:
        evaluate_with_progress(run_dir, split="val")
    except UserError as error:
        record["evaluation"] = f"failed: {error}"


def sweep_command(**given: Any) -> int:
    """Train every split x seed combination and compare the splits with intervals."""
    from artsim.report.sweep import cell_text
    from artsim.training.config import load_config_file, parse_loss_weights

    fractions = parse_list(given["val_fractions"], float, "--val-fractions")
    seed_list = parse_list(given["seeds"], int, "--seeds")
    options = load_config_file(given["config"]) if given["config"] else {}
    for owned in SWEPT:
        options.pop(owned, None)  # the file's data, out, split and seed give way to the sweep's
    options |= {
        name: given[name]
        for name in COMMON_FIELDS
        if given[name] is not None and name != "loss_weights"
    }
    if given["loss_weights"]:  # part by part, over the file's weights or the defaults
        base = options.get("loss_weights") or TrainConfig().loss_weights
        options["loss_weights"] = {**base, **parse_loss_weights(given["loss_weights"])}
    out = given["out"]
    result = run_sweep(
        given["data"],
        fractions,
        seed_list,
        out,
        options=options,
        evaluate=given["evaluate"],
        reporter=RichReporter(console, enabled=False),
    )
    table = Table(title=say("en", "sweep_title", data=result["data"]))
    table.add_column("figure")
    for split in result["splits"]:
        table.add_column(split, justify="right")
    for figure, cells in result["summary"].items():
        table.add_row(label("en", figure), *(cell_text(cells.get(s)) for s in result["splits"]))
    console.print(table)
    for verdict in result["verdicts"]["en"]:
        console.print(f"- {verdict['text']}")
    console.print(f"wrote {Path(out) / 'sweep.md'}, sweep.json, sweep.png")
    return 0


def _parameter(name: str, annotation, default) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


# the sweep's own options, then every run option it does not set itself (generated from the
# config's fields, as `artsim train`'s are)
sweep_command.__signature__ = inspect.Signature(
    [
        _parameter(
            "data", Annotated[Path, typer.Option("--data", help="the manifest to train on")], ...
        ),
        _parameter(
            "out",
            Annotated[Path, typer.Option("--out", help="folder for the runs and the sweep report")],
            ...,
        ),
        _parameter(
            "val_fractions",
            Annotated[
                str, typer.Option("--val-fractions", help="comma-separated validation fractions")
            ],
            "0.2,0.4",
        ),
        _parameter(
            "seeds", Annotated[str, typer.Option("--seeds", help="comma-separated seeds")], "0,1,2"
        ),
        _parameter(
            "evaluate",
            Annotated[
                bool,
                typer.Option("--evaluate/--no-evaluate", help="evaluate each run's val split"),
            ],
            True,
        ),
        _parameter(
            "config",
            Annotated[
                str | None,
                typer.Option("--config", help="YAML file of run options (the sweep's own win)"),
            ],
            None,
        ),
        *(p for p in config_parameters() if p.name in COMMON_FIELDS),
    ],
    return_annotation=int,
)
sweep_command.__annotations__ = {
    p.name: p.annotation for p in sweep_command.__signature__.parameters.values()
} | {"return": int}

app = typer.Typer(add_completion=False, help="Sweep validation fractions and seeds.")
app.command("sweep")(sweep_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``artsim sweep ...`` in-process; returns the exit code."""
    return run_app(app, argv)
