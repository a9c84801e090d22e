"""Sentence templates may name any field, even one called like say()'s own arguments."""

from __future__ import annotations

from artsim.report.text import TEMPLATES, say


def test_a_field_named_lang_fills_the_template():
    assert "Spanish" in say("en", "rec_lang", lang="Spanish")
    assert "español" in say("es", "rec_lang", lang="español")


def test_both_languages_have_the_same_templates():
    assert set(TEMPLATES["en"]) == set(TEMPLATES["es"])


def test_both_languages_name_the_same_figures():
    from artsim.report.text import LABELS

    assert set(LABELS["en"]) == set(LABELS["es"])
