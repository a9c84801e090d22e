"""``artsim demo``: the main job end to end on the real demo corpus (a command over the library).

Debian's clip art and Tux Paint stamps -> generated stand-ins -> an 80/20 group split -> the
triplet model -> evaluation on the validation groups (with a calibrated threshold), on the
same groups through the held-out transform family, and on an external set
never trained on (art4apps, through the held-out family), each next to the frozen towers ->
reports in English and Spanish -> a search index of the originals -> one sample search.
Every step reuses what an earlier run of the demo left, when it is still valid.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.rule import Rule

from artsim import runfolder
from artsim.cli.commands import run_app
from artsim.cli.evaluate import baseline_table, evaluate_with_progress, result_table
from artsim.cli.index import calibration_lines
from artsim.cli.progress import RichReporter
from artsim.cli.search import search_command
from artsim.cli.train import config_parameters, seed_document_table, train_with_progress
from artsim.data.corpora.demo import build_demo_corpus
from artsim.data.corpora.folder import build_external_corpus
from artsim.data.families.heldout.derive import derive_heldout_manifest
from artsim.data.manifest.manifest import load_manifest
from artsim.errors import DataError
from artsim.training.config import TrainConfig

if TYPE_CHECKING:
    from artsim.eval.result import EvalResult

# artsim.training, artsim.report and artsim.index (torch, Lightning, matplotlib, faiss) are imported
# when the demo runs: `artsim demo --help` needs none of them

console = Console(highlight=False)


def _step(title: str) -> float:
    console.print(Rule(title))
    return time.perf_counter()


def _done(started: float) -> None:
    console.print(f"[dim]({time.perf_counter() - started:.0f} s)[/]")


def _trained(run_dir: Path, manifest: Path, config) -> bool:
    """A finished run of the same data and options can be reused as it is."""
    summary = runfolder.read_summary(run_dir)
    if not (summary and runfolder.read_config(run_dir) and runfolder.has_model(run_dir)):
        return False
    same_options = _options(summary.get("config", {})) == _options(asdict(config))
    return same_options and summary.get("data_fingerprint") == load_manifest(manifest).fingerprint()


def _options(values: dict) -> dict:
    """Options that change what a run learns (whether a progress bar was shown does not)."""
    return {key: value for key, value in values.items() if key != "progress"}


def _sample_query(run_dir: Path, manifest_path: Path) -> tuple[Path, str] | None:
    """A generated item of the validation groups: the model never saw its group."""
    val_ids = {
        item_id for item_id, side in runfolder.read_split_ids(run_dir).items() if side == "val"
    }
    manifest = load_manifest(manifest_path, check_images=False)
    for item in manifest.generated():
        if item.id in val_ids:
            return item.image, item.text
    return None


def _val_groups(run_dir: Path, manifest_path: Path) -> set[str]:
    """Groups of the run's validation side (never trained on, never used to choose the model)."""
    val_ids = {
        item_id for item_id, side in runfolder.read_split_ids(run_dir).items() if side == "val"
    }
    manifest = load_manifest(manifest_path, check_images=False)
    return {item.group for item in manifest.items if item.id in val_ids}


def _print_generalisation(result: EvalResult) -> None:
    """Trained vs frozen vs hash, and the tasks below frozen, for one evaluation."""
    console.print(baseline_table(result))
    generalisation = result.generalisation
    if generalisation.below_frozen:
        console.print(
            f"[bold red]BELOW FROZEN[/] on {result.name}: "
            f"{', '.join(generalisation.below_frozen)} (recall@1)"
        )
    if generalisation.lower_within_chance:
        console.print(
            f"lower than frozen within chance on {result.name} (sign test p >= 0.05): "
            f"{', '.join(generalisation.lower_within_chance)}"
        )


def _has_calibration_part(run_dir: Path) -> bool:
    return runfolder.CALIB in set(runfolder.read_split_ids(run_dir).values())


# the demo builds its own corpus and run folder: these training fields are its own options
DEMO_OWNED = ("data", "out", "split")


def demo_command(**given: Any) -> int:
    """Build the demo corpus, train, evaluate, report, index and search: the whole job."""
    from artsim.training.config import resolve_config

    begun = time.perf_counter()
    out, data_dir = given["out"], given["data_dir"]
    # every training option is checked before the first step builds anything
    config = resolve_config(
        data=str(data_dir / "manifest.csv"), out=str(out), **_training_options(given)
    )
    seed = config.seed
    manifest = _corpus_step(data_dir, given["max_originals"], seed)
    _train_step(dataclasses.replace(config, data=str(manifest)), manifest, given["retrain"])
    _evaluate_step(out, manifest)
    _generalisation_step(out, manifest, given["heldout_dir"] or data_dir.parent / "heldout")
    if given["external"]:
        _external_step(out, given["external_dir"], seed)
    else:
        _step("5. external check: skipped (--no-external)")
    english, spanish = _reports_step(out)
    index_dir = _index_step(out, manifest)
    _sample_step(out, manifest, index_dir)
    console.print(Rule("done"))
    console.print(f"report (English): {english['html']}\nreport (Spanish): {spanish['html']}")
    console.print(
        f"search page: artsim serve --index {index_dir}  then open http://127.0.0.1:8000/\n"
        f"total time {time.perf_counter() - begun:.0f} s"
    )
    return 0


def _training_options(given: dict[str, Any]) -> dict[str, Any]:
    """The training options given on the command line (the rest keep the config's defaults)."""
    from artsim.training.config import parse_loss_weights

    training = {name: given[name] for name in DEMO_TRAINING_FIELDS if given.get(name) is not None}
    if training.get("loss_weights"):
        training["loss_weights"] = parse_loss_weights(training["loss_weights"])
    return training


def _corpus_step(data_dir: Path, max_originals: int | None, seed: int) -> Path:
    """Step 1: the demo corpus from Debian's clip art; returns its manifest."""
    started = _step("1. demo corpus (Debian's openclipart-png and tuxpaint-stamps-default)")
    with RichReporter(console, transient=True) as reporter:
        manifest = build_demo_corpus(
            data_dir, max_originals=max_originals, seed=seed, reporter=reporter
        )
    _done(started)
    return manifest


def _train_step(config: TrainConfig, manifest: Path, retrain: bool) -> None:
    """Step 2: train the demo's run (or reuse it when it holds this very run)."""
    out = Path(config.out)
    val = config.val_fraction
    started = _step(f"2. training ({1 - val:.0%}/{val:.0%} split by group)")
    if not retrain and _trained(out, manifest, config):
        console.print(f"{out} already holds this run; --retrain trains it again")
    else:
        train_with_progress(config, overwrite=True)  # the demo's own run: retrain replaces it
    summary = runfolder.read_summary(out)
    console.print(
        seed_document_table(
            summary, title="the seed's figures, validation groups never seen in training"
        )
    )
    _done(started)


def _evaluate_step(out: Path, manifest: Path) -> None:
    """Step 3: the validation groups, and the calibration part that sets the verdicts."""
    started = _step(
        "3. evaluation: each generated item of the validation groups asks for its original"
    )
    result = evaluate_with_progress(out, manifest, split="val")
    console.print(result_table(result))
    if _has_calibration_part(out):
        # the verdict's thresholds: set on groups that neither trained nor chose the model
        calibrated = evaluate_with_progress(out, manifest, split="calib")
        console.print(
            f"calibration part: {calibrated.counts.queries} queries -> {calibrated.calibration}"
        )
    _done(started)


def _generalisation_step(out: Path, manifest: Path, heldout_dir: Path) -> None:
    """Step 4: the validation groups through the held-out transform family."""
    started = _step(
        "4. generalisation: the validation groups through the held-out transform family "
        "(other code than training's)"
    )
    val_groups = _val_groups(out, manifest)
    heldout_val = derive_heldout_manifest(
        load_manifest(manifest, check_images=False), heldout_dir / "val", groups=val_groups
    )
    _print_generalisation(evaluate_with_progress(out, heldout_val, name="heldout-val"))
    _done(started)


def _external_step(out: Path, external_dir: Path, seed: int) -> None:
    """Step 5: art4apps, a style never trained on, through the held-out family."""
    started = _step(
        "5. external check: art4apps illustrations (Debian's pysiogame), never trained on"
    )
    try:
        with RichReporter(console, transient=True) as reporter:
            # Another style *and* transformations written apart from training: the held-out
            # family (one external build: a second one with the training family cost about a
            # minute of the demo's ten).
            external = build_external_corpus(
                external_dir, seed=seed, family="heldout", reporter=reporter
            )
    except DataError as error:  # the demo goes on without it; say why
        console.print(f"[yellow]skipped: {error}[/]")
    else:
        result = evaluate_with_progress(out, external, name="external-art4apps-heldout")
        console.print(result_table(result))
        _print_generalisation(result)
    _done(started)


def _reports_step(out: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Step 6: the reports in English and Spanish."""
    from artsim.report.report import build_report

    started = _step("6. reports")
    english = build_report(out, lang="en")
    spanish = build_report(out, lang="es")
    _done(started)
    return english, spanish


def _index_step(out: Path, manifest: Path) -> Path:
    """Step 7: the search index of the originals, calibrated on the collection itself."""
    from artsim.index.build import build_index
    from artsim.index.calibrate import calibrate_index

    started = _step("7. search index of the originals")
    index_dir = out / "index"
    with RichReporter(console, remaining=True, description_width=22) as reporter:
        index = build_index(out, manifest, index_dir, force=True, reporter=reporter)
    console.print(f"{index.count()} originals indexed in {index_dir}")
    try:
        # verdicts calibrated on the indexed collection itself (index.json)
        calibration = calibrate_index(index, index.load_embedder())
        for line in calibration_lines(calibration.to_json()):
            console.print(line)
    finally:
        index.close()
    _done(started)
    return index_dir


def _sample_step(out: Path, manifest: Path, index_dir: Path) -> None:
    """Step 8: a generated image of a validation group and its prompt, searched."""
    sample = _sample_query(out, manifest)
    if sample is not None:
        image, text = sample
        _step("8. a sample search: a generated image of a validation group, and its prompt")
        console.print(f"query image: {image}\nquery prompt: {text!r}")
        search_command(index=index_dir, image=image, text=text or None, k=5)


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


DEMO_TRAINING_FIELDS = tuple(
    field.name for field in dataclasses.fields(TrainConfig) if field.name not in DEMO_OWNED
)
# the demo's own options, then every training option (generated from the config's fields, as
# `artsim train`'s are: a flag can never be accepted and ignored)
demo_command.__signature__ = inspect.Signature(
    [
        _option("out", Annotated[Path, typer.Option(help="run folder")], Path("runs/demo")),
        _option(
            "data_dir",
            Annotated[Path, typer.Option(help="where the demo corpus is built")],
            Path("data/demo"),
        ),
        _option(
            "external_dir",
            Annotated[
                Path,
                typer.Option(
                    help="where the external evaluation set (art4apps, held-out family) is built"
                ),
            ],
            Path("data/external"),
        ),
        _option(
            "heldout_dir",
            Annotated[
                Path | None,
                typer.Option(
                    help="where the held-out-family sets are built (default: heldout/ beside "
                    "the corpus)"
                ),
            ],
            None,
        ),
        _option(
            "max_originals",
            Annotated[int | None, typer.Option(help="originals in the corpus (default 1600)")],
            None,
        ),
        _option(
            "external",
            Annotated[
                bool,
                typer.Option("--external/--no-external", help="also evaluate on the external set"),
            ],
            True,
        ),
        _option(
            "retrain",
            Annotated[bool, typer.Option("--retrain", help="train again even if a run exists")],
            False,
        ),
        *(p for p in config_parameters() if p.name in DEMO_TRAINING_FIELDS),
    ],
    return_annotation=int,
)
demo_command.__annotations__ = {
    p.name: p.annotation for p in demo_command.__signature__.parameters.values()
} | {"return": int}

app = typer.Typer(add_completion=False)
app.command("demo")(demo_command)


def main(argv: list[str] | None = None) -> int:
    """``artsim demo ...`` in-process."""
    return run_app(app, argv, prog_name="artsim demo")
