"""Manifests: whole-file problems raise, row problems are recorded with their row and skipped."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import (
    Manifest,
    load_manifest,
    validate_manifest,
    write_manifest,
    write_problems,
)
from artsim.errors import DataError

HEADER = ["id", "group", "role", "image", "text", "lang"]


def _read_rows(manifest: Path) -> list[dict[str, str]]:
    with manifest.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _write_rows(manifest: Path, rows: list[dict[str, str]]) -> Path:
    with manifest.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.fixture
def copied(synthetic_manifest: Path, tmp_copy) -> Path:
    return tmp_copy(synthetic_manifest)


def _edit(manifest: Path, index: int, **changes: str) -> Path:
    """Change row ``index`` (0-based; it is data row ``index + 1``) of a copied manifest."""
    rows = _read_rows(manifest)
    rows[index].update(changes)
    return _write_rows(manifest, rows)


def _only_problem(manifest: Manifest):
    assert len(manifest.problems) == 1, [p.format() for p in manifest.problems]
    return manifest.problems[0]


# ---------------------------------------------------------------------------- good data


def test_synthetic_manifest_loads_clean(synthetic_manifest: Path) -> None:
    manifest = load_manifest(synthetic_manifest)
    assert manifest.problems == []
    assert len(manifest.items) == 24
    assert manifest.n_rows == 24
    assert len(manifest.originals()) == 6
    assert len(manifest.generated()) == 18
    assert len(manifest.groups()) == 6
    assert all(len(items) == 4 for items in manifest.groups().values())
    assert manifest.root == synthetic_manifest.parent.absolute()
    first = manifest.items[0]
    assert first.image.is_absolute() and first.image.exists()
    assert manifest.by_id()[first.id] is first
    assert {item.lang for item in manifest.items} == {"en", "es"}


def test_subset(synthetic_manifest: Path) -> None:
    manifest = load_manifest(synthetic_manifest)
    ids = [item.id for item in manifest.items[:5]]
    part = manifest.subset(reversed(ids))
    assert [item.id for item in part.items] == ids
    with pytest.raises(DataError, match="1 id"):
        manifest.subset(["nope"])


def test_fingerprint(synthetic_manifest: Path, copied: Path) -> None:
    original = load_manifest(synthetic_manifest)
    print_ = original.fingerprint()
    assert len(print_) == 16 and int(print_, 16) >= 0
    # Another copy elsewhere, rows reversed: same data, same fingerprint.
    rows = _read_rows(copied)
    _write_rows(copied, rows[::-1])
    assert load_manifest(copied).fingerprint() == print_
    # A changed text or a changed image changes it.
    _edit(copied, 0, text="something else")
    changed_text = load_manifest(copied).fingerprint()
    assert changed_text != print_
    image = copied.parent / rows[-1]["image"]
    Image.new("RGB", (32, 32), (1, 2, 3)).save(image)
    assert load_manifest(copied).fingerprint() not in (print_, changed_text)


# ---------------------------------------------------------------------------- whole-file problems


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="manifest not found"):
        load_manifest(tmp_path / "nope.csv")


def test_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "manifest.txt"
    path.write_text("id,group,role,image\n")
    with pytest.raises(DataError, match=r"unknown manifest format '\.txt'"):
        load_manifest(path)


def test_not_utf8_names_the_line(copied: Path) -> None:
    data = copied.read_bytes().split(b"\n")
    data[3] = data[3].replace(b"synthetic", b"synth\xe9tic")  # latin-1 e-acute on line 4
    copied.write_bytes(b"\n".join(data))
    with pytest.raises(DataError, match=r"not UTF-8 text: line 4 has the invalid byte 0xe9") as e:
        load_manifest(copied)
    assert str(copied) in str(e.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty manifest (no header)"), ("id,group,role,image\n\n", "a header but no rows")],
)
def test_empty_manifest(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "manifest.csv"
    path.write_text(content)
    with pytest.raises(DataError) as caught:
        load_manifest(path)
    assert str(caught.value).startswith(f"{path}: empty manifest")
    assert message in str(caught.value)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_empty_jsonl_and_parquet(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"manifest{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"id": pa.array([], pa.string())}), path)
    with pytest.raises(DataError, match="empty manifest"):
        load_manifest(path)


def test_missing_required_columns(tmp_path: Path) -> None:
    path = tmp_path / "manifest.csv"
    path.write_text("id,image,text\na,x.png,hello\n")
    with pytest.raises(DataError, match=r"missing required column\(s\): group, role"):
        load_manifest(path)


def test_semicolon_separated_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "manifest.csv"
    path.write_text("id;group;role;image\na;g;original;x.png\n")
    with pytest.raises(DataError, match="separated by something other than commas"):
        load_manifest(path)


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.parquet"
    path.write_text("id,group\n")
    with pytest.raises(DataError, match="cannot read the Parquet file"):
        load_manifest(path)


# ---------------------------------------------------------------------------- row problems


def test_duplicate_id_names_first_row(copied: Path) -> None:
    rows = _read_rows(copied)
    first_id = rows[1]["id"]
    _edit(copied, 5, id=first_id)
    manifest = load_manifest(copied)
    problem = _only_problem(manifest)
    assert (problem.row, problem.item_id) == (6, first_id)
    assert f"duplicate id '{first_id}' (first used in row 2)" in problem.reason
    assert len(manifest.items) == 23
    assert manifest.by_id()[first_id].image.name == Path(rows[1]["image"]).name


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": "  "}, "empty id"),
        ({"group": ""}, "empty group"),
        ({"role": "copy"}, "unknown role 'copy' (expected one of: original, generated)"),
        ({"image": ""}, "empty image path"),
        ({"image": "../outside.png"}, "image path escapes the manifest's folder: ../outside.png"),
        ({"image": "images/../../x.png"}, "escapes the manifest's folder"),
        ({"image": "/etc/passwd"}, "not absolute: /etc/passwd"),
        ({"image": "C:\\data\\x.png"}, "not absolute"),
        ({"image": "https://example.com/x.png"}, "not a URL"),
        ({"image": "images/missing.png"}, "images/missing.png: file not found"),
    ],
)
def test_bad_row_is_skipped_with_its_reason(copied: Path, changes: dict, reason: str) -> None:
    manifest = load_manifest(_edit(copied, 6, **changes))
    problem = _only_problem(manifest)
    assert problem.row == 7
    assert problem.severity == "error"
    assert reason in problem.reason
    assert len(manifest.items) == 23
    assert manifest.n_rows == 24


def test_role_is_case_insensitive(copied: Path) -> None:
    manifest = load_manifest(_edit(copied, 0, role=" Original "))
    assert manifest.problems == []
    assert manifest.items[0].role == "original"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (b"not really a png", "not an image file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "truncated or corrupt PNG image"),
    ],
)
def test_bad_image_file(copied: Path, content: bytes, reason: str) -> None:
    rows = _read_rows(copied)
    (copied.parent / rows[9]["image"]).write_bytes(content)
    problem = _only_problem(load_manifest(copied))
    assert (problem.row, problem.item_id) == (10, rows[9]["id"])
    assert f"{rows[9]['image']}: {reason}" in problem.reason


def test_image_over_pixel_limit(synthetic_manifest: Path) -> None:
    manifest = load_manifest(synthetic_manifest, max_pixels=100)
    assert manifest.items == []
    assert len(manifest.errors) == 24
    assert all("image too large: 32x32 = 1,024 pixels" in p.reason for p in manifest.errors)
    assert [p.row for p in manifest.errors] == list(range(1, 25))


def test_check_images_false_only_checks_paths(copied: Path) -> None:
    rows = _read_rows(copied)
    (copied.parent / rows[0]["image"]).unlink()
    assert load_manifest(copied, check_images=False).problems == []
    assert len(validate_manifest(copied).errors) == 1


def test_wrong_field_count(copied: Path) -> None:
    lines = copied.read_text(encoding="utf-8").splitlines()
    lines[3] += ",extra"
    copied.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problem = _only_problem(load_manifest(copied))
    assert problem.row == 3
    assert "row has 10 fields but the header has 9" in problem.reason
    assert problem.item_id == lines[3].split(",")[0]


def test_blank_lines_keep_row_numbers_in_step_with_the_file(copied: Path) -> None:
    _edit(copied, 2, role="bogus")  # data row 3, the 4th line of the file
    lines = copied.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "")  # now the bad row is the 5th line, i.e. data row 4
    copied.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert lines[4].split(",")[2] == "bogus"
    assert _only_problem(load_manifest(copied)).row == 4


def test_group_without_original_is_a_kept_warning(copied: Path) -> None:
    rows = [row for row in _read_rows(copied) if row["id"] != "g001-orig"]
    _write_rows(copied, rows)
    manifest = load_manifest(copied)
    problem = _only_problem(manifest)
    assert problem.severity == "warning"
    assert "group 'g001' has 3 generated item(s) but no original" in problem.reason
    assert problem.row == 5
    assert manifest.errors == [] and manifest.warnings == [problem]
    assert len(manifest.items) == 23


def test_jsonl_row_problems(tmp_path: Path, synthetic_manifest: Path) -> None:
    images = tmp_path / "images"
    shutil.copytree(synthetic_manifest.parent / "images", images)
    good = {"id": "a", "group": "g", "role": "original", "image": "images/g000_orig.png", "n": 3}
    lines = [json.dumps(good), "{not json", "[1, 2]", "", json.dumps({**good, "id": "b"})]
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = load_manifest(path)
    assert [item.id for item in manifest.items] == ["a", "b"]
    assert manifest.items[0].metadata == {"n": "3"}
    assert [(p.row, p.reason.split(" (")[0]) for p in manifest.problems] == [
        (2, "not valid JSON"),
        (3, "expected a JSON object, got list"),
    ]


def test_many_bad_rows_never_stop_the_rest(copied: Path) -> None:
    rows = _read_rows(copied)
    for index in range(0, 24, 2):
        rows[index]["role"] = "?"
    _write_rows(copied, rows)
    manifest = load_manifest(copied)
    assert len(manifest.items) == 12
    assert [p.row for p in manifest.errors] == list(range(1, 25, 2))


# ---------------------------------------------------------------------------- writing


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_write_and_read_back(synthetic_manifest: Path, suffix: str) -> None:
    manifest = load_manifest(synthetic_manifest)
    items = [
        replace(item, metadata={"license": "cc0", "seed": str(n)} if n % 2 else {"license": "pd"})
        for n, item in enumerate(manifest.items)
    ]
    items[0] = replace(items[0], text="a caption, with a comma\nand a new line", lang="")
    path = synthetic_manifest.parent / f"roundtrip{suffix}"
    try:
        assert write_manifest(items, path) == path
        again = load_manifest(path)
    finally:
        path.unlink(missing_ok=True)
    assert again.problems == []
    assert again.items == items


def test_write_manifest_keeps_images_relative(synthetic_manifest: Path, tmp_path: Path) -> None:
    manifest = load_manifest(synthetic_manifest)
    path = synthetic_manifest.parent / "sub.csv"
    try:
        write_manifest(manifest.items[:2], path)
        assert _read_rows(path)[0]["image"] == "images/g000_orig.png"
    finally:
        path.unlink()
    with pytest.raises(DataError, match="outside the manifest's folder"):
        write_manifest(manifest.items, tmp_path / "elsewhere" / "manifest.csv")
    with pytest.raises(DataError, match="unknown manifest format"):
        write_manifest(manifest.items, synthetic_manifest.parent / "manifest.xlsx")


def test_write_manifest_refuses_metadata_named_like_a_column(tmp_path: Path) -> None:
    item = Item(id="a", group="g", role="original", image=tmp_path / "a.png", metadata={"id": "x"})
    with pytest.raises(DataError, match="clashes"):
        write_manifest([item], tmp_path / "m.csv")


def test_write_problems(copied: Path, tmp_path: Path) -> None:
    _edit(copied, 2, role="bogus")
    manifest = load_manifest(copied)
    run = tmp_path / "run"
    run.mkdir()
    written = write_problems(manifest, run)
    assert written == run / "problems.txt"
    lines = written.read_text(encoding="utf-8").splitlines()
    assert lines == [
        f"manifest.csv: row 3 (id {manifest.problems[0].item_id}): error: "
        f"{manifest.problems[0].reason}"
    ]
    assert write_problems(manifest, tmp_path / "report.txt").read_text().count("\n") == 1
