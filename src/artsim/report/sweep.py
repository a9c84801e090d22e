"""``artsim sweep``: train every (validation fraction, seed) pair and say which split is better.

The seed compared one 80/20 run with one 60/40 run; a 0.4% difference between two single runs
says nothing about noise. A sweep trains each split with several seeds into
``OUT/vf{fraction}_s{seed}/`` (combinations whose ``summary.json`` exists are skipped, so an
interrupted sweep resumes), evaluates each run's validation split, then writes ``OUT/sweep.json``,
``OUT/sweep.md`` (English and Spanish) and ``OUT/sweep.png``: per figure and split, the mean over
seeds with a 95% t-interval, and a plain verdict ("80/20 is better on X; no difference beyond
noise on Y").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from artsim.commands import run_app
from artsim.errors import UserError
from artsim.eval.evaluate import clean_json, evaluate_run
from artsim.report import plots
from artsim.report.compare import (
    EVAL_FIGURES,
    SIGNIFICANCE,
    better_direction,
    mean_and_sd,
    run_figures,
    t_interval,
    welch_t_test,
)
from artsim.report.report import SEED_FIGURES, load_run
from artsim.report.text import LANGS, label, num, say

console = Console(highlight=False)

SWEEP_FIGURES = (*SEED_FIGURES, *EVAL_FIGURES)
PLOT_FIGURES = (
    "val/loss",
    "val/triplet_acc",
    "val/cross_acc",
    "eval/fused/recall@1",
    "eval/fused/mrr",
    "verification/fused/roc_auc",
)

TrainFunction = Callable[[Any], Path]


def run_name(val_fraction: float, seed: int) -> str:
    """The folder of one sweep run: ``vf0.2_s0``."""
    return f"vf{val_fraction:g}_s{seed}"


def split_name(val_fraction: float) -> str:
    """``0.2`` -> ``"80/20"`` (train/validation, as the seed names its splits)."""
    val = round(val_fraction * 100, 1)
    return f"{100 - val:g}/{val:g}"


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
    from artsim.train.config import TrainConfig  # the train layer is only needed to train

    return Path(train(TrainConfig(**config_fields)))


def _default_train() -> TrainFunction:
    from artsim.train.run import train_run  # lightning is heavy: import only when training

    return train_run


def summarise(
    figures_by_config: dict[float, list[dict[str, float | None]]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{figure: {split: {mean, sd, low, high, n, values}}}`` over seeds."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for figure in SWEEP_FIGURES:
        cells = {}
        for fraction, runs in figures_by_config.items():
            values = [run[figure] for run in runs if run.get(figure) is not None]
            if not values:
                continue
            mean, sd = mean_and_sd(values)
            interval = t_interval(values)
            cells[split_name(fraction)] = {
                "mean": mean,
                "sd": sd if len(values) > 1 else None,
                "low": interval[0] if interval else None,
                "high": interval[1] if interval else None,
                "n": len(values),
                "values": values,
            }
        if cells:
            summary[figure] = cells
    return summary


def verdicts(summary: dict[str, dict[str, dict[str, Any]]], lang: str) -> list[dict[str, Any]]:
    """One plain verdict per figure: the best split against each other one."""
    out = []
    for figure, cells in summary.items():
        names = list(cells)
        if len(names) < 2:
            continue
        direction = better_direction(figure)
        if direction is None:
            ordered = names
        else:
            ordered = sorted(names, key=lambda n: cells[n]["mean"], reverse=direction == "higher")
        best = ordered[0]
        for other in ordered[1:]:
            a, b = cells[best], cells[other]
            p = welch_t_test(a["values"], b["values"])
            fields = {
                "figure": label(lang, figure),
                "a_name": best,
                "a_value": num(a["mean"]),
                "b_name": other,
                "b_value": num(b["mean"]),
            }
            if direction is None:
                kind, sentence = "neutral", say(lang, "verdict_neutral", **fields)
            elif p is None:
                kind, sentence = "one_seed", say(lang, "verdict_one_seed", **fields)
            elif p < SIGNIFICANCE and a["mean"] != b["mean"]:
                kind = "better"
                sentence = say(
                    lang,
                    "verdict_better",
                    figure=fields["figure"],
                    winner=best,
                    winner_value=num(a["mean"]),
                    loser_value=num(b["mean"]),
                )
            else:
                kind, sentence = "noise", say(lang, "verdict_noise", **fields)
            out.append(
                {
                    "figure": figure,
                    "best": best,
                    "other": other,
                    "p_value": p,
                    "kind": kind,
                    "text": sentence,
                }
            )
    return out


def _cell_text(cell: dict[str, Any] | None) -> str:
    if not cell:
        return "–"
    if cell["low"] is None:
        return f"{num(cell['mean'])} (n={cell['n']})"
    return f"{num(cell['mean'])} [{num(cell['low'])}, {num(cell['high'])}] (n={cell['n']})"


def sweep_markdown(result: dict[str, Any]) -> str:
    """sweep.md: the table and verdicts, in English then in Spanish."""
    splits = result["splits"]
    lines = []
    for lang in LANGS:
        lines += [f"# {say(lang, 'sweep_title', data=result['data'])}", ""]
        lines += [
            say(lang, "sweep_intro", n_configs=len(splits), n_seeds=len(result["seeds"])),
            "",
            say(lang, "sweep_caveat"),
            "",
        ]
        lines.append("| " + " | ".join([say(lang, "col_figure"), *splits]) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * len(splits)) + "|")
        for figure, cells in result["summary"].items():
            row = [label(lang, figure), *(_cell_text(cells.get(s)) for s in splits)]
            lines.append("| " + " | ".join(row) + " |")
        lines += ["", f"## {say(lang, 'h_verdicts')}", ""]
        lines += [f"- {verdict['text']}" for verdict in result["verdicts"][lang]]
        lines += ["", "![sweep](sweep.png)", "", "---", ""]
    return "\n".join(lines).rstrip("-\n ") + "\n"


def run_sweep(
    data: str | Path,
    val_fractions: Sequence[float],
    seeds: Sequence[int],
    out: str | Path,
    *,
    max_epochs: int | None = None,
    image_tower: str | None = None,
    text_tower: str | None = None,
    evaluate: bool = True,
    train: TrainFunction | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or reuse) every combination, evaluate, aggregate; returns what sweep.json holds.

    ``train`` defaults to :func:`artsim.train.run.train_run`; tests pass a fake.

    >>> run_sweep("data/demo/manifest.csv", [0.2, 0.4], [0, 1, 2], "runs/sweep")  # doctest: +SKIP
    """
    out = Path(out)
    if not Path(data).is_file():
        raise UserError(f"manifest not found: {data}")
    for fraction in val_fractions:
        if not 0.0 < fraction < 1.0:
            raise UserError(f"--val-fractions: {fraction} is not between 0 and 1")
    out.mkdir(parents=True, exist_ok=True)
    trainer = train or _default_train()
    options = {
        key: value
        for key, value in (
            ("max_epochs", max_epochs),
            ("image_tower", image_tower),
            ("text_tower", text_tower),
        )
        if value is not None
    }
    runs: list[dict[str, Any]] = []
    figures_by_config: dict[float, list[dict[str, float | None]]] = {}
    for fraction in val_fractions:
        for seed in seeds:
            run_dir = out / run_name(fraction, seed)
            record: dict[str, Any] = {"val_fraction": fraction, "seed": seed, "run": str(run_dir)}
            if (run_dir / "summary.json").is_file():
                record["status"] = "reused"
            else:
                console.print(f"training {run_dir.name} ({split_name(fraction)}, seed {seed})")
                fields = {
                    "data": str(data),
                    "out": str(run_dir),
                    "val_fraction": fraction,
                    "seed": seed,
                    **options,
                }
                try:
                    run_dir = _train_one(trainer, fields)
                    record["status"] = "trained"
                except UserError as error:  # one failed run (NaN loss...) does not stop a sweep
                    record["status"] = f"failed: {error}"
                    console.print(f"[yellow]{run_dir.name}: {error}[/]", markup=True)
                    if not (run_dir / "summary.json").is_file():
                        runs.append(record)
                        continue
            if evaluate and (run_dir / "model.safetensors").is_file():
                eval_file = run_dir / "eval" / "val.json"
                if not eval_file.is_file():
                    try:
                        evaluate_run(run_dir, split="val", progress=progress)
                    except UserError as error:
                        record["evaluation"] = f"failed: {error}"
            figures_by_config.setdefault(fraction, []).append(run_figures(load_run(run_dir)))
            runs.append(record)
    summary = summarise(figures_by_config)
    result = {
        "data": str(data),
        "val_fractions": list(val_fractions),
        "seeds": list(seeds),
        "splits": [split_name(f) for f in val_fractions if f in figures_by_config],
        "runs": runs,
        "summary": summary,
        "verdicts": {lang: verdicts(summary, lang) for lang in LANGS},
    }
    result = clean_json(result)
    (out / "sweep.json").write_text(
        json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )
    names = {name: name for name in result["splits"]}
    (out / "sweep.png").write_bytes(plots.plot_sweep(summary, PLOT_FIGURES, "en", names))
    (out / "sweep.md").write_text(sweep_markdown(result), encoding="utf-8")
    return result


def sweep_command(
    data: Annotated[Path, typer.Option("--data", help="the manifest to train on")],
    out: Annotated[Path, typer.Option("--out", help="folder for the runs and the sweep report")],
    val_fractions: Annotated[
        str, typer.Option("--val-fractions", help="comma-separated validation fractions")
    ] = "0.2,0.4",
    seeds: Annotated[str, typer.Option("--seeds", help="comma-separated seeds")] = "0,1,2",
    max_epochs: Annotated[int | None, typer.Option("--max-epochs")] = None,
    image_tower: Annotated[str | None, typer.Option("--image-tower")] = None,
    text_tower: Annotated[str | None, typer.Option("--text-tower")] = None,
    evaluate: Annotated[
        bool, typer.Option("--evaluate/--no-evaluate", help="evaluate each run's val split")
    ] = True,
) -> int:
    """Train every split x seed combination and compare the splits with intervals."""
    fractions = parse_list(val_fractions, float, "--val-fractions")
    seed_list = parse_list(seeds, int, "--seeds")
    result = run_sweep(
        data,
        fractions,
        seed_list,
        out,
        max_epochs=max_epochs,
        image_tower=image_tower,
        text_tower=text_tower,
        evaluate=evaluate,
    )
    table = Table(title=say("en", "sweep_title", data=result["data"]))
    table.add_column("figure")
    for split in result["splits"]:
        table.add_column(split, justify="right")
    for figure, cells in result["summary"].items():
        table.add_row(label("en", figure), *(_cell_text(cells.get(s)) for s in result["splits"]))
    console.print(table)
    for verdict in result["verdicts"]["en"]:
        console.print(f"- {verdict['text']}")
    console.print(f"wrote {Path(out) / 'sweep.md'}, sweep.json, sweep.png")
    return 0


app = typer.Typer(add_completion=False, help="Sweep validation fractions and seeds.")
app.command("sweep")(sweep_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``artsim sweep ...`` in-process; returns the exit code."""
    return run_app(app, argv)
