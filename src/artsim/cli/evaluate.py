"""``artsim evaluate``: retrieval, verification and baselines of a run (:mod:`artsim.eval`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from artsim import runfolder
from artsim.cli.commands import run_app
from artsim.cli.progress import RichReporter

if TYPE_CHECKING:
    from artsim.eval.result import Comparison, EvalResult

# artsim.eval (torch) is imported by the functions that use it: `artsim evaluate --help` needs none

console = Console(highlight=False, soft_wrap=True)


def evaluate_with_progress(run, manifest=None, **options) -> EvalResult:
    """:func:`artsim.eval.evaluate.evaluate_run` with transient rich bars on stderr."""
    from artsim.eval.evaluate import evaluate_run

    with RichReporter(Console(stderr=True), transient=True) as reporter:
        return evaluate_run(run, manifest, reporter=reporter, **options)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


def result_table(result: EvalResult) -> Table:
    """A rich table of the tasks and baselines of an evaluation result."""
    from artsim.eval.tasks import TASKS

    table = Table(
        title=f"evaluation: {result.name} ({result.counts.queries} queries, "
        f"{result.counts.gallery} originals)"
    )
    columns = ("recall@1", "recall@5", "mrr", "map", "triplet_acc", "triplet_acc_hard")
    # short headers: the table must fit an 80-column terminal
    headers = ("R@1", "R@5", "MRR", "mAP", "trip", "hard", "AUC", "n")
    table.caption = (
        "R@k recall@k, trip/hard triplet accuracy with a random/the hardest negative, "
        "AUC verification ROC-AUC"
    )
    table.add_column("task")
    for header in headers:
        table.add_column(header, justify="right")
    rows: list[tuple[str, dict | None, dict | None]] = [
        (task, result.retrieval.tasks[task], result.verification.tasks[task]) for task in TASKS
    ]
    baselines = (("phash", "image"), ("frozen", "image"), ("frozen", "text"), ("frozen", "fused"))
    for kind, task in baselines:
        baseline = result.baselines.of(kind, task)
        rows.append((f"{kind} ({task})", baseline.figures if baseline else None, None))
    for label, figures, verification in rows:
        figures = figures or {}
        table.add_row(
            label,
            *[_fmt(figures.get(column)) for column in columns],
            _fmt((verification or {}).get("roc_auc")),
            _fmt(figures.get("n_queries")),
        )
    return table


def _flag(row: Comparison) -> str:
    if row.below_frozen:
        return "BELOW FROZEN"
    if row.lower_within_chance:
        return "lower, within chance"
    return ""


def _paired(row: Comparison) -> str:
    if row.wins is None:
        return "–"
    return f"+{row.wins} / -{row.losses} (p {row.p_value:.2g})"


def baseline_table(result: EvalResult) -> Table:
    """Per task: trained vs frozen towers vs perceptual hash (recall@1), the queries won and lost
    against frozen with the sign test's p, losses flagged."""
    table = Table(title="trained vs baselines (recall@1)")
    headers = ("task", "trained", "frozen", "phash", "trained-frozen", "won/lost", "flag")
    for header in headers:
        table.add_column(header, justify="left" if header in ("task", "flag") else "right")
    for task, row in result.generalisation.vs_baselines.items():
        minus = row.minus_frozen
        table.add_row(
            task,
            _fmt(row.trained),
            _fmt(row.frozen),
            _fmt(row.phash),
            "–" if minus is None else f"{minus:+.3f}",
            _paired(row),
            _flag(row),
        )
    return table


def evaluate_command(
    run: Annotated[Path, typer.Option("--run", help="run folder (model.safetensors + model.json)")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="manifest to evaluate on (default: the run's training data)"),
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="val, calib or train (the run's split.csv ids) or all")
    ] = "all",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the result to this JSON file")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the random negatives")] = 0,
) -> int:
    """Retrieval, verification and baselines of a trained run on a manifest."""
    result = evaluate_with_progress(run, data, split=split, seed=seed)
    console.print(result_table(result))
    console.print(baseline_table(result))
    generalisation = result.generalisation
    if generalisation.below_frozen:
        console.print(
            f"[bold red]BELOW FROZEN:[/] the trained model is below the frozen towers on "
            f"{', '.join(generalisation.below_frozen)} (recall@1)",
            markup=True,
        )
    if generalisation.lower_within_chance:
        console.print(
            "lower than frozen within chance (sign test p >= 0.05): "
            f"{', '.join(generalisation.lower_within_chance)}"
        )
    for reason, count in result.counts.skipped.items():
        console.print(f"skipped {count}: {reason}")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", markup=True)
    if result.counts.problems:
        console.print(f"{len(result.counts.problems)} manifest problem(s), see the JSON")
    if json_out is not None:
        runfolder.write_json(json_out, result.to_dict())
        console.print(f"wrote {json_out}")
    console.print(f"wrote {runfolder.evaluation_path(run, result.name)}")
    if result.calibration:
        console.print(f"wrote {result.calibration}")
    return 0


app = typer.Typer(add_completion=False, help="Evaluate a trained run.")
app.command("evaluate")(evaluate_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``artsim evaluate ...`` in-process; returns the exit code."""
    return run_app(app, argv)
