"""A sweep's analysis: per figure and split, the mean over seeds with a 95% t-interval, and a
plain verdict ("80/20 is better on X; no difference beyond noise on Y").

The seed compared one 80/20 run with one 60/40 run; a 0.4% difference between two single runs
says nothing about noise. The ``sweep`` command (:mod:`artsim.cli.sweep`) trains each split with
several seeds into ``OUT/vf{fraction}_s{seed}/`` and evaluates them; this module reads those run
folders and writes ``OUT/sweep.json``, ``OUT/sweep.md`` (English and Spanish) and
``OUT/sweep.png`` (:func:`write_sweep`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from artsim import runfolder
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
from artsim.report.reading import load_run
from artsim.report.text import LANGS, label, num, say
from artsim.runfolder import SEED_DOCUMENT_FIGURES, clean_json

SWEEP_FIGURES = (*SEED_DOCUMENT_FIGURES, *EVAL_FIGURES)
PLOT_FIGURES = (
    "val/loss",
    "val/triplet_acc",
    "val/cross_acc",
    "eval/fused/recall@1",
    "eval/fused/mrr",
    "verification/fused/roc_auc",
)


def run_name(val_fraction: float, seed: int) -> str:
    """The folder of one sweep run: ``vf0.2_s0``."""
    return f"vf{val_fraction:g}_s{seed}"


def split_name(val_fraction: float) -> str:
    """``0.2`` -> ``"80/20"`` (train/validation, as the seed names its splits)."""
    val = round(val_fraction * 100, 1)
    return f"{100 - val:g}/{val:g}"


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


def cell_text(cell: dict[str, Any] | None) -> str:
    """A summary cell as ``mean [low, high] (n=N)``."""
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
            row = [label(lang, figure), *(cell_text(cells.get(s)) for s in splits)]
            lines.append("| " + " | ".join(row) + " |")
        lines += ["", f"## {say(lang, 'h_verdicts')}", ""]
        lines += [f"- {verdict['text']}" for verdict in result["verdicts"][lang]]
        lines += ["", "![sweep](sweep.png)", "", "---", ""]
    return "\n".join(lines).rstrip("-\n ") + "\n"


def write_sweep(
    out: str | Path,
    data: str | Path,
    val_fractions: Sequence[float],
    seeds: Sequence[int],
    runs: list[dict[str, Any]],
) -> dict[str, Any]:
    """Read the sweep's run folders and write ``sweep.json``, ``sweep.png`` and ``sweep.md``.

    ``runs`` are the records of the runs (``val_fraction``, ``seed``, ``run`` folder, ``status``);
    those whose folder holds no ``summary.json`` count in the records but not in the figures.
    Returns what ``sweep.json`` holds.
    """
    out = Path(out)
    figures_by_config: dict[float, list[dict[str, float | None]]] = {}
    for record in runs:
        run_dir = Path(record["run"])
        if (run_dir / runfolder.SUMMARY_FILE).is_file():
            figures_by_config.setdefault(record["val_fraction"], []).append(
                run_figures(load_run(run_dir))
            )
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
