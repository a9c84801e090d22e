"""Group splits: no group on both sides, deterministic, close to the asked fraction."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import load_manifest
from artsim.data.manifest.split import group_split, read_split, split_sizes, write_split
from artsim.errors import DataError


def _items(group_sizes: list[int], langs: str = "en") -> list[Item]:
    items = []
    for group_index, size in enumerate(group_sizes):
        group = f"g{group_index}"
        lang = langs[group_index % len(langs)] if langs else ""
        for k in range(size):
            role = "original" if k == 0 else "generated"
            items.append(Item(id=f"{group}-{k}", group=group, role=role, image=Path(), lang=lang))
    return items


def _sides(assignment: dict[str, str], items: list[Item]) -> dict[str, set[str]]:
    sides: dict[str, set[str]] = {}
    for item in items:
        sides.setdefault(item.group, set()).add(assignment[item.id])
    return sides


group_sizes = st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=30)
fractions = st.floats(min_value=0.01, max_value=0.99)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=50, deadline=None)
@given(sizes=group_sizes, fraction=fractions, seed=seeds)
def test_no_group_on_both_sides(sizes: list[int], fraction: float, seed: int) -> None:
    items = _items(sizes)
    assignment = group_split(items, fraction, seed=seed)
    assert set(assignment) == {item.id for item in items}
    assert set(assignment.values()) <= {"train", "val"}
    assert all(len(sides) == 1 for sides in _sides(assignment, items).values())


@settings(max_examples=50, deadline=None)
@given(sizes=group_sizes, fraction=fractions, seed=seeds, data=st.data())
def test_deterministic_and_independent_of_order(
    sizes: list[int], fraction: float, seed: int, data: st.DataObject
) -> None:
    items = _items(sizes)
    shuffled = data.draw(st.permutations(items))
    first = group_split(items, fraction, seed=seed)
    assert group_split(items, fraction, seed=seed) == first
    assert group_split(shuffled, fraction, seed=seed) == first


@settings(max_examples=50, deadline=None)
@given(sizes=group_sizes, fraction=fractions, seed=seeds)
def test_val_size_within_one_group_of_target(sizes: list[int], fraction: float, seed: int) -> None:
    items = _items(sizes)
    assignment = group_split(items, fraction, seed=seed)
    val = sum(1 for split in assignment.values() if split == "val")
    assert abs(val - fraction * len(items)) <= max(sizes)
    if len(sizes) >= 2:
        assert 0 < val < len(items)  # each side holds at least one group


@settings(max_examples=50, deadline=None)
@given(sizes=group_sizes, fraction=fractions, seed=seeds)
def test_stratified_keeps_groups_whole_and_each_stratum_near_target(
    sizes: list[int], fraction: float, seed: int
) -> None:
    items = _items(sizes, langs="ab")
    assignment = group_split(items, fraction, seed=seed, stratify="lang")
    assert all(len(sides) == 1 for sides in _sides(assignment, items).values())
    for lang in "ab":
        members = [item for item in items if item.lang == lang]
        if not members:
            continue
        val = sum(1 for item in members if assignment[item.id] == "val")
        # Each stratum is within half a group of its target, before the both-sides fix-up.
        assert abs(val - fraction * len(members)) <= max(sizes) + max(sizes) / 2


def test_different_seeds_give_different_splits() -> None:
    items = _items([3] * 40)
    splits = {tuple(sorted(group_split(items, 0.3, seed=seed).items())) for seed in range(5)}
    assert len(splits) > 1


def test_stratify_by_metadata_key() -> None:
    items = [
        Item(
            id=f"{g}-{k}",
            group=g,
            role="original" if k == 0 else "generated",
            image=Path(),
            metadata={"museum": "A" if g < "g5" else "B"},
        )
        for g in [f"g{i}" for i in range(10)]
        for k in range(2)
    ]
    assignment = group_split(items, 0.2, seed=1, stratify="museum")
    for museum in "AB":
        val = {
            i.group for i in items if i.metadata["museum"] == museum and assignment[i.id] == "val"
        }
        assert len(val) == 1
    with pytest.raises(DataError, match="cannot stratify by 'nope'"):
        group_split(items, 0.2, stratify="nope")


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, float("nan")])
def test_val_fraction_out_of_range(fraction: float) -> None:
    with pytest.raises(DataError, match="val_fraction must be between 0 and 1"):
        group_split(_items([2, 2]), fraction)


def test_bad_seed_and_no_items() -> None:
    with pytest.raises(DataError, match="seed"):
        group_split(_items([2, 2]), 0.5, seed=-1)
    with pytest.raises(DataError, match="no items"):
        group_split([], 0.5)


def test_two_groups_one_on_each_side() -> None:
    for fraction in (0.01, 0.99):
        sizes = split_sizes(group_split(_items([1, 1]), fraction), _items([1, 1]))
        assert sizes == {"train": {"items": 1, "groups": 1}, "val": {"items": 1, "groups": 1}}


# ---------------------------------------------------------------------------- files


def test_write_read_roundtrip(synthetic_manifest: Path, tmp_path: Path) -> None:
    manifest = load_manifest(synthetic_manifest)
    assignment = group_split(manifest.items, 0.25, seed=3)
    path = write_split(assignment, tmp_path / "out" / "split.csv")
    assert path.read_text().splitlines()[0] == "id,split"
    assert read_split(path, manifest) == assignment
    sizes = split_sizes(assignment, manifest.items)
    assert sizes["train"]["items"] + sizes["val"]["items"] == 24
    assert sizes["train"]["groups"] + sizes["val"]["groups"] == 6
    assert sizes["val"]["items"] == 8  # 6 groups of 4: 25% of 24 = 6, nearest whole groups


def _split_file(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "split.csv"
    path.write_text("id,split\n" + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    return path


def _full_rows(manifest) -> list[str]:
    assignment = group_split(manifest.items, 0.5, seed=0)
    return [f"{item_id},{split}" for item_id, split in assignment.items()]


def test_read_split_unknown_value_names_row(synthetic_manifest: Path, tmp_path: Path) -> None:
    manifest = load_manifest(synthetic_manifest)
    rows = _full_rows(manifest)
    rows[2] = rows[2].rsplit(",", 1)[0] + ",test"
    with pytest.raises(DataError, match="row 3: unknown split 'test'"):
        read_split(_split_file(tmp_path, rows), manifest)


def test_read_split_unknown_id_names_row(synthetic_manifest: Path, tmp_path: Path) -> None:
    manifest = load_manifest(synthetic_manifest)
    rows = [*_full_rows(manifest), "ghost,train"]
    with pytest.raises(DataError, match="row 25: id 'ghost' is not in the manifest"):
        read_split(_split_file(tmp_path, rows), manifest)


def test_read_split_missing_ids(synthetic_manifest: Path, tmp_path: Path) -> None:
    manifest = load_manifest(synthetic_manifest)
    rows = _full_rows(manifest)[:-3]  # the file follows the manifest's order
    with pytest.raises(DataError, match=r"3 id\(s\) of the manifest are missing") as caught:
        read_split(_split_file(tmp_path, rows), manifest)
    assert f"e.g. '{manifest.items[-3].id}'" in str(caught.value)


def test_read_split_group_on_both_sides(synthetic_manifest: Path, tmp_path: Path) -> None:
    manifest = load_manifest(synthetic_manifest)
    rows = [
        f"{item.id},{'val' if item.id.endswith('gen2') else 'train'}" for item in manifest.items
    ]
    with pytest.raises(DataError, match="row 4: group 'g000' is on both sides"):
        read_split(_split_file(tmp_path, rows), manifest)


def test_read_split_bad_files(synthetic_manifest: Path, tmp_path: Path) -> None:
    manifest = load_manifest(synthetic_manifest)
    with pytest.raises(DataError, match="split file not found"):
        read_split(tmp_path / "nope.csv", manifest)
    path = tmp_path / "bad.csv"
    path.write_text("item,side\n")
    with pytest.raises(DataError, match="needs the columns id,split"):
        read_split(path, manifest)
    with pytest.raises(DataError, match="unknown split 'test'"):
        write_split({"a": "test"}, tmp_path / "x.csv")


def test_independent_of_python_hash_seed() -> None:
    code = (
        "from pathlib import Path; from artsim.data.manifest.items import Item; "
        "from artsim.data.manifest.split import group_split; "
        "items = [Item(id=f'{g}-{k}', group=g, role='generated', image=Path(), lang=g[-1]) "
        "for g in [f'group{i}' for i in range(30)] for k in range(3)]; "
        "print(sorted(group_split(items, 0.3, seed=5, stratify='lang').items()))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def _groups_on(assignment: dict[str, str], items: list[Item]) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for item in items:
        groups.setdefault(assignment[item.id], set()).add(item.group)
    return groups


def test_calibration_part_comes_out_of_validation_by_group() -> None:
    from artsim.data.manifest.split import carve_calibration

    items = _items([4] * 40)
    assignment = group_split(items, 0.5, seed=3)
    carved = carve_calibration(assignment, items, 0.5, seed=3)
    assert carved == carve_calibration(assignment, list(reversed(items)), 0.5, seed=3)
    sides = _groups_on(carved, items)
    assert set(sides) == {"train", "val", "calib"}
    # training is untouched; calibration groups were validation groups, whole
    assert sides["train"] == _groups_on(assignment, items)["train"]
    assert sides["calib"] | sides["val"] == _groups_on(assignment, items)["val"]
    assert not sides["calib"] & sides["val"]
    assert len(sides["calib"]) == round(0.5 * len(_groups_on(assignment, items)["val"]))
    assert carve_calibration(assignment, items, 0.0) == assignment
    with pytest.raises(DataError, match="calib_fraction"):
        carve_calibration(assignment, items, 1.0)


def test_split_file_with_a_calibration_part_reads_back(tmp_path: Path) -> None:
    from artsim.data.manifest.manifest import Manifest
    from artsim.data.manifest.split import carve_calibration

    items = _items([2] * 10)
    carved = carve_calibration(group_split(items, 0.4, seed=0), items, 0.5)
    path = write_split(carved, tmp_path / "split.csv")
    assert read_split(path, Manifest(items=items, path=tmp_path / "m.csv")) == carved
    assert split_sizes(carved, items)["calib"]["groups"] == 2
