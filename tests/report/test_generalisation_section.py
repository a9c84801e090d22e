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
    assert heldout_rows[0][2:] == ["0.375", "0.536", "0.34", "-0.161", "–", flag]
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
    assert "not below the frozen towers on any task of 1 evaluation(s)" in paragraphs[-1]
    assert generalisation_part(tmp_path / "nothing", "en") is None


@pytest.mark.parametrize(
    "lang, words",
    [
        ("en", ("lower, within chance", "within chance: text (+1 / −3 (p 0.62))")),
        ("es", ("menor, dentro del azar", "dentro del azar: texto (+1 / −3 (p 0.62))")),
    ],
)
def test_a_loss_within_chance_is_shown_with_its_counts_but_not_flagged(tmp_path, lang, words):
    result = _external("external-x", 0.6, 0.5)
    result["tasks"]["text"]["recall@1"] = 0.79  # frozen text is 0.8
    result["baselines"]["frozen"]["text"]["paired"] = {
        "wins": 1,
        "losses": 3,
        "queries": 400,
        "p_value": 0.625,
    }
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "external-x.json").write_text(json.dumps(result), encoding="utf-8")
    _, paragraphs, (_, rows) = generalisation_part(tmp_path, lang)
    text_row = next(row for row in rows if row[1] in ("text", "texto"))
    assert text_row[-2:] == ["+1 / −3 (p 0.62)", words[0]]
    assert not any(row[-1] in ("BELOW FROZEN", "POR DEBAJO DE CONGELADO") for row in rows)
    assert any(words[1] in paragraph for paragraph in paragraphs)
