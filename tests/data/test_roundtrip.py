"""Every file artsim writes reads back as it was written, for awkward ids and texts.

Split files, manifests (CSV, JSONL, Parquet) and metrics.jsonl, over ids with commas, quotes,
newlines, carriage returns, Unicode line separators and other Unicode. Loaders strip the ends of
texts and refuse ids with whitespace at their ends (documented; tests/index/test_exact_ids.py), so
generated values have no whitespace at their ends.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import Manifest, load_manifest, write_manifest
from artsim.data.manifest.split import read_split, write_split
from artsim.runfolder import dumps_row, read_metrics

AWKWARD = [
    ",",
    '"',
    "'",
    "\n",
    "\r",
    "\u2028",
    "\u2029",
    "\x85",
    "\x1e",
    ";",
    "\t",
    "é",
    "漢",
    "🎨",
    "\\",
]
characters = st.one_of(
    st.sampled_from(AWKWARD),
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
)
awkward_text = st.text(characters, min_size=1, max_size=12).filter(
    lambda text: text == text.strip() and text != ""
)
ids = st.lists(awkward_text, min_size=2, max_size=8, unique=True)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _items(folder: Path, item_ids: list[str], texts: list[str]) -> list[Item]:
    return [
        Item(
            id=item_id,
            group=f"{item_ids[k - k % 2]}|group",  # pairs: an original, then its derivative
            role="original" if k % 2 == 0 else "generated",
            image=folder / "images" / f"img{k}.png",
            text=texts[k % len(texts)],
            title=texts[(k + 1) % len(texts)],
            artist=item_id,
            metadata={"note": texts[(k + 2) % len(texts)]},
        )
        for k, item_id in enumerate(item_ids)
    ]


@SETTINGS
@given(item_ids=ids, sides=st.lists(st.booleans(), min_size=8, max_size=8))
def test_split_files_read_back_every_id(tmp_path: Path, item_ids: list[str], sides: list[bool]):
    items = [
        Item(id=item_id, group=item_id, role="original", image=tmp_path / "x.png")
        for item_id in item_ids
    ]
    assignment = {
        item_id: "val" if side else "train" for item_id, side in zip(item_ids, sides, strict=False)
    }
    path = write_split(assignment, tmp_path / "split.csv")
    manifest = Manifest(path=tmp_path / "m.csv", items=items)
    assert read_split(path, manifest) == assignment


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
@SETTINGS
@given(item_ids=ids, texts=st.lists(awkward_text, min_size=1, max_size=4))
def test_manifests_read_back_every_field(
    tmp_path: Path, suffix: str, item_ids: list[str], texts: list[str]
):
    items = _items(tmp_path, item_ids, texts)
    path = write_manifest(items, tmp_path / f"manifest{suffix}")
    loaded = load_manifest(path, check_images=False)
    assert loaded.problems == []
    assert [(item.id, item.group, item.role) for item in loaded.items] == [
        (item.id, item.group, item.role) for item in items
    ]
    assert [(item.text, item.title, item.artist) for item in loaded.items] == [
        (item.text, item.title, item.artist) for item in items
    ]
    assert [dict(item.metadata) for item in loaded.items] == [dict(item.metadata) for item in items]
    assert [item.image for item in loaded.items] == [item.image for item in items]


finite_or_not = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.none(), awkward_text
)


@SETTINGS
@given(rows=st.lists(st.dictionaries(awkward_text, finite_or_not, max_size=5), max_size=5))
def test_metrics_rows_read_back_and_are_strict_json(tmp_path: Path, rows: list[dict]):
    # the names of non-finite figures are reserved: a text "NaN" reads back as the float
    rows = [
        {key: value for key, value in row.items() if value not in ("NaN", "Infinity", "-Infinity")}
        for row in rows
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(dumps_row(row) + "\n" for row in rows), encoding="utf-8")

    def refuse(name: str) -> None:
        pytest.fail(f"bare {name} in metrics.jsonl")

    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:
        json.loads(line, parse_constant=refuse)
    back = read_metrics(path)
    assert len(back) == len(rows)
    for got, want in zip(back, rows, strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, float) and math.isnan(value):
                assert isinstance(got[key], float) and math.isnan(got[key])
            else:
                assert got[key] == value


def test_metrics_written_by_older_versions_with_bare_nan_still_read(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "val/loss": NaN}\n{"epoch": 2, "val/loss": 0.5}\n')
    rows = read_metrics(path)
    assert math.isnan(rows[0]["val/loss"]) and rows[1] == {"epoch": 2, "val/loss": 0.5}
