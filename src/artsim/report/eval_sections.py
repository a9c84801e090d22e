"""The report's sections on the evaluation: modalities, cross-modal, retrieval, verification,
score distributions and the gallery of queries."""

from __future__ import annotations

from artsim import runfolder
from artsim.eval.result import EvalResult, Figures
from artsim.eval.tasks import TASKS
from artsim.report import plots
from artsim.report.reading import Evaluation, RunFolder, finite
from artsim.report.sections import RETRIEVAL_COLUMNS, Findings, Section
from artsim.report.text import join_list, label, num, pct, say

GALLERY_ROWS = 10
GALLERY_MISSES = 6


def modalities_section(
    run: RunFolder, result: EvalResult | None, lang: str, findings: Findings
) -> Section:
    section = Section("modalities", say(lang, "h_modalities"))
    final = run.final()
    losses = {
        part: final.get(f"val/{part}_loss")
        for part in ("image", "text", "cross")
        if finite(final.get(f"val/{part}_loss"))
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
    if any(finite(v) for v in accuracies.values()):
        section.paragraphs.append(
            say(lang, "modality_accuracy", **{k: num(v) for k, v in accuracies.items()})
        )
    recalls = {task: result.retrieval.figure(task) for task in TASKS} if result else {}
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


def cross_section(run: RunFolder, result: EvalResult | None, lang: str) -> Section | None:
    final = run.final()
    i2t, t2i = final.get("val/i2t_acc"), final.get("val/t2i_acc")
    if not (finite(i2t) and finite(t2i)):
        return None
    section = Section("cross", say(lang, "h_cross"))
    points = f"{abs(t2i - i2t) * 100:.1f}"
    if abs(t2i - i2t) < 0.005:
        key = "cross_equal"
    else:
        key = "cross_t2i_higher" if t2i > i2t else "cross_i2t_higher"
    section.paragraphs.append(say(lang, key, i2t=num(i2t), t2i=num(t2i), points=points))
    i2t_r1 = result.retrieval.figure("i2t") if result else None
    t2i_r1 = result.retrieval.figure("t2i") if result else None
    if i2t_r1 is not None and t2i_r1 is not None:
        section.paragraphs.append(
            say(lang, "cross_retrieval", i2t_r1=num(i2t_r1, 3), t2i_r1=num(t2i_r1, 3))
        )
    return section


def _figure_row(name: str, figures: Figures) -> list[str]:
    return [
        name,
        *(num(figures.get(c), 3) for c in RETRIEVAL_COLUMNS),
        num(figures.get("n_queries")),
    ]


def _retrieval_rows(result: EvalResult, lang: str) -> list[list[str]]:
    rows = [
        _figure_row(label(lang, task), result.retrieval.tasks.get(task) or {}) for task in TASKS
    ]
    extra = [("phash", "image"), ("frozen", "image"), ("copy", "image"), ("frozen", "text")]
    for kind, task in extra:
        baseline = result.baselines.of(kind, task)
        if baseline is None or not baseline.to_dict():  # absent, or empty in an older file
            continue
        name = "copy_alone" if kind == "copy" else kind
        rows.append(_figure_row(f"{label(lang, name)}: {label(lang, task)}", baseline.figures))
    return rows


def _retrieval_summary(result: EvalResult, lang: str) -> str:
    """The main task's recall@1 and @5, MRR and chance, in a sentence."""
    task = result.retrieval.main_task
    figures = result.retrieval.tasks[task]
    gallery = result.counts.gallery or 0
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
    return say(lang, key, **fields)


def _baseline_paragraphs(result: EvalResult, lang: str, findings: Findings) -> list[str]:
    """The trained model beside the hash, the frozen towers and the copy descriptor alone."""
    out = []
    baselines = result.baselines
    model = result.retrieval.figure("image")
    phash, frozen = baselines.figure("phash", "image"), baselines.figure("frozen", "image")
    if model is not None and finite(phash) and finite(frozen):
        out.append(
            say(
                lang,
                "baseline_figures",
                phash=num(phash, 3),
                frozen=num(frozen, 3),
                model=num(model, 3),
            )
        )
        copy = baselines.figure("copy", "image")
        if finite(copy):
            out.append(say(lang, "baseline_copy", copy=num(copy, 3), model=num(model, 3)))
        if model >= max(phash, frozen) + 0.02:
            findings.baseline = "beaten"
        elif model < frozen - 0.02:
            findings.baseline = "not_frozen"
        elif model < phash - 0.02:
            findings.baseline = "not_phash"
        else:
            findings.baseline = "tie"
        out.append(say(lang, f"baseline_{findings.baseline}"))
    text_model = result.retrieval.figure("text")
    text_frozen = baselines.figure("frozen", "text")
    if text_model is not None and finite(text_frozen):
        out.append(say(lang, "baseline_text", frozen=num(text_frozen, 3), model=num(text_model, 3)))
    return out


def _language_paragraphs(result: EvalResult, task: str, lang: str, findings: Findings) -> list[str]:
    """The main task's recall@1 per query language, and the gap when one lags."""
    by_lang = {
        code: (tasks.get(task) or {}).get("recall@1")
        for code, tasks in result.retrieval.by_lang.items()
    }
    sizes = {
        code: (tasks.get(task) or {}).get("n_queries") or 0
        for code, tasks in result.retrieval.by_lang.items()
    }
    by_lang = {code: value for code, value in by_lang.items() if finite(value)}
    if len(by_lang) < 2:
        return []
    values = join_list(
        [f"{label(lang, code)} {num(v, 3)} (n={sizes[code]})" for code, v in by_lang.items()],
        lang,
    )
    out = [say(lang, "by_lang", task=label(lang, task), values=values)]
    best = max(by_lang, key=by_lang.get)
    worst = min(by_lang, key=by_lang.get)
    if by_lang[best] - by_lang[worst] >= 0.1 and min(sizes[best], sizes[worst]) >= 3:
        findings.worst_lang = worst
        out.append(
            say(
                lang,
                "by_lang_gap",
                worst=label(lang, worst),
                best=label(lang, best),
                worst_value=num(by_lang[worst], 3),
                best_value=num(by_lang[best], 3),
            )
        )
    return out


def retrieval_section(run: RunFolder, result: EvalResult, lang: str, findings: Findings) -> Section:
    section = Section("retrieval", say(lang, "h_retrieval"))
    task = result.retrieval.main_task
    figures = result.retrieval.tasks[task]
    section.paragraphs.append(_retrieval_summary(result, lang))
    section.paragraphs += _baseline_paragraphs(result, lang, findings)
    accuracy = run.final().get("val/triplet_acc")
    r1, hard = figures.get("recall@1"), figures.get("triplet_acc_hard")
    if finite(accuracy) and finite(r1):
        findings.easy_triplets = accuracy >= 0.95 and r1 < 0.8
        key = "easy_triplets" if findings.easy_triplets else "triplets_consistent"
        section.paragraphs.append(
            say(lang, key, acc=num(accuracy), r1=pct(r1, lang), hard=num(hard))
        )
    section.paragraphs += _language_paragraphs(result, task, lang, findings)
    header = [say(lang, "col_task"), *(label(lang, c) for c in RETRIEVAL_COLUMNS)]
    header.append(label(lang, "n_queries"))
    section.tables.append((header, _retrieval_rows(result, lang)))
    return section


def verification_section(
    run: RunFolder, result: EvalResult, curves: dict, lang: str, findings: Findings
) -> Section:
    section = Section("verification", say(lang, "h_verification"))
    task = result.retrieval.main_task
    verification = result.verification.tasks.get(task) or {}
    at1 = result.verification.at_fpr(task, 0.01)
    at5 = result.verification.at_fpr(task, 0.05)
    if finite(verification.get("roc_auc")):
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
        if finite(at1.get("recall")) and at1["recall"] < 0.5:
            findings.weak_threshold = at1["recall"]
    if (run.path / runfolder.CALIBRATION_FILE).is_file():
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
        figures = result.verification.tasks.get(name) or {}
        one, five = result.verification.at_fpr(name, 0.01), result.verification.at_fpr(name, 0.05)
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


def distribution_section(curves: dict, lang: str) -> Section | None:
    if not curves:
        return None
    section = Section("distributions", say(lang, "h_distributions"))
    section.paragraphs.append(say(lang, "distributions"))
    section.images.append(("scores", plots.plot_score_histograms(curves, lang)))
    return section


def gallery_section(evaluation: Evaluation, lang: str) -> Section | None:
    tasks = evaluation.top5.get("tasks") or {}
    task = evaluation.result.retrieval.main_task
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
