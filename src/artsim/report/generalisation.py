"""The report's generalisation part: every evaluation of the run, trained vs frozen vs hash.

A run's own validation shares corpus, style and transform code with training and cannot see a
model that has learned its corpus rather than similarity; the external, held-out-family and
leave-one-source-out evaluations can. This part lists each evaluation found in ``RUN_DIR/eval``
with, per task, the trained recall@1, the frozen towers', the perceptual hash's, and a flag where
the trained model is below frozen, and says in words (English or Spanish) which tasks those are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from artsim.eval.generalisation import baseline_comparison
from artsim.eval.result import Comparison, read_results
from artsim.report.text import check_lang, num

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Generalisation: trained model against the frozen towers",
        "intro": (
            "Each evaluation of this run, with the trained model's recall@1 per task next to the "
            "frozen tower features (no training) and the perceptual hash. Validation shares the "
            "corpus, style and transform code with training; external, held-out-family and "
            "leave-one-source-out evaluations do not, and only they show whether the model "
            "generalises."
        ),
        "below": (
            "Below frozen on {evaluation}: {tasks}. On these tasks the trained model is worse "
            "than the towers it starts from; do not ship it for such data without fixing that."
        ),
        "none_below": "The trained model is not below the frozen towers on any task of {n} "
        "evaluation(s).",
        "within_chance": (
            "Lower than frozen on {evaluation}, within chance: {tasks}. Per query, the trained "
            "model found the original where the frozen towers did not (won) or the reverse "
            "(lost); with so few queries changing, an exact sign test cannot tell the gap from "
            "chance (p ≥ 0.05)."
        ),
        "col_paired": "won / lost (p)",
        "lower": "lower, within chance",
        "col_evaluation": "evaluation",
        "col_task": "task",
        "col_trained": "trained",
        "col_frozen": "frozen",
        "col_phash": "perceptual hash",
        "col_minus": "trained − frozen",
        "col_flag": "flag",
        "flag": "BELOW FROZEN",
    },
    "es": {
        "title": "Generalización: el modelo entrenado frente a las torres congeladas",
        "intro": (
            "Cada evaluación de esta ejecución, con el recall@1 del modelo entrenado por tarea "
            "junto al de las características congeladas de las torres (sin entrenar) y al del "
            "hash perceptual. La validación comparte corpus, estilo y código de transformaciones "
            "con el entrenamiento; las evaluaciones externas, con la familia reservada o dejando "
            "fuera una fuente no, y solo ellas muestran si el modelo generaliza."
        ),
        "below": (
            "Por debajo de las torres congeladas en {evaluation}: {tasks}. En estas tareas el "
            "modelo entrenado es peor que las torres de las que parte; no lo uses con datos así "
            "sin corregirlo antes."
        ),
        "none_below": "El modelo entrenado no queda por debajo de las torres congeladas en "
        "ninguna tarea de {n} evaluación(es).",
        "within_chance": (
            "Por debajo de congelado en {evaluation}, dentro del azar: {tasks}. Por consulta, el "
            "modelo entrenado encontró el original donde las torres congeladas no (ganadas) o al "
            "revés (perdidas); con tan pocas consultas distintas, una prueba exacta de signos no "
            "distingue la diferencia del azar (p ≥ 0,05)."
        ),
        "col_paired": "ganadas / perdidas (p)",
        "lower": "menor, dentro del azar",
        "col_evaluation": "evaluación",
        "col_task": "tarea",
        "col_trained": "entrenado",
        "col_frozen": "congelado",
        "col_phash": "hash perceptual",
        "col_minus": "entrenado − congelado",
        "col_flag": "aviso",
        "flag": "POR DEBAJO DE CONGELADO",
    },
}
TASK_NAMES = {
    "en": {"image": "image", "text": "text", "fused": "image + text"},
    "es": {"image": "imagen", "text": "texto", "fused": "imagen + texto"},
}


def generalisation_part(
    run_dir: str | Path, lang: str = "en"
) -> tuple[str, list[str], tuple[list[str], list[list[str]]]] | None:
    """``(title, paragraphs, (header, rows))`` for the run's evaluations, or ``None`` if it has
    none. Every evaluation is compared afresh, so older result files without the flag count too.
    """
    check_lang(lang)
    words, tasks = WORDS[lang], TASK_NAMES[lang]
    evaluations = read_results(run_dir)
    if not evaluations:
        return None
    header = [words[f"col_{key}"] for key in ("evaluation", "task", "trained", "frozen")]
    header += [words["col_phash"], words["col_minus"], words["col_paired"], words["col_flag"]]
    rows: list[list[str]] = []
    paragraphs = [words["intro"]]
    flagged = False
    for result in evaluations:
        comparison = baseline_comparison(result.retrieval, result.baselines)
        name = str(result.name if result.name is not None else "?")
        for task, row in comparison.vs_baselines.items():
            rows.append(
                [
                    name,
                    tasks.get(task, task),
                    num(row.trained, 3),
                    num(row.frozen, 3),
                    num(row.phash, 3),
                    _signed(row.minus_frozen),
                    _paired(row),
                    _flag(row, words),
                ]
            )
        if comparison.below_frozen:
            names = ", ".join(tasks.get(task, task) for task in comparison.below_frozen)
            paragraphs.append(words["below"].format(evaluation=name, tasks=names))
            flagged = True
        if comparison.lower_within_chance:
            names = ", ".join(
                f"{tasks.get(task, task)} ({_paired(comparison.vs_baselines[task])})"
                for task in comparison.lower_within_chance
            )
            paragraphs.append(words["within_chance"].format(evaluation=name, tasks=names))
    if not flagged:
        paragraphs.append(words["none_below"].format(n=len(evaluations)))
    return words["title"], paragraphs, (header, rows)


def _flag(row: Comparison, words: dict[str, str]) -> str:
    if row.below_frozen:
        return words["flag"]
    return words["lower"] if row.lower_within_chance else ""


def _paired(row: Comparison) -> str:
    if row.wins is None:
        return "–"
    return f"+{row.wins} / −{row.losses} (p {num(row.p_value, 2)})"


def _signed(value: Any) -> str:
    return "–" if value is None else f"{value:+.3f}"
