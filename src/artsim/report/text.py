"""The words of reports, comparisons and sweeps, in English and Spanish.

The words themselves are data files, ``texts/en.yaml`` and ``texts/es.yaml``. Every sentence is a whole template per language (``str.format`` fields), not a key glued to
fragments: word order, agreement and punctuation differ between the languages, so each sentence
is written once in each, by hand. :func:`say` fills one; :func:`label` names a figure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

LANGS = ("en", "es")

TEXTS_DIR = Path(__file__).parent / "texts"


def _load(lang: str) -> dict[str, dict[str, str]]:
    """``texts/<lang>.yaml``: its ``templates`` (whole sentences) and ``labels`` (names)."""
    return yaml.safe_load((TEXTS_DIR / f"{lang}.yaml").read_text(encoding="utf-8"))


_TEXTS = {lang: _load(lang) for lang in LANGS}
# Sentence templates and names of figures, tasks and modalities, per language.
TEMPLATES: dict[str, dict[str, str]] = {lang: texts["templates"] for lang, texts in _TEXTS.items()}
LABELS: dict[str, dict[str, str]] = {lang: texts["labels"] for lang, texts in _TEXTS.items()}


def check_lang(lang: str) -> str:
    """The language code if supported; otherwise a ValueError naming the known ones."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGS)}")
    return lang


def say(lang: str, key: str, /, **fields: Any) -> str:
    """One sentence template of ``lang`` filled with ``fields``.

    >>> say("es", "lr_final_only", final="0.00015")
    'La tasa de aprendizaje final fue 0.00015.'
    """
    return TEMPLATES[check_lang(lang)][key].format(**fields)


def label(lang: str, key: str, /) -> str:
    """The name of a figure, task or modality; ``eval/<task>/<metric>`` keys are composed."""
    names = LABELS[check_lang(lang)]
    if key in names:
        return names[key]
    for prefix in ("eval/", "verification/", "open_set/"):
        if key.startswith(prefix):
            parts = key[len(prefix) :].split("/")
            return names[prefix] + " ".join(names.get(part, part) for part in parts)
    return key


def num(value: Any, digits: int = 4) -> str:
    """A figure as the seed writes it: up to ``digits`` significant digits, ``–`` if missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{float(value):.{digits}g}"


def pct(value: Any, lang: str, digits: int = 1) -> str:
    """A share (0.32) as a percentage ("32.0%"; Spanish puts a space before the sign)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = f"{100.0 * float(value):.{digits}f}"
    return f"{text} %" if lang == "es" else f"{text}%"


def join_list(parts: list[str], lang: str) -> str:
    """``a, b and c`` / ``a, b y c``."""
    if len(parts) <= 1:
        return "".join(parts)
    conjunction = label(lang, "and")
    last = parts[-1].lower()
    # Spanish writes "e" for "y" before an /i/ sound: "español e inglés"
    if lang == "es" and (
        last.startswith(("i", "í"))
        or (last.startswith(("hi", "hí")) and not last.startswith("hie"))
    ):
        conjunction = "e"
    return f"{', '.join(parts[:-1])} {conjunction} {parts[-1]}"
