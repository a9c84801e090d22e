"""``artsim report RUN_DIR``: a training report in HTML (self-contained) and Markdown.

The report reads only files: the run folder (``config.yaml``, ``summary.json``,
``metrics.jsonl``) and the evaluation of its validation split (``eval/val.json`` with its
``.curves.json`` and ``.top5.json``; when missing or made with another model, the evaluation is
run first). Every sentence of the analysis is chosen and filled from those numbers: the same code
writes "clear sign of over-fitting" only when the gap says so.
"""

from __future__ import annotations

import html
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from artsim.commands import run_app
from artsim.errors import UserError
from artsim.eval.evaluate import (
    TASKS,
    evaluate_run,
    read_run_config,
    read_summary,
)
from artsim.model.heads import MODEL_WEIGHTS, model_id
from artsim.report import plots
from artsim.report.generalisation import generalisation_part
from artsim.report.text import check_lang, join_list, label, num, pct, say
from artsim.report.verdicts import verdicts_part
from artsim.train.callbacks import read_metrics

console = Console(highlight=False)

SEED_FIGURES = (
    "epochs_completed",
    "final_lr",
    "train/loss",
    "train/triplet_acc",
    "val/loss",
    "val/triplet_acc",
    "val/image_loss",
    "val/image_acc",
    "val/text_loss",
    "val/text_acc",
    "val/cross_loss",
    "val/cross_acc",
    "val/i2t_acc",
    "val/t2i_acc",
)
RETRIEVAL_COLUMNS = (
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr",
    "map",
    "triplet_acc",
    "triplet_acc_hard",
)
GALLERY_ROWS = 10
GALLERY_MISSES = 6


# --- reading the run folder ----------------------------------------------------------------------


def read_metrics_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of ``metrics.jsonl``; a torn last line (crash mid-write) ends the list."""
    return read_metrics(path)


@dataclass
class RunFolder:
    """What a finished (or interrupted) run left on disk."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    metrics: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return self.path.name

    def final(self) -> dict[str, Any]:
        """The last epoch's row (summary.json's ``final``, else the last metrics row)."""
        return dict(self.summary.get("final") or (self.metrics[-1] if self.metrics else {}))

    def best(self) -> dict[str, Any]:
        """The best epoch's row (summary.json's ``best``, else the lowest validation loss)."""
        if self.summary.get("best"):
            return dict(self.summary["best"])
        scored = [row for row in self.metrics if _finite(row.get("val/loss"))]
        return dict(min(scored, key=lambda row: row["val/loss"])) if scored else {}

    def figure(self, key: str, row: str = "final") -> Any:
        """A seed figure: summary-level keys (epochs_completed, final_lr) or a metrics key."""
        if key == "epochs_completed":
            return self.summary.get("epochs_completed", len(self.metrics) or None)
        if key == "final_lr":
            value = self.summary.get("final_lr")
            return value if value is not None else self.final().get("lr")
        return (self.final() if row == "final" else self.best()).get(key)


def load_run(run_dir: str | Path) -> RunFolder:
    """Read a run folder; a folder without summary.json or metrics.jsonl is a user error."""
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"run folder not found: {path}")
    summary = read_summary(path)
    metrics = read_metrics_rows(path / "metrics.jsonl")
    if not summary and not metrics:
        raise UserError(f"{path}: not a run folder (no summary.json or metrics.jsonl)")
    return RunFolder(path, read_run_config(path), summary, metrics)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (ValueError, UnicodeDecodeError):
        return {}


@dataclass
class Evaluation:
    """The validation evaluation of a run: the result, its curves and top-5 lists."""

    result: dict[str, Any] | None
    curves: dict[str, Any] = field(default_factory=dict)
    top5: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why there is no result


def load_evaluation(run: RunFolder, name: str = "val", progress: bool = True) -> Evaluation:
    """``eval/<name>.json`` and its side files; runs the evaluation first when the file is
    missing or belongs to another model (a retrained run)."""
    eval_dir = run.path / "eval"
    result = _read_json(eval_dir / f"{name}.json")
    current = model_id(run.path) if (run.path / MODEL_WEIGHTS).is_file() else None
    if not result or (current and result.get("model_id") != current):
        if current is None:
            return Evaluation(None, reason=f"{run.path} holds no model ({MODEL_WEIGHTS})")
        try:
            evaluate_run(
                run.path,
                split=name if name in ("val", "train") else None,
                name=name,
                progress=progress,
            )
        except UserError as error:
            return Evaluation(None, reason=str(error))
        result = _read_json(eval_dir / f"{name}.json")
    return Evaluation(
        result,
        _read_json(eval_dir / f"{name}.curves.json"),
        _read_json(eval_dir / f"{name}.top5.json"),
    )


# --- analysis: sentences chosen and filled from the numbers --------------------------------------


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Section:
    """One part of the report: a heading, paragraphs, and optional bullets, tables, images."""

    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (file stem, PNG)
    gallery: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Findings:
    """What the analysis concluded, for the recommendations and the tests."""

    overfitting: str = "unknown"  # large, moderate, small, inverted, unknown
    weakest: str | None = None
    still_improving: bool = False
    easy_triplets: bool = False
    baseline: str | None = None  # beaten, tie, not_frozen, not_phash
    worst_lang: str | None = None
    weak_threshold: float | None = None
    lr_reductions: int = 0
    verdict: str | None = None  # ready, ranking, not_ready


def wilson_interval(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson 95% interval of a proportion measured on ``n`` trials (sensible at 0 and 1)."""
    if n <= 0:
        return float("nan"), float("nan")
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _lr_story(run: RunFolder, lang: str, findings: Findings) -> str:
    rates = [row["lr"] for row in run.metrics if _finite(row.get("lr"))]
    final = run.figure("final_lr")
    if len(rates) < 2:
        return say(lang, "lr_final_only", final=num(final))
    reductions = sum(1 for a, b in itertools.pairwise(rates) if b < a * (1 - 1e-9))
    findings.lr_reductions = reductions
    if reductions == 0:
        return say(lang, "lr_constant", final=num(final))
    if reductions == 1:
        return say(lang, "lr_reduced_once", first=num(rates[0]), final=num(final))
    return say(lang, "lr_reduced", times=reductions, first=num(rates[0]), final=num(final))


def _stop_section(run: RunFolder, lang: str, findings: Findings) -> Section:
    section = Section("stop", say(lang, "h_stop"))
    summary = run.summary
    reason = summary.get("stop_reason") or "unknown"
    best_loss = summary.get("best_val_loss", run.best().get("val/loss"))
    best_epoch = summary.get("best_epoch", run.best().get("epoch"))
    fields = {
        "epochs": run.figure("epochs_completed"),
        "best_loss": num(best_loss),
        "best_epoch": best_epoch if best_epoch is not None else "–",
        "reason": reason,
    }
    key = (
        f"stop_{reason}" if reason in ("early_stopping", "max_epochs", "nan_loss") else "stop_other"
    )
    section.paragraphs.append(say(lang, key, **fields))
    last_epoch = run.metrics[-1].get("epoch") if run.metrics else None
    if reason == "max_epochs" and best_epoch is not None and best_epoch == last_epoch:
        findings.still_improving = True
        section.paragraphs.append(say(lang, "stop_still_improving"))
    section.paragraphs.append(_lr_story(run, lang, findings))
    return section


def _task_r1(evaluation: dict | None, task: str, metric: str = "recall@1") -> float | None:
    if not evaluation:
        return None
    value = (evaluation.get("tasks", {}).get(task) or {}).get(metric)
    return value if _finite(value) else None


def _main_task(evaluation: dict | None) -> str:
    if evaluation and (evaluation["tasks"].get("fused") or {}).get("n_queries"):
        return "fused"
    return "image"


def _modalities_section(
    run: RunFolder, evaluation: dict | None, lang: str, findings: Findings
) -> Section:
    section = Section("modalities", say(lang, "h_modalities"))
    final = run.final()
    losses = {
        part: final.get(f"val/{part}_loss")
        for part in ("image", "text", "cross")
        if _finite(final.get(f"val/{part}_loss"))
    }
    if len(losses) == 3:
        ranked = sorted(losses, key=losses.get)
        section.paragraphs.append(
            say(
                lang,
                "modality_ranking",
                first=label(lang, ranked[0]),
                first_value=num(losses[ranked[0]]),
                second=label(lang, ranked[1]),
                second_value=num(losses[ranked[1]]),
                third=label(lang, ranked[2]),
                third_value=num(losses[ranked[2]]),
            )
        )
        if ranked[2] in ("image", "text"):
            findings.weakest = ranked[2]
    accuracies = {part: final.get(f"val/{part}_acc") for part in ("image", "text", "cross")}
    if any(_finite(v) for v in accuracies.values()):
        section.paragraphs.append(
            say(lang, "modality_accuracy", **{k: num(v) for k, v in accuracies.items()})
        )
    recalls = {task: _task_r1(evaluation, task) for task in TASKS}
    recalls = {task: value for task, value in recalls.items() if value is not None}
    if recalls:
        ranking = sorted(recalls, key=lambda task: -recalls[task])
        section.paragraphs.append(
            say(
                lang,
                "retrieval_ranking",
                ranking=join_list(
                    [f"{label(lang, t)} {num(recalls[t], 3)}" for t in ranking], lang
                ),
            )
        )
        singles = [task for task in ranking if task in ("image", "text")]
        if len(singles) == 2 and "image" in losses and "text" in losses:
            loss_best = min(("image", "text"), key=losses.get)
            if abs(recalls["image"] - recalls["text"]) < 0.01 or singles[0] == loss_best:
                section.paragraphs.append(say(lang, "retrieval_ranking_agrees"))
            else:
                section.paragraphs.append(
                    say(
                        lang,
                        "retrieval_ranking_disagrees",
                        best=label(lang, singles[0]),
                        loss_best=label(lang, loss_best),
                    )
                )
    return section


def _cross_section(run: RunFolder, evaluation: dict | None, lang: str) -> Section | None:
    final = run.final()
    i2t, t2i = final.get("val/i2t_acc"), final.get("val/t2i_acc")
    if not (_finite(i2t) and _finite(t2i)):
        return None
    section = Section("cross", say(lang, "h_cross"))
    points = f"{abs(t2i - i2t) * 100:.1f}"
    if abs(t2i - i2t) < 0.005:
        key = "cross_equal"
    else:
        key = "cross_t2i_higher" if t2i > i2t else "cross_i2t_higher"
    section.paragraphs.append(say(lang, key, i2t=num(i2t), t2i=num(t2i), points=points))
    i2t_r1, t2i_r1 = _task_r1(evaluation, "i2t"), _task_r1(evaluation, "t2i")
    if i2t_r1 is not None and t2i_r1 is not None:
        section.paragraphs.append(
            say(lang, "cross_retrieval", i2t_r1=num(i2t_r1, 3), t2i_r1=num(t2i_r1, 3))
        )
    return section


def _gap_section(run: RunFolder, lang: str, findings: Findings) -> Section | None:
    final = run.final()
    train_loss, val_loss = final.get("train/loss"), final.get("val/loss")
    if not (_finite(train_loss) and _finite(val_loss)):
        return None
    section = Section("gap", say(lang, "h_gap"))
    train_acc, val_acc = final.get("train/triplet_acc"), final.get("val/triplet_acc")
    section.paragraphs.append(
        say(
            lang,
            "gap_figures",
            train_loss=num(train_loss),
            val_loss=num(val_loss),
            train_acc=num(train_acc),
            val_acc=num(val_acc),
        )
    )
    accuracy_gap = (train_acc - val_acc) if _finite(train_acc) and _finite(val_acc) else 0.0
    ratio = val_loss / train_loss if train_loss > 0 else float("inf")
    if val_loss <= train_loss and accuracy_gap < 0.02:
        findings.overfitting = "inverted"
        section.paragraphs.append(say(lang, "gap_inverted"))
    elif (ratio >= 2.0 and val_loss - train_loss >= 0.02) or accuracy_gap >= 0.05:
        findings.overfitting = "large"
        section.paragraphs.append(say(lang, "gap_large", ratio=num(ratio, 2)))
    elif ratio >= 1.3 or accuracy_gap >= 0.02:
        findings.overfitting = "moderate"
        section.paragraphs.append(say(lang, "gap_moderate", ratio=num(ratio, 2)))
    else:
        findings.overfitting = "small"
        section.paragraphs.append(say(lang, "gap_small"))
    best_loss = run.summary.get("best_val_loss", run.best().get("val/loss"))
    if _finite(best_loss) and best_loss > 0 and (val_loss - best_loss) / best_loss > 0.1:
        section.paragraphs.append(
            say(lang, "gap_rising", rise=pct((val_loss - best_loss) / best_loss, lang))
        )
        if findings.overfitting in ("small", "inverted"):
            findings.overfitting = "moderate"
    return section


def _retrieval_rows(evaluation: dict, lang: str) -> list[list[str]]:
    rows = []
    for task in TASKS:
        figures = evaluation["tasks"].get(task) or {}
        rows.append(
            [label(lang, task)]
            + [num(figures.get(c), 3) for c in RETRIEVAL_COLUMNS]
            + [num(figures.get("n_queries"))]
        )
    baselines = evaluation.get("baselines", {})
    extra = [("phash", "image"), ("frozen", "image"), ("frozen", "text")]
    for kind, task in extra:
        figures = (baselines.get(kind) or {}).get(task) or {}
        if not figures:
            continue
        rows.append(
            [f"{label(lang, kind)}: {label(lang, task)}"]
            + [num(figures.get(c), 3) for c in RETRIEVAL_COLUMNS]
            + [num(figures.get("n_queries"))]
        )
    return rows


def _retrieval_section(run: RunFolder, evaluation: dict, lang: str, findings: Findings) -> Section:
    section = Section("retrieval", say(lang, "h_retrieval"))
    counts = evaluation.get("counts", {})
    task = _main_task(evaluation)
    figures = evaluation["tasks"][task]
    gallery = counts.get("gallery") or 0
    fields = {
        "queries": figures.get("n_queries"),
        "gallery": gallery,
        "r1": pct(figures.get("recall@1"), lang),
        "r5": pct(figures.get("recall@5"), lang),
        "mrr": num(figures.get("mrr"), 3),
        "chance": pct(1.0 / gallery if gallery else None, lang),
        "task": label(lang, task),
    }
    key = "retrieval_summary" if task == "fused" else "retrieval_summary_task"
    section.paragraphs.append(say(lang, key, **fields))

    model = _task_r1(evaluation, "image")
    baselines = evaluation.get("baselines", {})
    phash = ((baselines.get("phash") or {}).get("image") or {}).get("recall@1")
    frozen = ((baselines.get("frozen") or {}).get("image") or {}).get("recall@1")
    if model is not None and _finite(phash) and _finite(frozen):
        section.paragraphs.append(
            say(
                lang,
                "baseline_figures",
                phash=num(phash, 3),
                frozen=num(frozen, 3),
                model=num(model, 3),
            )
        )
        if model >= max(phash, frozen) + 0.02:
            findings.baseline = "beaten"
        elif model < frozen - 0.02:
            findings.baseline = "not_frozen"
        elif model < phash - 0.02:
            findings.baseline = "not_phash"
        else:
            findings.baseline = "tie"
        section.paragraphs.append(say(lang, f"baseline_{findings.baseline}"))
    text_model = _task_r1(evaluation, "text")
    text_frozen = ((baselines.get("frozen") or {}).get("text") or {}).get("recall@1")
    if text_model is not None and _finite(text_frozen):
        section.paragraphs.append(
            say(lang, "baseline_text", frozen=num(text_frozen, 3), model=num(text_model, 3))
        )

    accuracy = run.final().get("val/triplet_acc")
    r1, hard = figures.get("recall@1"), figures.get("triplet_acc_hard")
    if _finite(accuracy) and _finite(r1):
        findings.easy_triplets = accuracy >= 0.95 and r1 < 0.8
        key = "easy_triplets" if findings.easy_triplets else "triplets_consistent"
        section.paragraphs.append(
            say(lang, key, acc=num(accuracy), r1=pct(r1, lang), hard=num(hard))
        )

    by_lang = {
        code: (tasks.get(task) or {}).get("recall@1")
        for code, tasks in (evaluation.get("by_lang") or {}).items()
    }
    sizes = {
        code: (tasks.get(task) or {}).get("n_queries") or 0
        for code, tasks in (evaluation.get("by_lang") or {}).items()
    }
    by_lang = {code: value for code, value in by_lang.items() if _finite(value)}
    if len(by_lang) >= 2:
        values = join_list(
            [f"{label(lang, code)} {num(v, 3)} (n={sizes[code]})" for code, v in by_lang.items()],
            lang,
        )
        section.paragraphs.append(say(lang, "by_lang", task=label(lang, task), values=values))
        best = max(by_lang, key=by_lang.get)
        worst = min(by_lang, key=by_lang.get)
        if by_lang[best] - by_lang[worst] >= 0.1 and min(sizes[best], sizes[worst]) >= 3:
            findings.worst_lang = worst
            section.paragraphs.append(
                say(
                    lang,
                    "by_lang_gap",
                    worst=label(lang, worst),
                    best=label(lang, best),
                    worst_value=num(by_lang[worst], 3),
                    best_value=num(by_lang[best], 3),
                )
            )
    header = [say(lang, "col_task"), *(label(lang, c) for c in RETRIEVAL_COLUMNS)]
    header.append(label(lang, "n_queries"))
    section.tables.append((header, _retrieval_rows(evaluation, lang)))
    return section


def _verification_section(
    run: RunFolder, evaluation: dict, curves: dict, lang: str, findings: Findings
) -> Section:
    section = Section("verification", say(lang, "h_verification"))
    task = _main_task(evaluation)
    verification = evaluation.get("verification", {}).get(task) or {}
    at1 = verification.get("at_fpr_0.01") or {}
    at5 = verification.get("at_fpr_0.05") or {}
    if _finite(verification.get("roc_auc")):
        section.paragraphs.append(
            say(
                lang,
                "verification",
                auc=num(verification["roc_auc"], 3),
                t1=num(at1.get("threshold"), 3),
                recall1=pct(at1.get("recall"), lang),
                t5=num(at5.get("threshold"), 3),
                recall5=pct(at5.get("recall"), lang),
            )
        )
        if _finite(at1.get("recall")) and at1["recall"] < 0.5:
            findings.weak_threshold = at1["recall"]
    if (run.path / "calibration.json").is_file():
        section.paragraphs.append(say(lang, "calibration_saved"))
    one, five = pct(0.01, lang, 0), pct(0.05, lang, 0)
    header = [
        say(lang, "col_task"),
        "ROC-AUC",
        say(lang, "col_threshold_at", fpr=one),
        say(lang, "col_recall_at", fpr=one),
        say(lang, "col_precision_at", fpr=one),
        say(lang, "col_threshold_at", fpr=five),
        say(lang, "col_recall_at", fpr=five),
    ]
    rows = []
    for name in TASKS:
        figures = evaluation.get("verification", {}).get(name) or {}
        one, five = figures.get("at_fpr_0.01") or {}, figures.get("at_fpr_0.05") or {}
        rows.append(
            [
                label(lang, name),
                num(figures.get("roc_auc"), 3),
                num(one.get("threshold"), 3),
                num(one.get("recall"), 3),
                num(one.get("precision"), 3),
                num(five.get("threshold"), 3),
                num(five.get("recall"), 3),
            ]
        )
    section.tables.append((header, rows))
    if curves:
        section.images.append(("roc", plots.plot_roc(curves, lang)))
    return section


def _distribution_section(curves: dict, lang: str) -> Section | None:
    if not curves:
        return None
    section = Section("distributions", say(lang, "h_distributions"))
    section.paragraphs.append(say(lang, "distributions"))
    section.images.append(("scores", plots.plot_score_histograms(curves, lang)))
    return section


def _gallery_section(evaluation: Evaluation, lang: str) -> Section | None:
    tasks = evaluation.top5.get("tasks") or {}
    task = _main_task(evaluation.result)
    entries = tasks.get(task) or []
    if not entries:
        return None
    misses = sorted((e for e in entries if e["rank"] > 1), key=lambda e: (-e["rank"], e["query"]))
    hits = sorted((e for e in entries if e["rank"] <= 1), key=lambda e: e["query"])
    chosen = misses[:GALLERY_MISSES]
    chosen += hits[: GALLERY_ROWS - len(chosen)]
    chosen += misses[GALLERY_MISSES : GALLERY_MISSES + GALLERY_ROWS - len(chosen)]
    section = Section("gallery", say(lang, "h_gallery"))
    section.paragraphs.append(say(lang, "gallery_intro"))
    section.gallery = chosen
    return section


def _noise_section(run: RunFolder, evaluation: dict | None, lang: str) -> Section:
    section = Section("noise", say(lang, "h_noise"))
    section.paragraphs.append(say(lang, "noise_one_run"))
    if evaluation:
        figures = evaluation["tasks"][_main_task(evaluation)]
        n, r1 = figures.get("n_queries") or 0, figures.get("recall@1")
        if n and _finite(r1):
            low, high = wilson_interval(r1, n)
            section.paragraphs.append(
                say(
                    lang,
                    "noise_interval",
                    queries=n,
                    r1=num(r1, 3),
                    low=num(low, 2),
                    high=num(high, 2),
                )
            )
    return section


def _recommendations(
    run: RunFolder, evaluation: dict | None, lang: str, findings: Findings
) -> list[str]:
    config, summary = run.config, run.summary
    out = []
    if summary.get("stop_reason") == "nan_loss":
        out.append(say(lang, "rec_nan"))
    if findings.still_improving:
        out.append(say(lang, "rec_longer"))
    if findings.overfitting in ("large", "moderate"):
        out.append(say(lang, "rec_overfit"))
    if findings.weakest == "text":
        out.append(say(lang, "rec_text_weak"))
    elif findings.weakest == "image":
        out.append(say(lang, "rec_image_weak"))
    if findings.easy_triplets:
        options = []
        if config.get("miner") != "hard":
            options.append("miner: hard")
        if not config.get("hard_negatives"):
            options.append("hard_negatives: artist")
        out.append(say(lang, "rec_hard_negatives", option=", ".join(options) or "miner: hard"))
    if findings.baseline in ("not_frozen", "not_phash"):
        out.append(say(lang, "rec_baseline"))
    if findings.worst_lang:
        out.append(say(lang, "rec_lang", lang=label(lang, findings.worst_lang)))
    if findings.weak_threshold is not None:
        out.append(say(lang, "rec_threshold", recall=pct(findings.weak_threshold, lang)))
    if findings.lr_reductions >= 2 and not config.get("finetune_epochs"):
        out.append(say(lang, "rec_finetune", final_lr=num(run.figure("final_lr"))))
    val_groups = (summary.get("val_size") or {}).get("groups")
    if val_groups:
        out.append(say(lang, "rec_seeds", groups=val_groups))
    else:
        out.append(say(lang, "rec_seeds_plain"))
    out.append(say(lang, "rec_external"))
    return out


def _conclusion(evaluation: dict | None, lang: str, findings: Findings) -> str:
    if not evaluation:
        return say(lang, "conclusion_no_eval")
    task = _main_task(evaluation)
    figures = evaluation["tasks"][task]
    r1, r5 = figures.get("recall@1"), figures.get("recall@5")
    recall1 = ((evaluation.get("verification", {}).get(task) or {}).get("at_fpr_0.01") or {}).get(
        "recall"
    )
    if not _finite(r1):
        return say(lang, "conclusion_no_eval")
    fields = {"r1": pct(r1, lang), "r5": pct(r5, lang), "recall1": pct(recall1, lang)}
    if r1 >= 0.9 and _finite(recall1) and recall1 >= 0.8:
        findings.verdict = "ready"
    elif _finite(r5) and r5 >= 0.8:
        findings.verdict = "ranking"
    else:
        findings.verdict = "not_ready"
    return say(lang, f"conclusion_{findings.verdict}", **fields)


def analyse_run(
    run: RunFolder, evaluation: Evaluation | None, lang: str = "en"
) -> tuple[list[Section], Findings]:
    """The report's sections, every sentence chosen from the run's numbers."""
    check_lang(lang)
    findings = Findings()
    result = evaluation.result if evaluation else None
    curves = evaluation.curves if evaluation else {}
    summary = run.summary
    sections: list[Section] = []

    overview = Section("summary", say(lang, "h_summary"))
    train_size, val_size = summary.get("train_size") or {}, summary.get("val_size") or {}
    overview.paragraphs.append(
        say(
            lang,
            "overview",
            model_id=(result or {}).get("model_id")
            or (model_id(run.path) if (run.path / MODEL_WEIGHTS).is_file() else "–"),
            data=summary.get("data") or run.config.get("data") or "–",
            train_items=train_size.get("items", "–"),
            train_groups=train_size.get("groups", "–"),
            val_items=val_size.get("items", "–"),
            val_groups=val_size.get("groups", "–"),
            image_tower=summary.get("image_tower") or run.config.get("image_tower") or "–",
            text_tower=summary.get("text_tower") or run.config.get("text_tower") or "–",
        )
    )
    overview.paragraphs.append(say(lang, "overview_split"))
    sections.append(overview)

    figures = Section("figures", say(lang, "h_figures"))
    figures.tables.append(
        (
            [say(lang, "col_figure"), say(lang, "col_final"), say(lang, "col_best")],
            [
                [
                    label(lang, key),
                    num(run.figure(key)),
                    num(run.figure(key, "best")) if "/" in key else "",
                ]
                for key in SEED_FIGURES
            ],
        )
    )
    if run.metrics:
        best_epoch = summary.get("best_epoch")
        figures.images.append(("curves", plots.plot_learning_curves(run.metrics, lang, best_epoch)))
    sections.append(figures)

    sections.append(_stop_section(run, lang, findings))
    gap = _gap_section(run, lang, findings)
    if gap:
        sections.append(gap)
    sections.append(_modalities_section(run, result, lang, findings))
    cross = _cross_section(run, result, lang)
    if cross:
        sections.append(cross)
    if result:
        sections.append(_retrieval_section(run, result, lang, findings))
        sections.append(_verification_section(run, result, curves, lang, findings))
        distributions = _distribution_section(curves, lang)
        if distributions:
            sections.append(distributions)
        gallery = _gallery_section(evaluation, lang)
        if gallery:
            sections.append(gallery)
    elif evaluation and evaluation.reason:
        missing = Section("retrieval", say(lang, "h_retrieval"))
        missing.paragraphs.append(say(lang, "no_eval", reason=evaluation.reason))
        sections.append(missing)
    generalisation = generalisation_part(run.path, lang)
    if generalisation:
        title, paragraphs, table = generalisation
        sections.append(Section("generalisation", title, paragraphs=paragraphs, tables=[table]))
    verdicts = verdicts_part(run.path, lang)
    if verdicts:
        sections.append(
            Section(
                "verdicts",
                verdicts["title"],
                paragraphs=verdicts["paragraphs"],
                tables=verdicts["tables"],
            )
        )
    sections.append(_noise_section(run, result, lang))
    recommendations = Section("recommendations", say(lang, "h_recommendations"))
    recommendations.bullets = _recommendations(run, result, lang, findings)
    sections.append(recommendations)
    conclusion = Section("conclusion", say(lang, "h_conclusion"))
    conclusion.paragraphs.append(_conclusion(result, lang, findings))
    sections.append(conclusion)
    return sections, findings


# --- rendering -----------------------------------------------------------------------------------

CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
       max-width: 1120px; margin: 2em auto; padding: 0 1.5em; color: #222; line-height: 1.5; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
img.plot { max-width: 100%; display: block; margin: 0.8em 0; }
.gallery td { vertical-align: top; text-align: center; font-size: 0.78em; width: 120px; }
.gallery td.query { background: #f7f7f7; text-align: left; width: 200px; }
.thumb { width: 96px; height: 96px; object-fit: contain; border: 3px solid #ddd;
         background: #fafafa; display: block; margin: 0 auto 0.2em; }
.hit .thumb { border-color: #2ca02c; }
.miss { color: #b22222; font-weight: bold; }
.found { color: #2ca02c; font-weight: bold; }
.missing { width: 96px; height: 96px; display: block; margin: 0 auto; background: #eee; }
ul li { margin-bottom: 0.4em; }
"""


def _thumb_html(path: str | None, thumbs: dict[str, str | None]) -> str:
    if not path:
        return '<span class="missing"></span>'
    if path not in thumbs:
        png = plots.thumbnail_png(path)
        thumbs[path] = plots.data_uri(png) if png else None
    uri = thumbs[path]
    return f'<img class="thumb" src="{uri}" alt="">' if uri else '<span class="missing"></span>'


def _gallery_html(section: Section, items: dict[str, Any], lang: str) -> str:
    thumbs: dict[str, str | None] = {}
    rows = []
    for entry in section.gallery:
        query = items.get(entry["query"], {})
        text = query.get("text") or ""
        text = text if len(text) <= 90 else text[:87] + "…"
        status = (
            f'<span class="found">{html.escape(say(lang, "gallery_hit"))}</span>'
            if entry["rank"] <= 1
            else f'<span class="miss">{html.escape(say(lang, "gallery_rank", rank=entry["rank"]))}</span>'
        )
        cells = [
            f'<td class="query">{_thumb_html(query.get("image"), thumbs)}'
            f"<b>{html.escape(entry['query'])}</b><br>{html.escape(text)}<br>{status}</td>"
        ]
        for candidate in entry["top"]:
            original = items.get(candidate["id"], {})
            css = "hit" if candidate.get("hit") else ""
            mark = " ✓" if candidate.get("hit") else ""
            cells.append(
                f'<td class="{css}">{_thumb_html(original.get("image"), thumbs)}'
                f"{html.escape(candidate['id'])}{mark}<br>{candidate['score']:.3f}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return '<table class="gallery">' + "".join(rows) + "</table>"


def _table_html(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline_code_html(text: str) -> str:
    # the templates mark commands with backticks, as Markdown does
    parts = html.escape(text).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def render_html(title: str, meta: str, sections: Sequence[Section], items: dict, lang: str) -> str:
    """The whole report as one self-contained HTML page (plots and thumbnails as data URIs)."""
    body = [f"<h1>{html.escape(title)}</h1>", f'<p class="meta">{html.escape(meta)}</p>']
    for section in sections:
        body.append(f'<h2 id="{section.key}">{html.escape(section.title)}</h2>')
        body.extend(f"<p>{_inline_code_html(p)}</p>" for p in section.paragraphs)
        for header, rows in section.tables:
            body.append(_table_html(header, rows))
        for stem, png in section.images:
            body.append(f'<img class="plot" alt="{html.escape(stem)}" src="{plots.data_uri(png)}">')
        if section.gallery:
            body.append(_gallery_html(section, items, lang))
        if section.bullets:
            body.append(
                "<ul>"
                + "".join(f"<li>{_inline_code_html(b)}</li>" for b in section.bullets)
                + "</ul>"
            )
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table_md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_md_cell(c) for c in header) + " |"]
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(
    title: str, meta: str, sections: Sequence[Section], lang: str, image_dir: Path, out_dir: Path
) -> str:
    """The report as Markdown; plots are written as PNG files under ``image_dir``."""
    lines = [f"# {title}", "", f"_{meta}_", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        for header, rows in section.tables:
            lines += [_table_md(header, rows), ""]
        for stem, png in section.images:
            image_dir.mkdir(parents=True, exist_ok=True)
            path = image_dir / f"{stem}.png"
            path.write_bytes(png)
            lines += [f"![{stem}]({path.relative_to(out_dir).as_posix()})", ""]
        if section.gallery:
            header = [say(lang, "query"), say(lang, "col_rank"), "top-5"]
            rows = []
            for entry in section.gallery:
                top = ", ".join(
                    f"{c['id']}{' ✓' if c.get('hit') else ''} ({c['score']:.3f})"
                    for c in entry["top"]
                )
                rows.append([entry["query"], str(entry["rank"]), top])
            lines += [_table_md(header, rows), ""]
        for bullet in section.bullets:
            lines.append(f"- {bullet}")
        if section.bullets:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def report_paths(
    run_dir: str | Path, lang: str, out_dir: str | Path | None = None
) -> tuple[Path, Path]:
    """Where the HTML and Markdown reports of a language go."""
    folder = Path(out_dir) if out_dir else Path(run_dir)
    stem = "report" if lang == "en" else f"report.{lang}"
    return folder / f"{stem}.html", folder / f"{stem}.md"


def build_report(
    run_dir: str | Path,
    *,
    lang: str = "en",
    out_dir: str | Path | None = None,
    evaluation: Evaluation | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Write the report of a run in ``lang``; returns ``{"html": path, "md": path}``.

    >>> build_report("runs/demo", lang="es")  # doctest: +SKIP
    {'html': PosixPath('runs/demo/report.es.html'), 'md': PosixPath('runs/demo/report.es.md')}
    """
    try:
        check_lang(lang)
    except ValueError as error:
        raise UserError(str(error)) from None
    run = load_run(run_dir)
    if evaluation is None:
        evaluation = load_evaluation(run, "val", progress=progress)
    sections, _ = analyse_run(run, evaluation, lang)
    html_path, md_path = report_paths(run.path, lang, out_dir)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    title = say(lang, "title", run=run.name)
    result = evaluation.result or {}
    meta = " · ".join(
        part
        for part in (
            str(run.path),
            f"{label(lang, 'meta_model')} {result['model_id']}" if result.get("model_id") else "",
            f"{label(lang, 'meta_data')} {result['data_fingerprint']}"
            if result.get("data_fingerprint")
            else "",
        )
        if part
    )
    items = (evaluation.top5 or {}).get("items") or {}
    html_path.write_text(render_html(title, meta, sections, items, lang), encoding="utf-8")
    image_dir = md_path.parent / f"{md_path.stem}_files"
    md_path.write_text(
        render_markdown(title, meta, sections, lang, image_dir, md_path.parent), encoding="utf-8"
    )
    return {"html": html_path, "md": md_path}


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="run folder written by artsim train")],
    lang: Annotated[str, typer.Option("--lang", help="en or es")] = "en",
    out: Annotated[
        Path | None, typer.Option("--out", help="folder for the report (default: the run folder)")
    ] = None,
) -> int:
    """Write an HTML and a Markdown report of a training run."""
    paths = build_report(run_dir, lang=lang, out_dir=out)
    console.print(f"wrote {paths['html']}")
    console.print(f"wrote {paths['md']}")
    return 0


app = typer.Typer(add_completion=False, help="Report on a training run.")
app.command("report")(report_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``artsim report ...`` in-process; returns the exit code."""
    return run_app(app, argv)
