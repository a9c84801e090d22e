"""Prompt texts for the evaluation-only derivation family, written apart from the training ones.

The training stand-ins (:mod:`artsim.data.families.training.derive`) wrap a caption in "a painting
of ..., style" templates. A text model tuned on those can learn the templates; these prompts use
other wordings, other style vocabulary and other orders (the subject often last, a user's voice,
hashtags), in English and Spanish, so a text evaluation on them is not an evaluation of template
matching.

A Spanish prompt needs a Spanish description of the original (metadata ``text_es``, or the
original's own text when its ``lang`` is ``es``); originals without one get English prompts only.
"""

from __future__ import annotations

import re

import numpy as np

from artsim.data.manifest.items import Item

MEDIA_EN = (
    "gouache",
    "charcoal drawing",
    "linocut print",
    "stained glass",
    "vintage photograph",
    "felt-tip doodle",
    "3d render",
    "mosaic tiles",
    "risograph",
    "chalk on a blackboard",
    "vector sticker",
    "children's book illustration",
)
MEDIA_ES = {
    "gouache": "gouache",
    "charcoal drawing": "dibujo al carboncillo",
    "linocut print": "grabado en linóleo",
    "stained glass": "vidriera",
    "vintage photograph": "fotografía antigua",
    "felt-tip doodle": "garabato con rotulador",
    "3d render": "render 3d",
    "mosaic tiles": "mosaico de teselas",
    "risograph": "risografía",
    "chalk on a blackboard": "tiza sobre pizarra",
    "vector sticker": "pegatina vectorial",
    "children's book illustration": "ilustración de cuento infantil",
}
# What a pattern looks like, in the words a person sharing it would use.
PATTERN_WORDS_EN = {
    "text_overlay": "with text on it",
    "emoji_overlay": "with emojis",
    "screenshot_frame": "screenshot",
    "meme_caption": "meme",
    "mosaic": "grid of pictures",
    "collage": "collage",
    "perspective_warp": "photo taken at an angle",
    "blur_noise": "blurry and grainy",
    "crop_pad": "cropped",
    "colour_grade": "warm film look",
    "painterly": "painterly filter",
}
PATTERN_WORDS_ES = {
    "text_overlay": "con texto encima",
    "emoji_overlay": "con emojis",
    "screenshot_frame": "captura de pantalla",
    "meme_caption": "meme",
    "mosaic": "cuadrícula de imágenes",
    "collage": "collage",
    "perspective_warp": "foto tomada en ángulo",
    "blur_noise": "borrosa y con grano",
    "crop_pad": "recortada",
    "colour_grade": "look de película cálido",
    "painterly": "filtro pictórico",
}
TEMPLATES_EN = (
    "{medium} version of {subject}",
    "my {medium} remix: {subject}",
    "{subject} but as {medium}, {look}",
    "{look} - {subject}",
    "reimagined {subject}, {medium}, soft light, 8k",
    "#{tag} {subject} {look}",
    "can you make {subject} look like {medium}?",
    "{subject}",
)
TEMPLATES_ES = (
    "versión en {medium} de {subject}",
    "mi remix en {medium}: {subject}",
    "{subject} pero como {medium}, {look}",
    "{look} - {subject}",
    "{subject} reinventado, {medium}, luz suave, 8k",
    "¿puedes hacer que {subject} parezca {medium}?",
)


def spanish_description(original: Item) -> str:
    """The original's Spanish description ('' when it has none)."""
    spanish = original.metadata.get("text_es", "").strip()
    if not spanish and original.lang == "es":
        spanish = original.text.strip()
    return spanish


def english_description(original: Item) -> str:
    """The original's English description: its own text, else its title ('' when none)."""
    if original.lang not in ("", "en"):
        return ""
    return original.text.strip() or original.title.strip()


def heldout_prompt(
    original: Item, pattern: str, rng: np.random.Generator, spanish: bool = False
) -> tuple[str, str]:
    """A prompt and its language for one derived item of ``original``; ``("", "")`` if the
    original has no description in the asked language or in English.

    ``pattern`` is the name :func:`artsim.data.families.heldout.transforms.apply_pattern` returned;
    its first part chooses the words for the look.

    >>> from pathlib import Path
    >>> item = Item(id="a", group="a", role="original", image=Path("a.png"), text="A red fox.")
    >>> heldout_prompt(item, "meme_caption", np.random.default_rng(0))
    ('#fox A red fox meme', 'en')
    """
    description = spanish_description(original) if spanish else english_description(original)
    lang = "es" if spanish else "en"
    if not description:
        fallback = english_description(original)
        if not fallback:
            fallback, lang = spanish_description(original), "es"
            if not fallback:
                return "", ""
        else:
            lang = "en"
        description = fallback
    first = pattern.removeprefix("combo:").split("+")[0]
    if lang == "es":
        templates, medium = TEMPLATES_ES, MEDIA_ES[_pick(MEDIA_EN, rng)]
        look = PATTERN_WORDS_ES.get(first, "editada")
    else:
        templates, medium = TEMPLATES_EN, _pick(MEDIA_EN, rng)
        look = PATTERN_WORDS_EN.get(first, "edited")
    subject = _subject(description)
    tag = re.sub(r"\W+", "", subject.split(" ")[-1]) or "art"
    text = _pick(templates, rng).format(subject=subject, medium=medium, look=look, tag=tag)
    return text, lang


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _subject(description: str) -> str:
    """'A fly.' -> 'a fly'; an ALL-CAPS or proper name keeps its capitals."""
    subject = description.strip().rstrip(".!").strip()
    words = subject.split(" ")
    if words and words[0][:1].isupper() and words[0][1:].islower():
        words[0] = words[0].lower()
    return " ".join(words)
