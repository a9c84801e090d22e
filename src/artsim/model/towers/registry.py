"""The registry: every tower by name (see :mod:`artsim.model.towers` for the names)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from artsim.errors import UserError
from artsim.model.towers.base import ImageTower, PairedImageTower, TextTower
from artsim.model.towers.copy import create_copy_tower, is_copy_tower_name
from artsim.model.towers.descriptors import gem_tower
from artsim.model.towers.efficientnet import EfficientNetLite0Tower
from artsim.model.towers.open_clip import OpenClipImageTower, OpenClipTextTower, parse_open_clip
from artsim.model.towers.text import E5SmallTower, MiniLMTower
from artsim.model.towers.tiny import TinyImageTower, TinyTextTower

IMAGE_TOWERS: dict[str, Callable[[], ImageTower]] = {
    "efficientnet-lite0": EfficientNetLite0Tower,
    "efficientnet-lite0-gem": gem_tower,
    "tiny": TinyImageTower,
    # for tests: batch norm makes it save, load and fine-tune like the real towers
    "tiny-bn": lambda: TinyImageTower(batch_norm=True),
    # for tests: a second small random CNN, the copy part of a paired tower (tiny+tiny-copy)
    "tiny-copy": lambda: TinyImageTower(seed=1),
}
TEXT_TOWERS: dict[str, Callable[[], TextTower]] = {
    "e5-small": E5SmallTower,
    "e5-small-query": lambda: E5SmallTower(prefix="query"),
    "minilm": MiniLMTower,
    "tiny": TinyTextTower,
}


def check_tower_name(name: str, kind: str) -> None:
    """Raise :class:`UserError` (the one :func:`create_image_tower` or
    :func:`create_text_tower` would) unless ``name`` names a tower of ``kind`` (``image`` or
    ``text``) that can be built here; builds nothing, loads no weights.

    >>> check_tower_name("bogus", "image")
    Traceback (most recent call last):
    artsim.errors.UserError: unknown image tower 'bogus'; known: ...
    """
    if name.startswith("open_clip:"):
        parse_open_clip(name)
        if importlib.util.find_spec("open_clip") is None:
            raise UserError("open_clip towers need `pip install artsim[clip]` (open_clip_torch)")
        return
    if kind == "image":
        if "+" in name:
            content, _, copy = name.partition("+")
            check_tower_name(content, "image")
            check_tower_name(copy, "image")
            return
        if name in IMAGE_TOWERS or is_copy_tower_name(name):
            return
        raise UserError(
            f"unknown image tower {name!r}; known: {', '.join(IMAGE_TOWERS)}, sscd, sscd-distilled, "
            "CONTENT+COPY (e.g. efficientnet-lite0-gem+sscd), open_clip:ARCH:WEIGHTS"
        )
    if name not in TEXT_TOWERS:
        raise UserError(
            f"unknown text tower {name!r}; known: {', '.join(TEXT_TOWERS)}, open_clip:ARCH:WEIGHTS"
        )


def create_image_tower(name: str) -> ImageTower:
    """Build a registered image tower by name (see the module docstring for names)."""
    if name.startswith("open_clip:"):
        return OpenClipImageTower(name)
    if "+" in name:
        content, _, copy = name.partition("+")
        return PairedImageTower(create_image_tower(content), create_image_tower(copy))
    if is_copy_tower_name(name):
        return create_copy_tower(name).eval()
    if name not in IMAGE_TOWERS:
        raise UserError(
            f"unknown image tower {name!r}; known: {', '.join(IMAGE_TOWERS)}, sscd, sscd-distilled, "
            "CONTENT+COPY (e.g. efficientnet-lite0-gem+sscd), open_clip:ARCH:WEIGHTS"
        )
    tower = IMAGE_TOWERS[name]()
    tower.eval()
    return tower


def create_text_tower(name: str) -> TextTower:
    """Build a registered text tower by name (see the module docstring for names)."""
    if name.startswith("open_clip:"):
        return OpenClipTextTower(name)
    if name not in TEXT_TOWERS:
        raise UserError(
            f"unknown text tower {name!r}; known: {', '.join(TEXT_TOWERS)}, open_clip:ARCH:WEIGHTS"
        )
    tower = TEXT_TOWERS[name]()
    tower.eval()
    return tower
