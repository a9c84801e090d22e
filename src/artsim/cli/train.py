"""``artsim train``: train the multimodal triplet model on a manifest (:mod:`artsim.training`)."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from artsim import runfolder
from artsim.cli.commands import run_app
from artsim.cli.progress import RichReporter
from artsim.training.config import TrainConfig, flag_of

# artsim.training (torch, Lightning) is imported by the functions that train: `--help` needs none of it

console = Console(highlight=False)

SEED_DOCUMENT_TABLE_ROWS = [
    ("epochs completed", "epochs_completed"),
    ("final learning rate", "final_lr"),
    ("train loss", "train/loss"),
    ("train triplet accuracy", "train/triplet_acc"),
    ("validation loss", "val/loss"),
    ("validation triplet accuracy", "val/triplet_acc"),
    ("image loss / accuracy", ("val/image_loss", "val/image_acc")),
    ("text loss / accuracy", ("val/text_loss", "val/text_acc")),
    ("cross-modal loss / accuracy", ("val/cross_loss", "val/cross_acc")),
    ("image-to-text accuracy (i2t)", "val/i2t_acc"),
    ("text-to-image accuracy (t2i)", "val/t2i_acc"),
]


def seed_document_table(summary: dict[str, Any], title: str = "the seed's figures") -> Table:
    """The seed's table of figures for one run (final epoch, like the seed reports them)."""
    final = {
        **summary.get("final", {}),
        **{k: summary.get(k) for k in ("epochs_completed", "final_lr")},
    }
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")

    def show(key: str) -> str:
        value = final.get(key)
        if value is None:
            return "-"
        if key == "epochs_completed":
            return str(value)
        return f"{value:.5g}"

    for label, keys in SEED_DOCUMENT_TABLE_ROWS:
        text = " / ".join(show(k) for k in keys) if isinstance(keys, tuple) else show(keys)
        table.add_row(label, text)
    table.caption = (
        f"stopped by {summary.get('stop_reason')}; best epoch {summary.get('best_epoch')}"
    )
    return table


def train_with_progress(
    config, resume: bool = False, overwrite: bool = False, resume_with_changes: bool = False
):
    """:func:`artsim.training.run.train_run` with rich bars (features, epochs) and notes."""
    from lightning.pytorch.callbacks import RichProgressBar

    from artsim.training.run import train_run
    from artsim.training.stage import is_global_zero

    enabled = config.progress and is_global_zero()
    with RichReporter(console, enabled=enabled) as reporter:
        return train_run(
            config,
            resume=resume,
            resume_with_changes=resume_with_changes,
            overwrite=overwrite,
            reporter=reporter,
            progress_bar=lambda: RichProgressBar(leave=False),
        )


def _shown(value: Any) -> str:
    """A default as the help shows it."""
    if isinstance(value, dict):
        return "default " + ",".join(f"{k}={v:g}" for k, v in value.items())
    return "default " + ("none" if value is None else str(value))


def config_parameters() -> list[inspect.Parameter]:
    """One ``--flag`` per :class:`~artsim.training.config.TrainConfig` field, its help from the
    field's metadata and its default shown (the option's own default is None: not given, so the
    YAML file or the field's default applies)."""
    hints = typing.get_type_hints(TrainConfig)
    defaults = asdict(TrainConfig())
    parameters = []
    for field in dataclasses.fields(TrainConfig):
        kind = hints[field.name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
            kind = next(k for k in typing.get_args(kind) if k is not type(None))
        base = typing.get_origin(kind) or kind
        default = defaults[field.name]
        text = f"{field.metadata['help']} ({_shown(default) if default != '' else 'required'})"
        flag = flag_of(field.name)
        if base is dict:  # loss_weights: PART=WEIGHT, repeatable
            annotation = list[str] | None
            info = typer.Option(flag, help=f"PART=WEIGHT, repeatable: {text}")
        elif base is bool:
            annotation = bool | None
            info = typer.Option(f"{flag}/--no-{flag[2:]}", help=text, show_default=False)
        else:
            annotation = base | None
            info = typer.Option(flag, help=text, show_default=False)
        parameters.append(
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[annotation, info],
            )
        )
    return parameters


RUN_PARAMETERS = [
    inspect.Parameter(
        "config",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[str | None, typer.Option("--config", help="YAML file of options")],
    ),
    inspect.Parameter(
        "resume",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool, typer.Option("--resume", help="continue from RUN_DIR/checkpoints/last.ckpt")
        ],
    ),
    inspect.Parameter(
        "resume_with_changes",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option(
                "--resume-with-changes",
                help="resume although options differ from the run's (recorded in changes.log)",
            ),
        ],
    ),
    inspect.Parameter(
        "overwrite",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option("--overwrite", help="replace the run files already in a non-empty --out"),
        ],
    ),
]


def train_command(**given: Any) -> int:
    """Train the multimodal triplet model on a manifest."""
    from artsim.training.config import parse_loss_weights, resolve_config
    from artsim.training.stage import is_global_zero

    options = {field.name: given[field.name] for field in dataclasses.fields(TrainConfig)}
    if options["loss_weights"]:
        options["loss_weights"] = parse_loss_weights(options["loss_weights"])
    resolved = resolve_config(given["config"], **options)
    run_dir = train_with_progress(
        resolved,
        resume=given["resume"],
        overwrite=given["overwrite"],
        resume_with_changes=given["resume_with_changes"],
    )
    if is_global_zero():
        summary = runfolder.read_summary(run_dir)
        console.print(
            seed_document_table(summary, title=f"{run_dir}: the seed's figures (validation split)")
        )
        console.print(f"model: {run_dir / 'model.safetensors'}")
    return 0


# the options are the config's fields, generated: a flag can never be accepted and ignored
train_command.__signature__ = inspect.Signature(
    [*config_parameters(), *RUN_PARAMETERS], return_annotation=int
)
train_command.__annotations__ = {
    parameter.name: parameter.annotation
    for parameter in train_command.__signature__.parameters.values()
} | {"return": int}


app = typer.Typer(add_completion=False)
app.command("train")(train_command)


def main(argv: list[str] | None = None) -> int:
    """``artsim train ...`` in-process."""
    return run_app(app, argv, prog_name="artsim train")
