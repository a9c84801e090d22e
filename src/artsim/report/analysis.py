"""The report's analysis: sections whose every sentence is chosen and filled from the numbers.

The same code writes "clear sign of over-fitting" only when the gap says so. Training sections
(figures, stopping, the train/validation gap, noise, recommendations, conclusion) are here; the
evaluation sections are in :mod:`artsim.report.eval_sections`.
"""

from __future__ import annotations

import itertools

from artsim import runfolder
from artsim.eval.result import EvalResult
from artsim.model.heads import model_id
from artsim.report import plots
from artsim.report.eval_sections import (
    cross_section,
    distribution_section,
    gallery_section,
    modalities_section,
    retrieval_section,
    verification_section,
)
from artsim.report.generalisation import generalisation_part
from artsim.report.reading import SEED_DOCUMENT_FIGURES, Evaluation, RunFolder, finite
from artsim.report.sections import Findings, Section, wilson_interval
from artsim.report.text import check_lang, label, num, pct, say
from artsim.report.verdicts import verdicts_part


def _lr_story(run: RunFolder, lang: str, findings: Findings) -> str:
    rates = [row["lr"] for row in run.metrics if finite(row.get("lr"))]
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


def _gap_section(run: RunFolder, lang: str, findings: Findings) -> Section | None:
    final = run.final()
    # like with like: the loss parts both sides compute (training's objective also holds the
    # KoLeo spreading term, negative, and the copy part, which validation does not compute)
    train_loss, val_loss = run.comparable_loss(final, "train"), run.comparable_loss(final, "val")
    if not (finite(train_loss) and finite(val_loss)):
        return None
    section = Section("gap", say(lang, "h_gap"))
    train_acc, val_acc = final.get("train/triplet_acc"), final.get("val/triplet_acc")
    extra = run.extra_training_parts(final)
    section.paragraphs.append(
        say(
            lang,
            "gap_figures_parts" if extra else "gap_figures",
            train_loss=num(train_loss),
            val_loss=num(val_loss),
            train_acc=num(train_acc),
            val_acc=num(val_acc),
            objective=num(final.get("train/loss")),
            parts=(" and " if lang == "en" else " y ").join(
                label(lang, f"{part}_part") for part in extra
            ),
        )
    )
    accuracy_gap = (train_acc - val_acc) if finite(train_acc) and finite(val_acc) else 0.0
    ratio = val_loss / train_loss if train_loss > 0 else float("inf")
    if val_loss <= train_loss and accuracy_gap < 0.02:
        findings.overfitting = "inverted"
        section.paragraphs.append(say(lang, "gap_inverted"))
    elif (ratio >= 2.0 and val_loss - train_loss >= 0.02) or accuracy_gap >= 0.05:
        findings.overfitting = "large"
        section.paragraphs.append(say(lang, "gap_large", ratio=_times(ratio)))
    elif ratio >= 1.3 or accuracy_gap >= 0.02:
        findings.overfitting = "moderate"
        section.paragraphs.append(say(lang, "gap_moderate", ratio=_times(ratio)))
    else:
        findings.overfitting = "small"
        section.paragraphs.append(say(lang, "gap_small"))
    best_loss = run.comparable_loss(run.best(), "val")  # the same parts as val_loss
    if finite(best_loss) and best_loss > 0 and (val_loss - best_loss) / best_loss > 0.1:
        section.paragraphs.append(
            say(lang, "gap_rising", rise=pct((val_loss - best_loss) / best_loss, lang))
        )
        if findings.overfitting in ("small", "inverted"):
            findings.overfitting = "moderate"
    return section


def _times(ratio: float) -> str:
    """A ratio of losses as the text shows it (a training loss of 0 makes it unbounded)."""
    return num(ratio, 2) if finite(ratio) else "∞"


def _noise_section(run: RunFolder, result: EvalResult | None, lang: str) -> Section:
    section = Section("noise", say(lang, "h_noise"))
    section.paragraphs.append(say(lang, "noise_one_run"))
    if result:
        figures = result.retrieval.tasks[result.retrieval.main_task]
        n, r1 = figures.get("n_queries") or 0, figures.get("recall@1")
        if n and finite(r1):
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
    run: RunFolder, result: EvalResult | None, lang: str, findings: Findings
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


def _conclusion(result: EvalResult | None, lang: str, findings: Findings) -> str:
    if not result:
        return say(lang, "conclusion_no_eval")
    task = result.retrieval.main_task
    figures = result.retrieval.tasks[task]
    r1, r5 = figures.get("recall@1"), figures.get("recall@5")
    recall1 = result.verification.at_fpr(task, 0.01).get("recall")
    if not finite(r1):
        return say(lang, "conclusion_no_eval")
    fields = {"r1": pct(r1, lang), "r5": pct(r5, lang), "recall1": pct(recall1, lang)}
    if r1 >= 0.9 and finite(recall1) and recall1 >= 0.8:
        findings.verdict = "ready"
    elif finite(r5) and r5 >= 0.8:
        findings.verdict = "ranking"
    else:
        findings.verdict = "not_ready"
    return say(lang, f"conclusion_{findings.verdict}", **fields)


def _overview_section(run: RunFolder, result: EvalResult | None, lang: str) -> Section:
    overview = Section("summary", say(lang, "h_summary"))
    summary = run.summary
    train_size, val_size = summary.get("train_size") or {}, summary.get("val_size") or {}
    overview.paragraphs.append(
        say(
            lang,
            "overview",
            model_id=(result.model_id if result else None)
            or (model_id(run.path) if runfolder.has_model(run.path) else "–"),
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
    return overview


def _figures_section(run: RunFolder, lang: str) -> Section:
    """The seed's figures at the final and the best epoch, and the learning curves."""
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
                for key in SEED_DOCUMENT_FIGURES
            ],
        )
    )
    if run.metrics:
        best_epoch = run.summary.get("best_epoch")
        figures.images.append(
            (
                "curves",
                plots.plot_learning_curves(
                    run.metrics, lang, best_epoch, comparable=run.comparable_loss
                ),
            )
        )
    return figures


def _evaluation_sections(
    run: RunFolder, evaluation: Evaluation | None, lang: str, findings: Findings
) -> list[Section]:
    """Modalities and cross-modal figures, then the validation evaluation's sections (or, when
    there is none, why)."""
    result = evaluation.result if evaluation else None
    curves = evaluation.curves if evaluation else {}
    sections = [modalities_section(run, result, lang, findings)]
    cross = cross_section(run, result, lang)
    if cross:
        sections.append(cross)
    if result:
        sections.append(retrieval_section(run, result, lang, findings))
        sections.append(verification_section(run, result, curves, lang, findings))
        distributions = distribution_section(curves, lang)
        if distributions:
            sections.append(distributions)
        gallery = gallery_section(evaluation, lang)
        if gallery:
            sections.append(gallery)
    elif evaluation and evaluation.reason:
        missing = Section("retrieval", say(lang, "h_retrieval"))
        missing.paragraphs.append(say(lang, "no_eval", reason=evaluation.reason))
        sections.append(missing)
    return sections


def _every_evaluation_sections(run: RunFolder, lang: str) -> list[Section]:
    """The parts that read every evaluation of the run: verdicts and generalisation."""
    sections = []
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
    generalisation = generalisation_part(run.path, lang)
    if generalisation:
        title, paragraphs, table = generalisation
        sections.append(Section("generalisation", title, paragraphs=paragraphs, tables=[table]))
    return sections


def analyse_run(
    run: RunFolder, evaluation: Evaluation | None, lang: str = "en"
) -> tuple[list[Section], Findings]:
    """The report's sections, every sentence chosen from the run's numbers."""
    check_lang(lang)
    findings = Findings()
    result = evaluation.result if evaluation else None
    sections = [_overview_section(run, result, lang), _figures_section(run, lang)]
    sections.append(_stop_section(run, lang, findings))
    gap = _gap_section(run, lang, findings)
    if gap:
        sections.append(gap)
    sections += _evaluation_sections(run, evaluation, lang, findings)
    sections += _every_evaluation_sections(run, lang)
    sections.append(_noise_section(run, result, lang))
    recommendations = Section("recommendations", say(lang, "h_recommendations"))
    recommendations.bullets = _recommendations(run, result, lang, findings)
    sections.append(recommendations)
    conclusion = Section("conclusion", say(lang, "h_conclusion"))
    conclusion.paragraphs.append(_conclusion(result, lang, findings))
    sections.append(conclusion)
    return sections, findings
