"""Manifest file formats: CSV (with a header), JSONL (one object per line) and Parquet, chosen by
the file's suffix. Reading yields ``(row number, cells, reason)`` per data row (the reason a row
cannot be used, or ""); writing takes records of string cells. What the cells mean is
:mod:`artsim.data.manifest.manifest`'s business.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path

from artsim.data.manifest.items import CORE_COLUMNS
from artsim.errors import DataError

REQUIRED_COLUMNS = ("id", "group", "role", "image")
FORMATS = (".csv", ".jsonl", ".parquet")
# Longest cell a row may have (csv's own default field limit): a longer one skips its row.
MAX_CELL_CHARS = 131_072
# csv refuses longer fields with an error that would stop the whole file; the length is checked
# per row instead (see MAX_CELL_CHARS), so the reader itself accepts any field.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def manifest_suffix(path: Path) -> str:
    """The format of a manifest path (``.csv``, ``.jsonl`` or ``.parquet``), or a DataError."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        shown = suffix or "(none)"
        raise DataError(
            f"{path}: unknown manifest format {shown!r}: use a .csv, .jsonl or .parquet file"
        )
    return suffix


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):  # a BOM from spreadsheet exports; not part of the header
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start]
        raise DataError(
            f"{path}: not UTF-8 text: line {line} has the invalid byte 0x{byte:02x} "
            "(save the file as UTF-8)"
        ) from None


def _cell(value: object) -> str:
    """An extra (metadata) column's value as text: NaN and null are missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"a number ({value!r})"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _typed_cells(record: dict) -> tuple[dict[str, str], str]:
    """Cells of a JSONL/Parquet record as texts, and the reason the row cannot be used (or "").

    Core columns take texts (null is empty; an integer id or group is its digits); any other
    type there is a reason, never converted silently.
    """
    cells: dict[str, str] = {}
    reason = ""
    for key, value in record.items():
        name = str(key)
        if name not in CORE_COLUMNS:
            cells[name] = _cell(value)
        elif value is None:
            cells[name] = ""
        elif isinstance(value, str):
            cells[name] = value
        elif isinstance(value, int) and not isinstance(value, bool) and name in ("id", "group"):
            cells[name] = str(value)
        else:
            cells[name] = ""
            reason = reason or f"column {name!r} holds {_type_name(value)}, not a text"
    return cells, reason


def _long_cell(cells: dict[str, str]) -> str:
    """The reason a row has a cell over MAX_CELL_CHARS, or ""."""
    for name, value in cells.items():
        if len(value) > MAX_CELL_CHARS:
            return (
                f"column {name!r} holds {len(value):,} characters, over the limit of "
                f"{MAX_CELL_CHARS:,} (the row is skipped)"
            )
    return ""


def _check_columns(path: Path, columns: list[str]) -> None:
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if not missing:
        return
    found = ", ".join(columns) if columns else "none"
    hint = ""
    if len(columns) == 1 and any(sep in columns[0] for sep in (";", "\t", "|")):
        hint = " (is the file separated by something other than commas?)"
    raise DataError(
        f"{path}: missing required column(s): {', '.join(missing)} (found: {found}){hint}"
    )


# Each reader yields (row number, cells, reason): a non-empty reason means the row cannot be read,
# and the cells are then a best effort (for naming the id).
RowSource = Iterator[tuple[int, dict[str, str], str]]


def _csv_rows(path: Path) -> tuple[list[str], RowSource]:
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise DataError(f"{path}: cannot read the CSV header ({error})") from None
    if header is None or not any(cell.strip() for cell in header):
        raise DataError(f"{path}: empty manifest (no header)")
    columns = [cell.strip() for cell in header]
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise DataError(f"{path}: column {column!r} appears twice in the header")
        seen.add(column)
    _check_columns(path, columns)

    def rows() -> RowSource:
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise DataError(
                    f"{path}: line {reader.line_num}: cannot read CSV ({error})"
                ) from None
            number += 1
            if not cells or not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(columns):
                yield (
                    number,
                    dict(zip(columns, cells, strict=False)),
                    f"row has {len(cells)} fields but the header has {len(columns)} "
                    "(a missing or extra comma, or an unquoted comma in a text?)",
                )
                continue
            row = dict(zip(columns, cells, strict=True))
            yield number, row, _long_cell(row)

    return columns, rows()


def _jsonl_rows(path: Path) -> tuple[list[str], RowSource]:
    text = _read_text(path)
    parsed: list[tuple[int, dict[str, str], str]] = []
    columns: list[str] = []
    # Lines end at "\n" only: str.splitlines() would also cut at U+2028, U+0085 and other
    # characters that JSON strings may hold raw (json.dumps(..., ensure_ascii=False) writes them).
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            parsed.append((number, {}, f"not valid JSON ({error.msg} at column {error.colno})"))
            continue
        if not isinstance(value, dict):
            parsed.append((number, {}, f"expected a JSON object, got {type(value).__name__}"))
            continue
        cells, reason = _typed_cells(value)
        columns.extend(key for key in cells if key not in columns)
        parsed.append((number, cells, reason or _long_cell(cells)))
    if not parsed:
        raise DataError(f"{path}: empty manifest (no rows)")
    # JSONL has no header: a column is "present" if any row has it.
    _check_columns(path, columns)
    return columns, iter(parsed)


def _parquet_rows(path: Path) -> tuple[list[str], RowSource]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{path}: cannot read the Parquet file ({error})") from None
    columns = list(table.column_names)
    if table.num_rows == 0:
        raise DataError(f"{path}: empty manifest (no rows)")
    _check_columns(path, columns)
    records = table.to_pylist()

    def rows() -> RowSource:
        for number, record in enumerate(records, start=1):
            cells, reason = _typed_cells(record)
            yield number, cells, reason or _long_cell(cells)

    return columns, rows()


READERS = {".csv": _csv_rows, ".jsonl": _jsonl_rows, ".parquet": _parquet_rows}


def write_records(
    path: Path, suffix: str, columns: list[str], records: list[dict[str, str]]
) -> None:
    """Write the records in the format ``suffix`` names."""
    if suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(records)
    elif suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {column: pa.array([r[column] for r in records], pa.string()) for column in columns}
        )
        pq.write_table(table, path)
