"""The seed's run-against-run comparison, figure by figure (``artsim compare RUN_A RUN_B``).

For each figure: both values, the relative change against the reference (the first run or group,
"32% lower"), which one is better (lower loss, higher accuracy) and, beyond the seed, whether the
difference is larger than the seed-to-seed spread. Runs that share a configuration except the seed
are grouped; with at least two seeds on each side Welch's t-test judges the difference, with one
run per side the comparison says plainly that noise cannot be judged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from artsim import runfolder
from artsim.errors import UserError
from artsim.eval.result import EvalResult
from artsim.report.reading import SEED_DOCUMENT_FIGURES, RunFolder, load_run
from artsim.report.text import join_list, label, num, pct, say

EVAL_FIGURES = (
    "eval/fused/recall@1",
    "eval/fused/recall@5",
    "eval/fused/mrr",
    "eval/fused/map",
    "eval/fused/triplet_acc_hard",
    "eval/image/recall@1",
    "eval/text/recall@1",
    "eval/i2t/recall@1",
    "eval/t2i/recall@1",
    "verification/fused/roc_auc",
    # ISC protocol (queries without an indexed original kept), cross-fitted: see eval.openset
    "open_set/fused/micro_ap",
    "open_set/fused/recall@p0.9",
    "open_set/image/micro_ap",
    "open_set/image/recall@p0.9",
)
OPEN_SET_METRICS = {
    "micro_ap": ("micro_ap",),
    "recall@p0.9": ("at_precision_0.9", "recall"),
    "recall@p0.95": ("at_precision_0.95", "recall"),
}
NEUTRAL_FIGURES = ("epochs_completed", "final_lr")
# Config keys that do not make two runs different experiments.
RUN_SPECIFIC_KEYS = {
    "seed",
    "out",
    "progress",
    "cache_dir",
    "devices",
    "num_nodes",
    "accelerator",
}
SIGNIFICANCE = 0.05


# --- statistics (no scipy: it is not a dependency) -----------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    # Lentz's continued fraction for the incomplete beta function (Numerical Recipes 6.4)
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (possibly fractional) degrees of freedom."""
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(probability: float, df: float) -> float:
    """The ``probability`` quantile of Student's t (bisection on the CDF)."""
    low, high = -1e3, 1e3
    for _ in range(200):
        middle = (low + high) / 2.0
        if student_t_cdf(middle, df) < probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def mean_and_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``nan`` sd for fewer than two values)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, sd


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """The t-interval of the mean over seeds; ``None`` with fewer than two values."""
    if len(values) < 2:
        return None
    mean, sd = mean_and_sd(values)
    half = student_t_quantile(0.5 + level / 2.0, len(values) - 1) * sd / math.sqrt(len(values))
    return mean - half, mean + half


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test; ``None`` when a side has fewer than two values."""
    if len(a) < 2 or len(b) < 2:
        return None
    mean_a, sd_a = mean_and_sd(a)
    mean_b, sd_b = mean_and_sd(b)
    var_a, var_b = sd_a**2 / len(a), sd_b**2 / len(b)
    if var_a + var_b == 0.0:
        return 1.0 if mean_a == mean_b else 0.0
    t = (mean_b - mean_a) / math.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (
        (var_a**2 / (len(a) - 1) if var_a else 0.0) + (var_b**2 / (len(b) - 1) if var_b else 0.0)
    )
    return 2.0 * student_t_cdf(-abs(t), df)


# --- figures of a run ----------------------------------------------------------------------------


def better_direction(figure: str) -> str | None:
    """``"lower"`` for losses, ``None`` for neutral figures (epochs, lr), else ``"higher"``."""
    if figure in NEUTRAL_FIGURES:
        return None
    return "lower" if "loss" in figure else "higher"


def relative_change(reference: float, value: float) -> float | None:
    """``(value - reference) / |reference|``; ``None`` when the reference is 0 or missing."""
    if reference is None or value is None or reference == 0:
        return None
    return (value - reference) / abs(reference)


def which_is_better(figure: str, reference: float, value: float) -> int:
    """1 if ``value`` is better than ``reference``, -1 if worse, 0 if equal or neutral."""
    direction = better_direction(figure)
    if direction is None or reference is None or value is None or reference == value:
        return 0
    improved = value < reference if direction == "lower" else value > reference
    return 1 if improved else -1


def run_figures(run: RunFolder) -> dict[str, float | None]:
    """The seed's figures (final epoch) plus evaluation figures when ``eval/val.json`` exists."""
    figures: dict[str, float | None] = {key: run.figure(key) for key in SEED_DOCUMENT_FIGURES}
    evaluation = EvalResult.from_dict(runfolder.read_evaluation(run.path, "val"))
    for key in EVAL_FIGURES:
        kind, task, metric = key.split("/")
        if kind == "open_set":
            value = evaluation.verification.open_set.get(task) or {}
            for part in OPEN_SET_METRICS[metric]:
                value = value.get(part) if isinstance(value, dict) else None
            figures[key] = value if isinstance(value, int | float) else None
            continue
        tasks = evaluation.retrieval.tasks if kind == "eval" else evaluation.verification.tasks
        value = (tasks.get(task) or {}).get(metric)
        figures[key] = value if isinstance(value, int | float) else None
    return {
        key: float(value) if isinstance(value, int | float) and math.isfinite(value) else None
        for key, value in figures.items()
    }


def expand_runs(paths: Sequence[str | Path]) -> list[RunFolder]:
    """Run folders from the arguments; a folder of runs (a sweep) stands for its runs."""
    runs = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not (path / runfolder.SUMMARY_FILE).is_file():
            children = sorted(p for p in path.iterdir() if (p / runfolder.SUMMARY_FILE).is_file())
            if children:
                runs.extend(load_run(child) for child in children)
                continue
        runs.append(load_run(path))
    return runs


def _experiment_key(run: RunFolder) -> str:
    config = {k: v for k, v in run.config.items() if k not in RUN_SPECIFIC_KEYS}
    if not config:  # no config.yaml: every run is its own experiment
        return str(run.path)
    return json.dumps(config, sort_keys=True, default=str)


@dataclass
class Group:
    """Runs of one configuration (seeds differ)."""

    name: str
    runs: list[RunFolder]

    @cached_property
    def figures(self) -> list[dict[str, float | None]]:
        return [run_figures(run) for run in self.runs]

    def values(self, figure: str) -> list[float]:
        """The figure of every run that has it."""
        return [v for figures in self.figures if (v := figures.get(figure)) is not None]


def group_runs(runs: Sequence[RunFolder]) -> tuple[list[Group], bool]:
    """Group runs by configuration except the seed; returns (groups, seed_only) where
    ``seed_only`` says every run had the same configuration (so each run is its own group)."""
    by_key: dict[str, list[RunFolder]] = {}
    for run in runs:
        by_key.setdefault(_experiment_key(run), []).append(run)
    if len(by_key) == 1 and len(runs) > 1:
        return [Group(run.name, [run]) for run in runs], True
    groups = list(by_key.values())
    if all(len(group) == 1 for group in groups):
        return [Group(group[0].name, group) for group in groups], False
    configs = [{k: v for k, v in g[0].config.items() if k not in RUN_SPECIFIC_KEYS} for g in groups]
    differing = sorted(
        {k for c in configs for k in c if any(c.get(k) != other.get(k) for other in configs)}
    )
    named = []
    for group, config in zip(groups, configs, strict=True):
        name = ", ".join(f"{k}={config.get(k)}" for k in differing) or group[0].name
        named.append(Group(name, group))
    return named, False


# --- the comparison ------------------------------------------------------------------------------


def compare_groups(groups: Sequence[Group]) -> list[dict[str, Any]]:
    """Each later group against the first, figure by figure (means over seeds)."""
    reference = groups[0]
    rows = []
    for other in groups[1:]:
        for figure in (*SEED_DOCUMENT_FIGURES, *EVAL_FIGURES):
            a, b = reference.values(figure), other.values(figure)
            if not a or not b:
                continue
            mean_a, sd_a = mean_and_sd(a)
            mean_b, sd_b = mean_and_sd(b)
            rows.append(
                {
                    "figure": figure,
                    "reference": reference.name,
                    "other": other.name,
                    "a": mean_a,
                    "b": mean_b,
                    "a_sd": sd_a if len(a) > 1 else None,
                    "b_sd": sd_b if len(b) > 1 else None,
                    "a_n": len(a),
                    "b_n": len(b),
                    "relative_change": relative_change(mean_a, mean_b),
                    "better": which_is_better(figure, mean_a, mean_b),
                    "p_value": welch_t_test(a, b),
                }
            )
    return rows


def compare_runs(run_dirs: Sequence[str | Path]) -> dict[str, Any]:
    """Compare runs (or groups of seeds); the reference is the first run or group.

    >>> result = compare_runs(["runs/vf0.4", "runs/vf0.2"])
    >>> [group["name"] for group in result["groups"]], result["repeats"]  # one seed each
    (['vf0.4', 'vf0.2'], False)
    >>> row = next(row for row in result["rows"] if row["figure"] == "val/loss")
    >>> row["reference"], row["other"], row["better"]  # vf0.2 ends with the lower loss
    ('vf0.4', 'vf0.2', 1)
    >>> row["relative_change"] == (row["b"] - row["a"]) / abs(row["a"])
    True
    """
    runs = expand_runs(run_dirs)
    if len(runs) < 2:
        raise UserError("compare needs at least two run folders")
    groups, seed_only = group_runs(runs)
    if len(groups) < 2:
        raise UserError("compare needs at least two different runs or configurations")
    return {
        "groups": [{"name": g.name, "runs": [str(r.path) for r in g.runs]} for g in groups],
        "seed_only": seed_only,
        "repeats": all(len(g.runs) >= 2 for g in groups),
        "rows": compare_groups(groups),
    }


def _value(mean: float, sd: float | None, n: int) -> str:
    if sd is None:
        return num(mean, 5)
    return f"{num(mean, 5)} ± {num(sd, 2)} (n={n})"


def _change(row: dict[str, Any], lang: str) -> str:
    change = row["relative_change"]
    if change is None:
        return "–"
    if change == 0:
        return say(lang, "change_same")
    digits = 1 if abs(change) >= 0.01 else 2
    key = "change_lower" if change < 0 else "change_higher"
    return say(lang, key, pct=pct(abs(change), lang, digits))


def _better(row: dict[str, Any]) -> str:
    return {1: row["other"], -1: row["reference"]}.get(row["better"], "–")


def _noise(row: dict[str, Any], lang: str) -> str:
    p = row["p_value"]
    if p is None:
        return say(lang, "noise_cannot_short")
    return say(lang, "noise_beyond" if p < SIGNIFICANCE else "noise_within", p=num(p, 2))


def comparison_table(result: dict[str, Any], lang: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison, in ``lang``."""
    multiple = len(result["groups"]) > 2
    # with one run per side every row would say "cannot be judged": the summary says it once
    judged = any(row["p_value"] is not None for row in result["rows"])
    header = [say(lang, "col_figure")]
    if multiple:
        header.append("vs")
    header += [
        result["groups"][0]["name"],
        say(lang, "col_value") if multiple else result["groups"][1]["name"],
        say(lang, "col_change"),
        say(lang, "col_better"),
    ]
    if judged:
        header.append(say(lang, "col_noise"))
    rows = []
    for row in result["rows"]:
        cells = [label(lang, row["figure"])]
        if multiple:
            cells.append(row["other"])
        cells += [
            _value(row["a"], row["a_sd"], row["a_n"]),
            _value(row["b"], row["b_sd"], row["b_n"]),
            _change(row, lang),
            _better(row),
        ]
        if judged:
            cells.append(_noise(row, lang))
        rows.append(cells)
    return header, rows


def comparison_sentences(result: dict[str, Any], lang: str) -> list[str]:
    """The plain-words conclusion of a comparison."""
    sentences = []
    reference = result["groups"][0]["name"]
    sentences.append(say(lang, "compare_intro", reference=reference))
    if result["seed_only"]:
        sentences.append(say(lang, "noise_seed_only"))
    elif result["repeats"]:
        sentences.append(say(lang, "noise_groups"))
    else:
        sentences.append(say(lang, "noise_cannot"))
    for group in result["groups"][1:]:
        rows = [r for r in result["rows"] if r["other"] == group["name"]]
        better = sum(r["better"] == 1 for r in rows)
        worse = sum(r["better"] == -1 for r in rows)
        sentences.append(
            say(
                lang,
                "compare_summary",
                name=group["name"],
                better=better,
                worse=worse,
                total=better + worse,
            )
        )
        if result["repeats"]:
            significant = [
                label(lang, r["figure"])
                for r in rows
                if r["p_value"] is not None and r["p_value"] < SIGNIFICANCE
            ]
            if significant:
                sentences.append(
                    say(lang, "compare_significant", figures=join_list(significant, lang))
                )
            else:
                sentences.append(say(lang, "compare_none_significant"))
    return sentences


def comparison_markdown(result: dict[str, Any], lang: str) -> str:
    """The comparison as a Markdown document."""
    header, rows = comparison_table(result, lang)
    lines = [f"# {say(lang, 'compare_title')}", "", f"## {say(lang, 'h_runs')}", ""]
    for group in result["groups"]:
        lines.append(f"- **{group['name']}**: {', '.join(group['runs'])}")
    lines.append("")
    lines += [f"## {say(lang, 'h_summary')}", ""]
    for sentence in comparison_sentences(result, lang):
        lines += [sentence, ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
