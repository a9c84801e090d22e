"""The report's generalisation part: each evaluation, trained vs frozen vs hash, losses flagged."""

from __future__ import annotations

import json

import pytest

from artsim.report.generalisation import generalisation_part
from artsim.report.report import build_report


def _external(name: str, image: float, frozen_image: float) -> dict:
    return {
        "name": name,
        "tasks": {
            "image": {"recall@1": image},
            "text": {"recall@1": 0.9},
            "fused": {"recall@1": 0.95},
        },
        "baselines": {
            "frozen": {
                "image": {"recall@1": frozen_image},
                "text": {"recall@1": 0.8},
                "fused": {"recall@1": 0.9},
            },
            "phash": {"image": {"recall@1": 0.34}},
        },
    }


@pytest.mark.parametrize(
    "lang, flag, sentence",
    [
        ("en", "BELOW FROZEN", "Below frozen on heldout-art: image."),
        (
            "es",
            "POR DEBAJO DE CONGELADO",
            "Por debajo de las torres congeladas en heldout-art: imagen.",
        ),
    ],
)
def test_report_flags_tasks_below_frozen(evaluated_run, run_copy, lang, flag, sentence):
    run = run_copy(evaluated_run)
    (run / "eval" / "heldout-art.json").write_text(
        json.dumps(_external("heldout-art", 0.375, 0.536)), encoding="utf-8"
    )
    title, paragraphs, (_, rows) = generalisation_part(run, lang)
    heldout_rows = [row for row in rows if row[0] == "heldout-art"]
    assert heldout_rows[0][1] in ("image", "imagen")
    assert heldout_rows[0][2:] == ["0.375", "0.536", "0.34", "-0.161", flag]
    assert all(row[-1] == "" for row in heldout_rows[1:])
    assert any(paragraph.startswith(sentence) for paragraph in paragraphs)
    paths = build_report(run, lang=lang)
    markdown = paths["md"].read_text(encoding="utf-8")
    assert title in markdown and sentence in markdown and flag in markdown


def test_no_flag_when_every_task_holds(tmp_path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "external-x.json").write_text(
        json.dumps(_external("external-x", 0.6, 0.5)), encoding="utf-8"
    )
    _, paragraphs, (_, rows) = generalisation_part(tmp_path, "en")
    assert all(row[-1] == "" for row in rows)
    assert "at or above the frozen towers on every task of 1 evaluation(s)" in paragraphs[-1]
    assert generalisation_part(tmp_path / "nothing", "en") is None
