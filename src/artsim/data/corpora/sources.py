"""More Debian packages of drawn art for the ``full`` training corpus: icons, emoji, game art.

The demo corpus draws on Tux Paint's stamps and Open Clip Art. A model trained on two styles
learns those styles; the ``full`` corpus adds other kinds of drawing so that what the model
learns is closer to similarity itself:

========================  ==========================================  ===========
package                   what                                        licence
========================  ==========================================  ===========
faenza-icon-theme         desktop icons (one picture per icon name)   GPL-3+
fonts-noto-color-emoji    Noto colour emoji, rendered from the font   Apache-2.0
supertux-data             SuperTux game sprites, tiles, backgrounds   GPL-3+
lincity-ng-data           LinCity-NG rendered city buildings          GPL-2+
pingus-data               Pingus sprites and ground pieces            GPL (see copyright)
frozen-bubble-data        Frozen Bubble sprites and backgrounds       GPL-2
tuxmath-data              Tux Math sprites                            GPL-3+
========================  ==========================================  ===========

Never ``wesnoth-*`` or ``gcompris-*`` (held back for the project's evaluation), never pysiogame
or flare-game (this project's external evaluation sets). Animation frames (``walk-0``,
``walk-1``...) share a variant key, so one frame per animation is kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from artsim.data.corpora.candidates import Candidate
from artsim.data.corpora.debian import PackageTree

FAENZA = "faenza-icon-theme"
NOTO_EMOJI = "fonts-noto-color-emoji"
EMOJI_FONT = "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
# Noto's bitmaps are drawn at 109 px; any other size is a resampled copy.
EMOJI_SIZE = 109
RENDERED = ".artsim-rendered"


@dataclass(frozen=True)
class GameArt:
    """Where a game package keeps its pictures, and which sub-folders are not artwork."""

    package: str
    folder: str
    artist: str
    skip_parts: tuple[str, ...] = ()


GAME_ART = {
    "supertux-data": GameArt(
        "supertux-data",
        "usr/share/games/supertux2/images",
        "SuperTux contributors",
        skip_parts=("engine", "particles", "editor", "fonts"),
    ),
    "lincity-ng-data": GameArt(
        "lincity-ng-data",
        "usr/share/games/lincity-ng/images",
        "LinCity-NG contributors",
        skip_parts=("gui", "mainmenu"),
    ),
    "pingus-data": GameArt(
        "pingus-data",
        "usr/share/games/pingus/data/images",
        "Pingus contributors",
        skip_parts=("editor", "fonts", "menu"),
    ),
    "frozen-bubble-data": GameArt(
        "frozen-bubble-data",
        "usr/share/games/frozen-bubble/gfx",
        "Frozen Bubble contributors",
        skip_parts=("flags",),
    ),
    "tuxmath-data": GameArt(
        "tuxmath-data", "usr/share/tuxmath/images", "Tux Math contributors", skip_parts=("status",)
    ),
}


def _words(text: str) -> str:
    words = [w for w in re.split(r"[_\-\s.]+", text) if w and not w.isdigit()]
    # "snowball2" -> "snowball": trailing frame numbers are not words
    return " ".join(re.sub(r"\d+$", "", w) for w in words).strip().lower()


def _variant_key(package: str, relative: Path) -> str:
    stem = re.sub(r"([_\-\s.]*\d+)+$", "", relative.stem.lower())
    stem = re.sub(r"[_\-](left|right|mirror|l|r)$", "", stem)
    return "/".join([package, *relative.parent.parts, stem])


def _candidate_id(prefix: str, parts: tuple[str, ...]) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ".".join([prefix, *parts]))


def find_game_art(tree: PackageTree, spec: GameArt) -> list[Candidate]:
    """Every PNG/JPEG under the package's image folder, minus the skipped sub-folders; the text
    names the object from its folder and file name (``creatures/mr_tree/walk-0`` -> ``mr tree
    walk, supertux game art``)."""
    root = tree.root / spec.folder
    label = spec.package.removesuffix("-data").replace("-", " ")
    candidates = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg") or path.is_symlink():
            continue
        relative = path.relative_to(root)
        if set(p.lower() for p in relative.parts[:-1]) & set(spec.skip_parts):
            continue
        parent = _words(relative.parts[-2]) if len(relative.parts) > 1 else ""
        name = _words(path.stem)
        title = " ".join(dict.fromkeys(f"{parent} {name}".split())) or label
        category = relative.parts[0] if len(relative.parts) > 1 else "misc"
        candidates.append(
            Candidate(
                id=_candidate_id(label.replace(" ", ""), relative.with_suffix("").parts),
                image=path,
                package=tree.name,
                category=category,
                title=title,
                text=f"{title}, {label} game art",
                lang="en",
                artist=spec.artist,
                source=tree.source,
                variant_key=_variant_key(tree.name, relative),
                metadata={"category": category},
            )
        )
    return candidates


def find_faenza_icons(tree: PackageTree) -> list[Candidate]:
    """One picture per icon of the main Faenza theme (the largest size drawn; the -Dark,
    -Darker and other variants and the symlinked aliases are left out)."""
    root = tree.root / "usr" / "share" / "icons" / "Faenza"
    best: dict[tuple[str, str], tuple[int, Path]] = {}
    for path in sorted(root.glob("*/*/*.png")):
        if path.is_symlink():
            continue
        context, size = path.parent.parent.name, path.parent.name
        if not size.isdigit():
            continue
        key = (context, path.stem)
        if key not in best or int(size) > best[key][0]:
            best[key] = (int(size), path)
    candidates = []
    for (context, name), (_, path) in sorted(best.items()):
        title = _words(name.replace("gnome-", "").replace("preferences-", "preferences "))
        candidates.append(
            Candidate(
                id=_candidate_id("faenza", (context, name)),
                image=path,
                package=tree.name,
                category=context,
                title=title,
                text=f"{title} icon",
                lang="en",
                artist="Faenza icon theme contributors",
                source=tree.source,
                variant_key=f"{tree.name}/{title}",
                metadata={"category": context},
            )
        )
    return candidates


def find_noto_emoji(tree: PackageTree, render_dir: Path | None = None) -> list[Candidate]:
    """Every single-code-point emoji of Noto Color Emoji, rendered once to a PNG (kept beside
    the unpacked package); the text is the Unicode name (``grinning face emoji``)."""
    from fontTools.ttLib import TTFont
    from PIL import Image, ImageDraw, ImageFont

    font_path = tree.root / EMOJI_FONT
    render_dir = render_dir or tree.root / RENDERED
    render_dir.mkdir(parents=True, exist_ok=True)
    codepoints = sorted(TTFont(str(font_path), lazy=True).getBestCmap())
    font: ImageFont.FreeTypeFont | None = None
    candidates = []
    for codepoint in codepoints:
        name = unicodedata.name(chr(codepoint), "")
        # Below U+2000 the font maps digits, '#', '*' and spaces (keycap parts), not pictures.
        if codepoint < 0x2000 or not name:
            continue
        target = render_dir / f"u{codepoint:05x}.png"
        if not target.is_file():
            # The basic layout (no raqm): one glyph needs no shaping, and it is the same everywhere.
            font = font or ImageFont.truetype(
                str(font_path), EMOJI_SIZE, layout_engine=ImageFont.Layout.BASIC
            )
            canvas = Image.new("RGBA", (EMOJI_SIZE + 40, EMOJI_SIZE + 40), (0, 0, 0, 0))
            try:
                draw = ImageDraw.Draw(canvas)
                draw.text((8, 8), chr(codepoint), font=font, embedded_color=True)
            except (OSError, RuntimeError, ValueError):
                continue  # a code point the font maps but cannot draw alone
            box = canvas.getbbox()
            if box is None:
                continue
            partial = target.with_name(f".{target.name}.tmp")
            canvas.crop(box).save(partial, format="PNG")
            partial.replace(target)
        title = name.lower()
        category = unicodedata.category(chr(codepoint))
        candidates.append(
            Candidate(
                id=f"emoji.u{codepoint:05x}",
                image=target,
                package=tree.name,
                category=_emoji_block(codepoint),
                title=title,
                text=f"{title} emoji",
                lang="en",
                artist="Noto Emoji contributors",
                source=tree.source,
                variant_key=f"{tree.name}/{codepoint:05x}",
                metadata={"category": _emoji_block(codepoint), "unicode_category": category},
            )
        )
    return candidates


def _emoji_block(codepoint: int) -> str:
    for start, end, block in (
        (0x1F300, 0x1F5FF, "symbols and pictographs"),
        (0x1F600, 0x1F64F, "emoticons"),
        (0x1F680, 0x1F6FF, "transport and map"),
        (0x1F900, 0x1F9FF, "supplemental symbols"),
        (0x1FA70, 0x1FAFF, "symbols and pictographs extended"),
        (0x2600, 0x27BF, "miscellaneous symbols"),
    ):
        if start <= codepoint <= end:
            return block
    return "other"


Finder = Callable[[PackageTree], list[Candidate]]


def extra_finders() -> dict[str, Finder]:
    """Package name -> candidate finder, for every package the full corpus adds."""
    finders: dict[str, Finder] = {FAENZA: find_faenza_icons, NOTO_EMOJI: find_noto_emoji}
    for name, spec in GAME_ART.items():
        finders[name] = lambda tree, spec=spec: find_game_art(tree, spec)
    return finders
