"""Read, check and write manifests: a data set's table of original and generated works.

A manifest is a CSV (with a header), JSONL (one object per line) or Parquet file, chosen by its
suffix (:mod:`artsim.data.manifest.formats` reads and writes them). Columns: ``id`` (unique),
``group`` (the original work), ``role`` (``original`` or ``generated``), ``image`` (path relative to
the manifest's folder), ``text`` (may be empty), ``lang``, ``artist``, ``title``, ``source``
(optional). Extra columns become ``Item.metadata`` (empty values are dropped). Ids are kept exactly:
an id with leading or trailing whitespace skips its row (the other cells are stripped).

Problems with the whole file raise :class:`~artsim.errors.DataError`. Problems with one row are
recorded as a :class:`~artsim.data.manifest.items.Problem` and the row is skipped, so one bad row
never stops the rest from loading. Row numbers are 1-based data rows: in a CSV the header is not
counted (row 1 is the line after the header; blank lines count as rows so numbers follow the file),
in JSONL row N is line N, in Parquet the N-th row.

A cell longer than :data:`MAX_CELL_CHARS` characters skips its row (the rest loads). In JSONL and
Parquet the core columns must hold texts (an integer id or group is taken as its digits); a list,
an object, a boolean or a float (NaN included) there skips the row with a reason naming the column.
Extra columns may hold any JSON value: lists and objects are kept as JSON text, NaN as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from artsim.data.manifest.formats import (
    FORMATS,
    MAX_CELL_CHARS,
    READERS,
    REQUIRED_COLUMNS,
    manifest_suffix,
    write_records,
)
from artsim.data.manifest.items import CORE_COLUMNS, ROLES, Item, Problem
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS, check_image
from artsim.errors import DataError, ImageError
from artsim.runfolder import PROBLEMS_FILE

# Below this many images a thread pool costs more than it saves.
_POOL_THRESHOLD = 16
_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|[\\/]{2})")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass
class Manifest:
    """A loaded manifest: usable items in file order, and the problems found on the way."""

    path: Path
    items: list[Item]
    problems: list[Problem] = field(default_factory=list)

    @property
    def root(self) -> Path:
        """The folder that image paths are relative to."""
        return Path(os.path.abspath(self.path)).parent

    @property
    def errors(self) -> list[Problem]:
        """Problems that made a row unusable (the row was skipped)."""
        return [problem for problem in self.problems if problem.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems worth a look that did not stop a row from being used."""
        return [problem for problem in self.problems if problem.severity != "error"]

    @property
    def n_rows(self) -> int:
        """Data rows read: the usable ones plus the skipped ones."""
        skipped = {problem.row for problem in self.errors if problem.row is not None}
        return len(self.items) + len(skipped)

    def by_id(self) -> dict[str, Item]:
        """Items keyed by id."""
        return {item.id: item for item in self.items}

    def originals(self) -> list[Item]:
        """Items whose role is ``original``."""
        return [item for item in self.items if item.is_original]

    def generated(self) -> list[Item]:
        """Items whose role is ``generated``."""
        return [item for item in self.items if not item.is_original]

    def groups(self) -> dict[str, list[Item]]:
        """Items by group, groups in order of first appearance."""
        groups: dict[str, list[Item]] = {}
        for item in self.items:
            groups.setdefault(item.group, []).append(item)
        return groups

    def subset(self, ids: Iterable[str]) -> Manifest:
        """A manifest with only the items in ``ids`` (file order kept) and their problems.

        Raises :class:`DataError` if an id is not in this manifest.
        """
        wanted = set(ids)
        unknown = sorted(wanted - {item.id for item in self.items})
        if unknown:
            raise DataError(
                f"{self.path}: {len(unknown)} id(s) are not in the manifest, e.g. {unknown[0]!r}"
            )
        items = [item for item in self.items if item.id in wanted]
        problems = [problem for problem in self.problems if problem.item_id in wanted]
        return Manifest(path=self.path, items=items, problems=problems)

    def fingerprint(self) -> str:
        """A short hex digest of the data: ids, groups, roles, texts and image file contents.

        Independent of row order and of where the files lie, so two copies of one data set agree
        and any edit to a text or an image changes it.
        """
        return self.fingerprints()[0]

    def fingerprints(self) -> tuple[str, dict[str, str]]:
        """:meth:`fingerprint` and, per item id, a short digest of the same record (group,
        role, text, image bytes): what tells which rows changed between two readings."""
        digest = hashlib.sha256()
        per_item = {}
        for item in sorted(self.items, key=lambda item: item.id):
            record = [item.id, item.group, item.role, item.text, _file_sha256(item.image)]
            line = json.dumps(record, ensure_ascii=False).encode("utf-8")
            digest.update(line)
            digest.update(b"\n")
            per_item[item.id] = hashlib.sha256(line).hexdigest()[:12]
        return digest.hexdigest()[:16], per_item


def _file_sha256(path: Path) -> str:
    try:
        with Path(path).open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as error:
        raise ImageError(f"{path}: cannot read the file ({error.strerror or error})") from None


# ---------------------------------------------------------------------------- checking rows


def _image_path_problem(raw: str) -> str | None:
    """Why a manifest's image path is refused, or ``None``: it must stay inside the folder."""
    if _URL.match(raw):
        return f"image must be a file path relative to the manifest's folder, not a URL: {raw}"
    if os.path.isabs(raw) or raw.startswith(("/", "\\")) or _WINDOWS_ABSOLUTE.match(raw):
        return f"image path must be relative to the manifest's folder, not absolute: {raw}"
    # Lexical check here; where the path leads once symbolic links are followed is checked by
    # _outside_problem before any file is opened.
    normal = os.path.normpath(raw.replace("\\", "/"))
    if normal == ".." or normal.startswith("../"):
        return f"image path escapes the manifest's folder: {raw}"
    return None


IMAGE_ROOTS_VARIABLE = "ARTSIM_IMAGE_ROOTS"


def image_roots(folder: Path) -> tuple[Path, ...]:
    """Where a manifest's images may lie once symbolic links are followed: its own folder and
    the folders listed in ``ARTSIM_IMAGE_ROOTS`` (separated by ``os.pathsep``; for a data set
    whose image folder is a link to another disk), all resolved."""
    extra = os.environ.get(IMAGE_ROOTS_VARIABLE, "")
    roots = [folder, *(Path(part) for part in extra.split(os.pathsep) if part.strip())]
    return tuple(Path(os.path.realpath(root)) for root in roots)


def _outside_problem(image: Path, roots: tuple[Path, ...], raw: str) -> str | None:
    """Why ``image`` may not be read: it resolves (through a symbolic link) outside every
    root; ``None`` when it lies inside one. Nothing is opened to tell."""
    real = Path(os.path.realpath(image))
    if any(real.is_relative_to(root) for root in roots):
        return None
    return (
        f"image {raw} resolves outside the manifest's folder (a symbolic link to {real}); "
        f"images must lie inside it, or in a folder listed in {IMAGE_ROOTS_VARIABLE}"
    )


def id_whitespace_problem(item_id: str) -> str | None:
    """Why ``item_id`` is refused for leading or trailing whitespace, or ``None``.

    Ids are kept exactly as written (they come back in search results and name originals in
    ``/originals/{id}``), so an id that differs from its stripped self is refused rather than
    silently changed.
    """
    if item_id == item_id.strip():
        return None
    return (
        f"id {item_id!r} has leading or trailing whitespace; ids are kept exactly as written, "
        "so remove it"
    )


def _row_to_item(
    cells: dict[str, str], root: Path, columns: list[str]
) -> tuple[Item | None, str, str]:
    """Build an item from one row, or say why not: (item, id, reason)."""
    item_id = cells.get("id", "")
    if not item_id.strip():
        return None, "", "empty id"
    reason = id_whitespace_problem(item_id)
    if reason:
        return None, item_id, reason
    group = cells.get("group", "").strip()
    if not group:
        return None, item_id, "empty group"
    raw_role = cells.get("role", "").strip()
    role = raw_role.lower()
    if role not in ROLES:
        shown = repr(raw_role) if raw_role else "(empty)"
        return None, item_id, f"unknown role {shown} (expected one of: {', '.join(ROLES)})"
    raw_image = cells.get("image", "").strip()
    if not raw_image:
        return None, item_id, "empty image path"
    reason = _image_path_problem(raw_image)
    if reason:
        return None, item_id, reason
    relative = os.path.normpath(raw_image.replace("\\", "/"))
    metadata = {
        column: cells[column]
        for column in columns
        if column not in CORE_COLUMNS and cells.get(column, "") != ""
    }
    item = Item(
        id=item_id,
        group=group,
        role=role,
        image=root / relative,
        text=cells.get("text", "").strip(),
        lang=cells.get("lang", "").strip(),
        artist=cells.get("artist", "").strip(),
        title=cells.get("title", "").strip(),
        source=cells.get("source", "").strip(),
        metadata=metadata,
    )
    return item, item_id, ""


def _image_reasons(items: list[tuple[int, Item, str]], max_pixels: int) -> list[str | None]:
    """Check every image (in parallel: PIL decodes without the GIL); ``None`` means usable."""

    def check(entry: tuple[int, Item, str]) -> str | None:
        _, item, name = entry
        try:
            check_image(item.image, max_pixels, name=name)
        except ImageError as error:
            return str(error)
        return None

    if len(items) < _POOL_THRESHOLD:
        return [check(entry) for entry in items]
    workers = min(16, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image-check") as pool:
        return list(pool.map(check, items))


def _group_warnings(items: list[Item], rows: dict[str, int]) -> list[Problem]:
    by_group: dict[str, list[Item]] = {}
    for item in items:
        by_group.setdefault(item.group, []).append(item)
    problems = []
    for group, members in by_group.items():
        if any(item.is_original for item in members):
            continue
        first = members[0]
        problems.append(
            Problem(
                reason=(
                    f"group {group!r} has {len(members)} generated item(s) but no original "
                    "(kept, but they cannot be matched to their source)"
                ),
                row=rows[first.id],
                item_id=first.id,
                severity="warning",
            )
        )
    return problems


def load_manifest(
    path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, check_images: bool = True
) -> Manifest:
    """Read a manifest; rows that cannot be used are skipped and recorded as problems.

    Raises :class:`DataError` for problems with the whole file (missing, not UTF-8, empty, missing
    required columns, unknown suffix). With ``check_images`` every image is opened and decoded
    (see :func:`artsim.data.pictures.images.check_image`); without it only the paths are checked.

    >>> manifest = load_manifest("data/demo/manifest.csv")
    >>> len(manifest.originals()), [problem.format() for problem in manifest.errors]
    (6, [])
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"manifest not found: {path}")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give the manifest file inside it")
    suffix = manifest_suffix(path)
    try:
        columns, rows = READERS[suffix](path)
    except OSError as error:
        raise DataError(f"{path}: cannot read the manifest ({error.strerror or error})") from None
    root = Path(os.path.abspath(path)).parent
    roots = image_roots(root)

    problems: list[Problem] = []
    candidates: list[tuple[int, Item, str]] = []
    first_row: dict[str, int] = {}
    n_rows = 0
    for number, cells, unreadable in rows:
        n_rows += 1
        if unreadable:
            item_id = cells.get("id", "").strip()
            problems.append(Problem(reason=unreadable, row=number, item_id=item_id))
            continue
        item, item_id, reason = _row_to_item(cells, root, columns)
        if item is not None:
            reason = _outside_problem(item.image, roots, cells.get("image", "").strip()) or ""
            item = None if reason else item
        if item is None:
            problems.append(Problem(reason=reason, row=number, item_id=item_id))
            continue
        if item.id in first_row:
            problems.append(
                Problem(
                    reason=(
                        f"duplicate id {item.id!r} (first used in row {first_row[item.id]}); "
                        "this row is skipped"
                    ),
                    row=number,
                    item_id=item.id,
                )
            )
            continue
        first_row[item.id] = number
        candidates.append((number, item, cells.get("image", "").strip()))
    if n_rows == 0:
        raise DataError(f"{path}: empty manifest (a header but no rows)")

    unchecked: list[str | None] = [None] * len(candidates)
    reasons = _image_reasons(candidates, max_pixels) if check_images else unchecked
    items: list[Item] = []
    for (number, item, _), reason in zip(candidates, reasons, strict=True):
        if reason is None:
            items.append(item)
        else:
            problems.append(Problem(reason=reason, row=number, item_id=item.id))
    problems.extend(_group_warnings(items, first_row))
    problems.sort(key=lambda problem: (problem.row or 0, problem.severity != "error"))
    return Manifest(path=path, items=items, problems=problems)


def validate_manifest(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Manifest:
    """Load a manifest with every image opened and decoded; see :func:`load_manifest`."""
    return load_manifest(path, max_pixels=max_pixels, check_images=True)


# ---------------------------------------------------------------------------- writing


def _relative_image(image: Path, folder: Path) -> str:
    """The image path relative to ``folder``; refuse images outside it (the manifest could not
    refer to them)."""
    image_abs = Path(os.path.abspath(image))
    for candidate, base in ((image_abs, folder), (image_abs.resolve(), folder.resolve())):
        try:
            return candidate.relative_to(base).as_posix()
        except ValueError:
            continue
    raise DataError(
        f"image {image} lies outside the manifest's folder {folder}; "
        "copy it inside or write the manifest higher up"
    )


def _item_rows(items: list[Item], folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    extra: list[str] = []
    for item in items:
        for key in item.metadata:
            if key in CORE_COLUMNS:
                raise DataError(f"item {item.id}: metadata key {key!r} clashes with a column")
            if key not in extra:
                extra.append(key)
    columns = [*CORE_COLUMNS, *extra]
    records = []
    for item in items:
        record = {
            "id": item.id,
            "group": item.group,
            "role": item.role,
            "image": _relative_image(item.image, folder),
            "text": item.text,
            "lang": item.lang,
            "artist": item.artist,
            "title": item.title,
            "source": item.source,
        }
        record.update({key: str(item.metadata.get(key, "")) for key in extra})
        records.append(record)
    return columns, records


def write_manifest(items: Iterable[Item], path: str | Path) -> Path:
    """Write items as CSV, JSONL or Parquet (by suffix); image paths relative to the file's folder.

    Metadata keys become extra columns after the core ones. Written to a temporary file first, so
    a failure never leaves half a manifest. Returns the path.
    """
    path = Path(path)
    suffix = manifest_suffix(path)
    folder = Path(os.path.abspath(path)).parent
    items = list(items)
    for item in items:
        reason = id_whitespace_problem(item.id)
        if reason:
            raise DataError(f"{path}: cannot write {reason} (loading would refuse the row)")
    columns, records = _item_rows(items, folder)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write_records(temporary, suffix, columns, records)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)
    return path


def write_problems(manifest: Manifest, path: str | Path) -> Path:
    """Write one line per problem (``Problem.format``) to ``path``, or to ``problems.txt`` inside
    it when ``path`` is a folder (a run folder). Returns the file written."""
    path = Path(path)
    if path.is_dir():
        path = path / PROBLEMS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    source = manifest.path.name
    lines = [problem.format(source) for problem in manifest.problems]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


__all__ = [
    "FORMATS",
    "MAX_CELL_CHARS",
    "REQUIRED_COLUMNS",
    "Manifest",
    "load_manifest",
    "validate_manifest",
    "write_manifest",
    "write_problems",
]
