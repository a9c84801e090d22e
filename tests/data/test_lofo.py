"""Leave one source out: the training side lacks the source, the evaluation side is only it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from artsim.cli.data import main
from artsim.data.corpora.lofo import leave_one_source_out, source_counts, source_of
from artsim.data.manifest.manifest import Manifest, load_manifest
from artsim.errors import DataError


@pytest.fixture
def two_sources(synthetic_manifest: Path) -> Manifest:
    """The synthetic manifest with g000-g001 credited to package-a, the rest to package-b."""
    manifest = load_manifest(synthetic_manifest)
    items = []
    for item in manifest.items:
        if item.is_original:
            package = "package-a" if item.group in ("g000", "g001") else "package-b"
            item = dataclasses.replace(item, source=f"{package} 1.0 (GPL-2)")
        items.append(item)
    return Manifest(path=manifest.path, items=items)


def test_source_of_prefers_the_package_metadata(two_sources: Manifest) -> None:
    original = two_sources.originals()[0]
    assert source_of(original) == "package-a"
    assert source_of(dataclasses.replace(original, metadata={"package": "x"})) == "x"
    assert source_counts(two_sources) == {"package-a": 2, "package-b": 4}


def test_leave_one_source_out_splits_by_group(two_sources: Manifest, tmp_path: Path) -> None:
    train_path, eval_path = leave_one_source_out(
        two_sources, "package-a", tmp_path / "lofo", per_original=2
    )
    train, held = load_manifest(train_path), load_manifest(eval_path)
    assert not train.errors and not held.errors
    assert {item.group for item in train.items} == {"g002", "g003", "g004", "g005"}
    # The training side keeps every row of those groups, generated ones included.
    kept = [item for item in two_sources.items if item.group not in ("g000", "g001")]
    assert sorted(item.id for item in train.items) == sorted(item.id for item in kept)
    for item in train.items:
        assert item.image.read_bytes() == two_sources.by_id()[item.id].image.read_bytes()
    assert {item.group for item in held.items} == {"g000", "g001"}
    assert len(held.generated()) == 4
    assert {item.metadata["family"] for item in held.generated()} == {"heldout"}


def test_unknown_source_names_the_known_ones(two_sources: Manifest, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"package-a \(2\), package-b \(4\)"):
        leave_one_source_out(two_sources, "nope", tmp_path)


def test_lofo_command(synthetic_manifest: Path, tmp_path: Path, capsys) -> None:
    # The synthetic manifest has one source only: refused with one line.
    code = main(["lofo", str(synthetic_manifest), "--source", "x", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "no original from source 'x'" in capsys.readouterr().err
