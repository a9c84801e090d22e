"""The item: one row of a manifest, i.e. one artwork (original or generated)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("original", "generated")
# an augmented view of an original made during training (artsim.training.views); never in a
# manifest, never a query when a blend is chosen
VIEW_ROLE = "view"
CORE_COLUMNS = ("id", "group", "role", "image", "text", "lang", "artist", "title", "source")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_FILE_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def text_problem(text: str) -> str | None:
    """Why ``text`` is not valid Unicode text (a lone surrogate, which no encoding can carry:
    a Python string decoded with ``errors="surrogateescape"`` holds them), or ``None``."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (
        f"holds U+{ord(found.group()):04X} at character {found.start()}, a lone surrogate "
        "that is not valid Unicode (was it decoded with errors='surrogateescape'?)"
    )


@dataclass(frozen=True)
class Item:
    """One artwork.

    ``group`` names the original work: an original and all its generated derivatives share it.
    ``image`` is an absolute path (the manifest stores it relative to its own folder).
    ``text`` is the original's caption or the generated item's prompt; empty means the item has
    no text modality.
    """

    id: str
    group: str
    role: str
    image: Path
    text: str = ""
    lang: str = ""
    artist: str = ""
    title: str = ""
    source: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())

    @property
    def is_original(self) -> bool:
        return self.role == "original"


@dataclass(frozen=True)
class Problem:
    """Why one row (or the whole file) cannot be used, in words a user understands.

    ``row`` is the 1-based data row number (the header is row 0) or ``None`` for the file.
    """

    reason: str
    row: int | None = None
    item_id: str = ""
    severity: str = "error"  # "error": the row is skipped; "warning": kept, but worth a look

    def format(self, source: str = "") -> str:
        where = source
        if self.row is not None:
            where = f"{where}: row {self.row}" if where else f"row {self.row}"
        if self.item_id:
            where = f"{where} (id {self.item_id})"
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.severity}: {self.reason}"


def file_stems(ids: Sequence[str], digest: Callable[[str], str]) -> list[str]:
    """File-name stems for item ids: a file-name-safe id is its own stem; any other is made safe
    (runs of other characters become ``_``, at most 80 kept) and gets ``-<digest(id)>``, so two
    ids made alike stay apart. Each caller keeps its own ``digest``: its file names stay put.

    >>> file_stems(["fox", "a fox/1"], lambda item_id: "0000")
    ['fox', 'a_fox_1-0000']
    """
    stems = []
    for item_id in ids:
        stem = _NOT_FILE_SAFE.sub("_", item_id).strip("._") or "item"
        if stem != item_id:
            stem = f"{stem[:80]}-{digest(item_id)}"
        stems.append(stem)
    return stems
