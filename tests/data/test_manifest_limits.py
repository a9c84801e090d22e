"""One bad cell costs one row: a huge text, or a value of the wrong type in JSONL/Parquet;
and ``data split``/``data derive`` never write over the manifest they read."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from artsim.cli.data import main
from artsim.data.manifest.manifest import MAX_CELL_CHARS, load_manifest


@pytest.fixture
def folder(tmp_path: Path, synthetic_manifest: Path) -> Path:
    shutil.copytree(synthetic_manifest.parent / "images", tmp_path / "images")
    return tmp_path


def _row(item_id: str, **changes) -> dict:
    return {
        "id": item_id,
        "group": item_id,
        "role": "original",
        "image": "images/g000_orig.png",
        "text": "a caption",
        **changes,
    }


def test_a_one_megabyte_text_cell_skips_only_its_row(folder: Path):
    path = folder / "manifest.csv"
    rows = [_row("a"), _row("b", text="x" * 1_000_000), _row("c")]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    manifest = load_manifest(path)
    assert [item.id for item in manifest.items] == ["a", "c"]
    (problem,) = manifest.problems
    assert problem.row == 2 and problem.item_id == "b"
    assert "'text'" in problem.reason and f"{MAX_CELL_CHARS:,}" in problem.reason


def test_a_one_megabyte_jsonl_cell_skips_only_its_row(folder: Path):
    path = folder / "manifest.jsonl"
    rows = [_row("a"), _row("b", title="y" * 1_000_000), _row("c")]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    manifest = load_manifest(path)
    assert [item.id for item in manifest.items] == ["a", "c"]
    assert [(p.row, p.item_id) for p in manifest.problems] == [(2, "b")]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"id": True}, "column 'id' holds a boolean (true)"),
        ({"text": ["a", "list"]}, "column 'text' holds a list"),
        ({"title": float("nan")}, "column 'title' holds NaN"),
        ({"group": 1.5}, "column 'group' holds a number (1.5)"),
        ({"artist": {"name": "x"}}, "column 'artist' holds an object"),
    ],
)
def test_jsonl_values_of_the_wrong_type_are_reported_per_row(folder: Path, changes, words):
    path = folder / "manifest.jsonl"
    rows = [_row("a"), _row("b", **changes), _row("c")]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    manifest = load_manifest(path)
    assert [item.id for item in manifest.items] == ["a", "c"]
    (problem,) = manifest.problems
    assert problem.row == 2 and words in problem.reason


def test_integer_ids_are_taken_as_their_digits(folder: Path):
    path = folder / "manifest.jsonl"
    path.write_text(json.dumps(_row(7, group=7)) + "\n", encoding="utf-8")
    (item,) = load_manifest(path).items
    assert (item.id, item.group) == ("7", "7")


def test_parquet_values_of_the_wrong_type_are_reported_per_row(folder: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "group": ["a", "b", "c"],
            "role": ["original"] * 3,
            "image": ["images/g000_orig.png"] * 3,
            "text": [["x"], ["y", "z"], ["w"]],
            "score": [1.0, float("nan"), 2.0],
        }
    )
    pq.write_table(table, folder / "manifest.parquet")
    manifest = load_manifest(folder / "manifest.parquet")
    assert manifest.items == []
    assert [p.row for p in manifest.problems] == [1, 2, 3]
    assert all("column 'text' holds a list" in p.reason for p in manifest.problems)
    # NaN in an extra column is a missing value, not the text "nan"
    table = table.set_column(4, "text", pa.array(["x", "y", "w"]))
    pq.write_table(table, folder / "manifest.parquet")
    manifest = load_manifest(folder / "manifest.parquet")
    assert [dict(item.metadata) for item in manifest.items] == [
        {"score": "1.0"},
        {},
        {"score": "2.0"},
    ]


def test_data_split_refuses_to_write_over_its_input(folder: Path, synthetic_manifest, capsys):
    manifest = folder / "manifest.csv"
    shutil.copy(synthetic_manifest, manifest)
    before = manifest.read_bytes()
    for out in (manifest, folder / "images" / ".." / "manifest.csv"):
        assert main(["split", str(manifest), "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert "is the input" in captured.err and "--out" in captured.err
    assert manifest.read_bytes() == before


def test_data_derive_refuses_to_write_over_its_input(folder: Path, synthetic_manifest, capsys):
    manifest = folder / "manifest.csv"
    shutil.copy(synthetic_manifest, manifest)
    before = manifest.read_bytes()
    assert main(["derive", str(manifest), "--out", str(folder)]) == 2
    assert "is the input" in capsys.readouterr().err
    assert manifest.read_bytes() == before
