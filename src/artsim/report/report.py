"""A training report in HTML (self-contained) and Markdown, in English or Spanish.

The report reads the run folder (``config.yaml``, ``summary.json``, ``metrics.jsonl``) and the
evaluation of its validation split (``eval/val.json`` with its ``.curves.json`` and
``.top5.json``), through :mod:`artsim.report.reading`. When the evaluation is missing or was
made with another model, the report says so (and how to make it) instead of evaluating. The one
model work it does is drawing the gallery's match maps (``maps``). The analysis is :mod:`artsim.report.analysis`, the rendering
:mod:`artsim.report.render`; the ``report`` command is in :mod:`artsim.cli.report`.
"""

from __future__ import annotations

from pathlib import Path

from artsim.errors import UserError
from artsim.report.analysis import analyse_run
from artsim.report.reading import Evaluation, load_evaluation, load_run
from artsim.report.render import render_html, render_markdown
from artsim.report.sections import Section
from artsim.report.text import check_lang, label, say


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
    maps: bool = True,
) -> dict[str, Path]:
    """Write the report of a run in ``lang``; returns ``{"html": path, "md": path}``.

    ``evaluation`` defaults to the run's ``eval/val.json`` (:func:`load_evaluation`); when there
    is none the report has no evaluation sections and says why in their place. ``maps``: each
    example of the gallery shows where its query matches its first result (a match map,
    :func:`artsim.report.match_picture.gallery_maps`; about 1.3 s a row on 2 CPU cores, computed
    once per process and model).

    >>> build_report("runs/demo", lang="es")
    {'html': PosixPath('runs/demo/report.es.html'), 'md': PosixPath('runs/demo/report.es.md')}
    """
    try:
        check_lang(lang)
    except ValueError as error:
        raise UserError(str(error)) from None
    run = load_run(run_dir)
    if evaluation is None:
        evaluation = load_evaluation(run, "val")
    sections, _ = analyse_run(run, evaluation, lang)
    html_path, md_path = report_paths(run.path, lang, out_dir)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    title = say(lang, "title", run=run.name)
    result = evaluation.result
    model, data = (result.model_id, result.data_fingerprint) if result else (None, None)
    meta = " · ".join(
        part
        for part in (
            str(run.path),
            f"{label(lang, 'meta_model')} {model}" if model else "",
            f"{label(lang, 'meta_data')} {data}" if data else "",
        )
        if part
    )
    items = (evaluation.top5 or {}).get("items") or {}
    for section in sections:
        if maps and section.gallery:
            section.maps = _gallery_maps(run.path, model or "", section, items)
    html_path.write_text(render_html(title, meta, sections, items, lang), encoding="utf-8")
    image_dir = md_path.parent / f"{md_path.stem}_files"
    md_path.write_text(
        render_markdown(title, meta, sections, lang, image_dir, md_path.parent), encoding="utf-8"
    )
    return {"html": html_path, "md": md_path}


# gallery maps already drawn in this process, by (run, model, query, first result): a report in
# a second language reuses them
_drawn_maps: dict[tuple[str, str, str, str], bytes] = {}


def _gallery_maps(run_path: Path, model_id: str, section: Section, items: dict) -> dict:
    def key(entry: dict) -> tuple[str, str, str, str]:
        first = (entry.get("top") or [{}])[0].get("id", "")
        return (str(run_path), model_id, entry["query"], first)

    missing = [entry for entry in section.gallery if key(entry) not in _drawn_maps]
    if missing:
        from artsim.report.match_picture import gallery_maps  # loads the model: only here

        drawn = gallery_maps(run_path, missing, items)
        for entry in missing:
            if entry["query"] in drawn:
                _drawn_maps[key(entry)] = drawn[entry["query"]]
    return {e["query"]: _drawn_maps[key(e)] for e in section.gallery if key(e) in _drawn_maps}
