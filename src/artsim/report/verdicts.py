"""The report's verdict part: open-set thresholds, the ISC figures, and confusion counts.

For every evaluation of the run: per task (and for the frozen towers and the perceptual hash),
µAP and recall at precision 0.90 / 0.95 over pooled predictions with distractor queries kept, and
the open-set "derived" threshold at 1% of distractor queries with the recall it keeps. Then where
the verdicts the service gives come from (the run's calibration part, or the indexed collection
itself when ``RUN/index/index.json`` holds a calibration) and the grades those calibration queries
get, by what they truly are. Each figure says which pairs it comes from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from artsim.eval.result import EvalResult, Figures, read_results
from artsim.report.text import check_lang, num

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Verdicts: open-set calibration and the ISC figures",
        "intro": (
            "A search always has a best result, also for a work whose original is not indexed. "
            "So 'derived' is set on the best result's score: at most 1% of queries with no "
            "original in the index reach it. µAP and recall at precision 0.90/0.95 follow the "
            "ISC 2021 protocol: the 10 best predictions of every query pooled and ranked, those "
            "of queries without an indexed original kept (they can only be wrong), ties "
            "worst-first."
        ),
        "pairs": (
            "{name}: pairs of the {split} part, cross-fitted: the originals are halved by "
            "group; against each half, queries whose original is there are matches, all others "
            "distractors (their original is in the other half)."
        ),
        "calibration_run": "The run's calibration.json was set on the {split} part of {data}; "
        "{chose}.",
        "chose_nothing": "these groups were used neither to train nor to choose the model",
        "chose_something": (
            "this data also chose the checkpoint (the run has no calibration part), so the "
            "thresholds may be optimistic"
        ),
        "calibration_index": (
            "The search index {index} is calibrated on its own collection: {matches} "
            "derivatives of indexed originals, each searched against the whole index and, as "
            "one of {distractors} distractor queries, without its own group (leave one group "
            "out; evaluation-only transform family, seed {seed}). Verdicts there come from "
            "these thresholds."
        ),
        "confusion": "Grades of the calibration queries ({where}), by what each query is:",
        "where_index": "collection calibration, task {task}",
        "where_eval": "evaluation {name}, task {task}",
        "col_evaluation": "evaluation",
        "col_scorer": "scorer",
        "col_map": "µAP",
        "col_r90": "recall @ P0.90 (threshold)",
        "col_r95": "recall @ P0.95",
        "col_t1": "derived threshold (1%)",
        "col_rec1": "recall (1%)",
        "col_false1": "false derived (1%)",
        "col_task": "task",
        "col_rate": "distractor rate",
        "col_threshold": "threshold",
        "col_recall": "recall",
        "col_false": "false derived (95% interval)",
        "col_truth": "query",
        "reliability": (
            "Are the stated probabilities right ({task} search)? Measured on these calibration "
            "queries, cross-fitted (halved by group; each half's results, ranks 1-10 of the "
            "match and the distractor search, stated by the tables fitted on the other half, "
            "even odds that the original is indexed): expected calibration error {ece} over "
            "{results} results, against {before} with the best result's table read at every "
            "rank. The reliability diagram, bin by bin:"
        ),
        "col_bin": "stated probability",
        "col_share": "share of results",
        "col_stated": "mean stated",
        "col_observed": "share that was the original",
        "trained": "trained",
        "frozen": "frozen towers",
        "phash": "perceptual hash",
    },
    "es": {
        "title": "Veredictos: calibración de conjunto abierto y cifras ISC",
        "intro": (
            "Una búsqueda siempre tiene un mejor resultado, también para una obra cuyo original "
            "no está indexado. Por eso «derivada» se fija sobre la puntuación del mejor "
            "resultado: como mucho el 1 % de las consultas sin original en el índice la "
            "alcanzan. El µAP y el recall con precisión 0,90/0,95 siguen el protocolo ISC 2021: "
            "las 10 mejores predicciones de cada consulta juntas y ordenadas, incluidas las de "
            "consultas sin original indexado (solo pueden fallar), empates del peor al mejor."
        ),
        "pairs": (
            "{name}: pares de la parte {split}, con ajuste cruzado: los originales se dividen en "
            "dos mitades por grupo; frente a cada mitad, las consultas cuyo original está en "
            "ella son aciertos posibles y las demás distractoras (su original está en la otra)."
        ),
        "calibration_run": "El calibration.json de la ejecución se fijó en la parte {split} de "
        "{data}; {chose}.",
        "chose_nothing": "esos grupos no sirvieron ni para entrenar ni para elegir el modelo",
        "chose_something": (
            "esos datos también eligieron el checkpoint (la ejecución no tiene parte de "
            "calibración), así que los umbrales pueden ser optimistas"
        ),
        "calibration_index": (
            "El índice de búsqueda {index} está calibrado en su propia colección: {matches} "
            "derivadas de originales indexados, cada una buscada en todo el índice y, como una "
            "de {distractors} consultas distractoras, sin su propio grupo (se deja fuera un "
            "grupo; familia de transformaciones solo de evaluación, semilla {seed}). Los "
            "veredictos salen de esos umbrales."
        ),
        "confusion": "Veredictos de las consultas de calibración ({where}), según lo que es cada "
        "consulta:",
        "where_index": "calibración en la colección, tarea {task}",
        "where_eval": "evaluación {name}, tarea {task}",
        "col_evaluation": "evaluación",
        "col_scorer": "método",
        "col_map": "µAP",
        "col_r90": "recall @ P0,90 (umbral)",
        "col_r95": "recall @ P0,95",
        "col_t1": "umbral de derivada (1 %)",
        "col_rec1": "recall (1 %)",
        "col_false1": "falsas derivadas (1 %)",
        "col_task": "tarea",
        "col_rate": "tasa de distractores",
        "col_threshold": "umbral",
        "col_recall": "recall",
        "col_false": "falsas derivadas (intervalo 95 %)",
        "col_truth": "consulta",
        "reliability": (
            "¿Son correctas las probabilidades que se dan (búsqueda {task})? Medido en estas "
            "consultas de calibración, con ajuste cruzado (divididas en dos mitades por grupo; "
            "los resultados de cada mitad, puestos 1-10 de la búsqueda con y sin el original, "
            "con las tablas ajustadas en la otra mitad, a partes iguales): error de calibración "
            "esperado {ece} sobre {results} resultados, frente a {before} si la tabla del mejor "
            "resultado se leyera en todos los puestos. El diagrama de fiabilidad, tramo a tramo:"
        ),
        "col_bin": "probabilidad dada",
        "col_share": "parte de los resultados",
        "col_stated": "media dada",
        "col_observed": "parte que era el original",
        "trained": "entrenado",
        "frozen": "torres congeladas",
        "phash": "hash perceptual",
    },
}
GRADE_WORDS = {
    "en": ["copy", "derived", "related", "unrelated"],
    "es": ["copia", "derivada", "relacionada", "no relacionada"],
}
GRADES = ("copy", "derived", "related", "unrelated")


def _row(words, name: str, scorer: str, figures: Figures) -> list[str]:
    at90 = figures.get("at_precision_0.9") or {}
    at95 = figures.get("at_precision_0.95") or {}
    one = (figures.get("thresholds") or {}).get("0.01") or {}
    return [
        name,
        scorer,
        num(figures.get("micro_ap"), 3),
        f"{num(at90.get('recall'), 3)} ({num(at90.get('threshold'), 3)})",
        num(at95.get("recall"), 3),
        num(one.get("threshold"), 3),
        num(one.get("recall"), 3),
        num(one.get("false_rate"), 3),
    ]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _confusion_table(words, lang: str, counts: dict[str, dict[str, int]], where: str):
    header = [f"{words['col_truth']} ({where})", *GRADE_WORDS[lang]]
    rows = [[truth, *[str(row.get(g, 0)) for g in GRADES]] for truth, row in counts.items()]
    return header, rows


def _figure_rows(words, result: EvalResult) -> list[list[str]]:
    """The ISC figures and the 1% threshold of the trained model and its baselines."""
    name = str(result.name if result.name is not None else "?")
    rows = []
    for task in ("image", "text", "fused"):
        figures = result.verification.open_set.get(task)
        if figures:
            rows.append(_row(words, name, f"{words['trained']}, {task}", figures))
    for kind, tasks in (("frozen", ("image", "text", "fused")), ("phash", ("image",))):
        for task in tasks:
            baseline = result.baselines.of(kind, task)
            if baseline and baseline.open_set:
                rows.append(_row(words, name, f"{words[kind]}, {task}", baseline.open_set))
    return rows


def _run_calibration(words, run_dir: Path) -> str | None:
    """Where the run's calibration.json was set, in a sentence (``None`` without one)."""
    calibration = _read_json(run_dir / "calibration.json")
    open_set = calibration.get("open_set") or {}
    if not open_set:
        return None
    chose = open_set.get("about", {}).get("chose_nothing")
    split, _, data = str(calibration.get("source", "?")).partition(" split of ")
    return words["calibration_run"].format(
        split=split,
        data=data or "?",
        chose=words["chose_nothing" if chose else "chose_something"],
    )


def _measured_table(words, about: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per task and distractor rate: the collection's threshold, recall and false rate."""
    rows = []
    for task, rates in (about.get("measured") or {}).items():
        for rate, values in rates.items():
            low, high = values.get("false_rate_interval", [None, None])
            rows.append(
                [
                    task,
                    rate,
                    num(values.get("threshold"), 3),
                    num(values.get("recall"), 3),
                    f"{num(values.get('false_rate'), 3)} ({num(low, 3)}–{num(high, 3)})",
                ]
            )
    return [words[f"col_{k}"] for k in ("task", "rate", "threshold", "recall", "false")], rows


def _reliability_table(measured: dict[str, Any]) -> list[list[str]]:
    return [
        [
            f"{num(row['low'], 2)}–{num(row['high'], 2)}",
            num(row["weight"], 3),
            num(row["stated"], 3),
            num(row["observed"], 3),
        ]
        for row in measured.get("bins", [])
    ]


def _collection_part(words, lang: str, run_dir: Path) -> tuple[list[str], list]:
    """The paragraphs and tables of the calibration on the indexed collection
    (``RUN/index/index.json``); none when the index has none."""
    collection = _read_json(run_dir / "index" / "index.json").get("calibration") or {}
    if not collection:
        return [], []
    about = collection.get("about", {})
    on = about.get("on", {})
    paragraphs = [
        words["calibration_index"].format(
            index=run_dir.name + "/index",
            matches=on.get("match_queries", "?"),
            distractors=on.get("distractor_queries", "?"),
            seed=on.get("seed", "?"),
        )
    ]
    tables = [_measured_table(words, about)]
    confusion = about.get("confusion") or {}
    if confusion.get("counts"):
        where = words["where_index"].format(task=confusion.get("task", "?"))
        paragraphs.append(words["confusion"].format(where=where))
        tables.append(_confusion_table(words, lang, confusion["counts"], where))
    for task, measured in (about.get("reliability") or {}).items():
        if not measured or measured.get("ece") is None:
            continue
        paragraphs.append(
            words["reliability"].format(
                task=task,
                ece=num(measured["ece"], 3),
                results=measured.get("results", "?"),
                before=num(measured.get("ece_best_result_table_everywhere"), 3),
            )
        )
        header = [words[f"col_{k}"] for k in ("bin", "share", "stated", "observed")]
        tables.append((header, _reliability_table(measured)))
    return paragraphs, tables


def verdicts_part(run_dir: str | Path, lang: str = "en") -> dict[str, Any] | None:
    """``{"title", "paragraphs", "tables"}`` for the run, or ``None`` when no evaluation of it
    has open-set figures (evaluated before they existed)."""
    check_lang(lang)
    words = WORDS[lang]
    run_dir = Path(run_dir)
    evaluations = [result for result in read_results(run_dir) if result.verification.open_set]
    if not evaluations:
        return None
    paragraphs = [words["intro"]]
    header = [words[f"col_{key}"] for key in ("evaluation", "scorer", "map", "r90", "r95")]
    header += [words["col_t1"], words["col_rec1"], words["col_false1"]]
    rows: list[list[str]] = []
    for result in evaluations:
        rows += _figure_rows(words, result)
        if result.pairs:
            name = str(result.name if result.name is not None else "?")
            split = result.split if result.split is not None else "?"
            paragraphs.append(words["pairs"].format(name=name, split=split))
    tables = [(header, rows)]
    calibration = _run_calibration(words, run_dir)
    if calibration:
        paragraphs.append(calibration)
    for result in evaluations:
        for task, counts in result.verification.open_set_confusion.items():
            if task == "fused" and result.name in ("calib", "val"):
                where = words["where_eval"].format(name=result.name, task=task)
                paragraphs.append(words["confusion"].format(where=where))
                tables.append(_confusion_table(words, lang, counts, where))
    collection_paragraphs, collection_tables = _collection_part(words, lang, run_dir)
    paragraphs += collection_paragraphs
    tables += collection_tables
    return {"title": words["title"], "paragraphs": paragraphs, "tables": tables}
