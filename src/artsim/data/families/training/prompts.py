"""Prompt-like texts for the stand-ins: an original's caption wrapped in English or Spanish
templates with a style word, the way people write prompts for image generators."""

from __future__ import annotations

import re

import numpy as np

from artsim.data.manifest.items import Item

STYLES_EN = (
    "watercolor",
    "oil painting",
    "pixel art",
    "pencil sketch",
    "poster",
    "impressionist",
    "cartoon",
    "art nouveau",
    "ukiyo-e",
    "pop art",
    "low poly",
    "digital art",
)
STYLES_ES = {
    "watercolor": "acuarela",
    "oil painting": "óleo",
    "pixel art": "pixel art",
    "pencil sketch": "boceto a lápiz",
    "poster": "cartel",
    "impressionist": "impresionista",
    "cartoon": "dibujo animado",
    "art nouveau": "art nouveau",
    "ukiyo-e": "ukiyo-e",
    "pop art": "pop art",
    "low poly": "low poly",
    "digital art": "arte digital",
    "black and white": "blanco y negro",
    "collage": "collage",
    "glitch art": "glitch",
    "embossed": "relieve",
}
# A prompt usually names the look the image has, so a transform that gives a recognisable look
# suggests the style word (the rest pick a style at random).
STYLE_OF_TRANSFORM = {
    "pixelate": "pixel art",
    "cartoon": "cartoon",
    "oil": "oil painting",
    "blur": "watercolor",
    "grayscale": "black and white",
    "posterize": "poster",
    "canvas": "collage",
    "overlay": "collage",
    "palette": "pop art",
    "emboss": "embossed",
    "noise": "glitch art",
}

TEMPLATES_EN = (
    "a painting of {caption}, {style}",
    "{caption}, {style}, trending on artstation, highly detailed",
    "{style} of {caption}",
    "{keywords}, {style}, 4k",
    "digital illustration of {caption} in the style of {style}",
    "{caption}, {style}, masterpiece, sharp focus",
    "{keywords}",
)
TEMPLATES_ES = (
    "{caption}, estilo {style}, muy detallado",
    "una ilustración de {caption} al estilo {style}",
    "{caption}, {style}, tendencia en artstation, alta resolución",
    "{keywords}, estilo {style}, 4k",
    "{caption} en {style}, obra maestra",
)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "and",
        "or",
        "with",
        "for",
        "from",
        "by",
        "is",
        "are",
        "its",
        "it",
        "this",
        "that",
        "called",
        "un",
        "una",
        "unos",
        "unas",
        "el",
        "la",
        "los",
        "las",
        "de",
        "del",
        "en",
        "y",
        "o",
        "con",
        "para",
        "por",
        "al",
        "se",
        "que",
        "su",
    ]
)
SPANISH_SHARE = 0.5


def make_prompt(
    original: Item, rng: np.random.Generator, style: str | None = None
) -> tuple[str, str]:
    """A prompt-like text and its language for one stand-in of ``original``; ``("", "")`` if none.

    English templates wrap the original's caption; when the original has a Spanish caption
    (metadata ``text_es``, or its own text with ``lang == "es"``) some prompts are Spanish.
    """
    spanish_caption = original.metadata.get("text_es", "").strip()
    if not spanish_caption and original.lang == "es":
        spanish_caption = original.text.strip()
    own_caption = "" if original.lang == "es" else original.text.strip()
    if not own_caption and not spanish_caption:
        return "", ""
    use_spanish = bool(spanish_caption) and (not own_caption or rng.random() < SPANISH_SHARE)
    style = style or STYLES_EN[int(rng.integers(len(STYLES_EN)))]
    if use_spanish:
        caption, lang, templates = spanish_caption, "es", TEMPLATES_ES
        style = STYLES_ES.get(style, style)
    else:
        caption, lang, templates = own_caption, original.lang or "en", TEMPLATES_EN
    # The title is in the original's language, so it only feeds keywords for that language.
    keywords = _keywords(caption if use_spanish else f"{original.title} {caption}", rng)
    template = templates[int(rng.integers(len(templates)))]
    text = template.format(caption=_as_phrase(caption), style=style, keywords=keywords)
    return text, lang


def _keywords(text: str, rng: np.random.Generator, limit: int = 5) -> str:
    words = []
    for word in re.findall(r"[^\W\d_][\w'-]*", text.lower()):
        if len(word) > 2 and word not in STOPWORDS and word not in words:
            words.append(word)
    if not words:
        return _as_phrase(text)
    order = rng.permutation(len(words))[:limit]
    return ", ".join(words[position] for position in order)


def _as_phrase(caption: str) -> str:
    """A caption as it reads inside a prompt: no final full stop, no capital on a plain word."""
    phrase = caption.strip().rstrip(".").strip()
    first = phrase.split(" ", 1)[0]
    # "A fly." -> "a fly", "Una mosca." -> "una mosca"; "US" or "I" stay as they are.
    if first == "A" or (len(first) > 1 and first[0].isupper() and first[1:].islower()):
        phrase = phrase[0].lower() + phrase[1:]
    return phrase
