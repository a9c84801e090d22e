"""Split items into train and val BY GROUP, so no original work is seen on both sides.

An original and all its generated derivatives share a group; if some derivatives were trained on
and others validated on, validation would measure memory of the original rather than similarity.
Splits are deterministic for a seed and independent of item order and of Python's hash seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import Manifest
from artsim.errors import DataError
from artsim.runfolder import CALIB, SPLITS, read_split_rows, write_split

__all__ = [
    "CALIB",
    "SPLITS",
    "carve_calibration",
    "group_split",
    "read_split",
    "split_sizes",
    "write_split",
]


# the validation share by group of every split made by default (80/20: decision 0025), and the
# share of the validation groups then set aside for calibrating verdicts
DEFAULT_VAL_FRACTION = 0.2
DEFAULT_CALIB_FRACTION = 0.5


def _check_fraction(val_fraction: float) -> float:
    try:
        value = float(val_fraction)
    except (TypeError, ValueError):
        raise DataError(f"val_fraction must be a number, got {val_fraction!r}") from None
    if not math.isfinite(value) or not 0.0 < value < 1.0:
        raise DataError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    return value


def _stratum(item: Item, column: str) -> str:
    if column == "metadata":
        raise DataError("cannot stratify by 'metadata'; name one of its keys")
    if column in item.metadata:
        return str(item.metadata[column])
    value = getattr(item, column, None)
    return "" if value is None else str(value)


def _group_strata(groups: dict[str, list[Item]], column: str) -> dict[str, str]:
    """The stratum of each group: its original's value (members of a group can differ, e.g. by
    role, and a group cannot be cut in two), else that of its first item by id."""
    known = any(column in item.metadata for items in groups.values() for item in items)
    if not known and column not in Item.__dataclass_fields__:
        raise DataError(f"cannot stratify by {column!r}: no item has such a column")
    strata = {}
    for group, items in groups.items():
        ordered = sorted(items, key=lambda item: (not item.is_original, item.id))
        strata[group] = _stratum(ordered[0], column)
    return strata


def _fill(
    names: list[str], sizes: dict[str, int], target: float, rng: np.random.Generator
) -> set[str]:
    """Greedy fill over shuffled groups: take a group when it brings val closer to the target.

    Each decision keeps |val - target| within half the group's size, so the final val count is
    within one group's size of the target.
    """
    val: set[str] = set()
    count = 0
    for index in rng.permutation(len(names)):
        name = names[int(index)]
        size = sizes[name]
        if abs(count + size - target) <= abs(count - target) and count < target:
            val.add(name)
            count += size
    return val


def group_split(
    items: Iterable[Item], val_fraction: float, seed: int = 0, stratify: str | None = None
) -> dict[str, str]:
    """Map each item id to ``"train"`` or ``"val"``, keeping every group on one side.

    About ``val_fraction`` of the items go to val (within one group's size). With ``stratify``
    (an Item attribute such as ``lang``, or a metadata key) each stratum is split on its own, a
    group taking its original's value. With at least two groups both sides get one.

    >>> from artsim.data.manifest.manifest import load_manifest
    >>> manifest = load_manifest("data/demo/manifest.csv")  # 6 groups of 4 items
    >>> assignment = group_split(manifest.items, 0.2, seed=0)
    >>> split_sizes(assignment, manifest.items)["val"]
    {'items': 4, 'groups': 1}
    """
    fraction = _check_fraction(val_fraction)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    if not groups:
        raise DataError("no items to split")
    sizes = {name: len(members) for name, members in groups.items()}

    strata: dict[str, list[str]] = {}
    if stratify:
        for name, value in _group_strata(groups, stratify).items():
            strata.setdefault(value, []).append(name)
    else:
        strata[""] = list(groups)

    rng = np.random.default_rng(int(seed))
    val: set[str] = set()
    # Sorted strata and groups: the result must not depend on input order or hash seed.
    for value in sorted(strata):
        names = sorted(strata[value])
        target = fraction * sum(sizes[name] for name in names)
        val |= _fill(names, sizes, target, rng)

    if len(groups) >= 2:
        # Both sides must be non-empty; move the smallest group (ties by name) across.
        if not val:
            val.add(min(groups, key=lambda name: (sizes[name], name)))
        elif len(val) == len(groups):
            val.remove(min(val, key=lambda name: (sizes[name], name)))

    return {
        item.id: ("val" if group in val else "train")
        for group, members in groups.items()
        for item in members
    }


def carve_calibration(
    assignment: Mapping[str, str], items: Iterable[Item], calib_fraction: float, seed: int = 0
) -> dict[str, str]:
    """Move a share ``calib_fraction`` of the validation GROUPS to the calibration part ``calib``.

    Training never sees ``calib`` items and validation (early stopping, the best checkpoint,
    the fine-tune decision) does not use them: ``artsim evaluate --split calib`` sets the
    verdict's thresholds there. With ``calib_fraction`` 0 the assignment is returned unchanged;
    at least one group stays in validation.

    >>> from artsim.data.manifest.manifest import load_manifest
    >>> manifest = load_manifest("data/demo/manifest.csv")
    >>> assignment = group_split(manifest.items, 0.34, seed=0)
    >>> carved = carve_calibration(assignment, manifest.items, 0.5)
    >>> sorted(set(carved.values()))
    ['calib', 'train', 'val']
    """
    try:
        fraction = float(calib_fraction)
    except (TypeError, ValueError):
        raise DataError(f"calib_fraction must be a number, got {calib_fraction!r}") from None
    if not math.isfinite(fraction) or not 0.0 <= fraction < 1.0:
        raise DataError(f"calib_fraction must be in [0, 1), got {calib_fraction!r}")
    result, items = dict(assignment), list(items)
    if fraction == 0.0:
        return result
    val_groups = sorted({item.group for item in items if assignment.get(item.id) == "val"})
    rng = np.random.default_rng([int(seed), 7])
    count = min(len(val_groups) - 1, round(fraction * len(val_groups)))
    chosen = {val_groups[int(i)] for i in rng.permutation(len(val_groups))[: max(count, 0)]}
    for item in items:
        if item.group in chosen and result.get(item.id) == "val":
            result[item.id] = CALIB
    return result


def split_sizes(assignment: Mapping[str, str], items: Iterable[Item]) -> dict[str, dict[str, int]]:
    """Items and groups on each side: ``{"train": {"items": n, "groups": g}, "val": {...},
    "calib": {...}}``, the last only when there is a calibration part.

    Items missing from ``assignment`` are not counted.
    """
    counts = {split: {"items": 0, "groups": 0} for split in SPLITS}
    seen: dict[str, set[str]] = {split: set() for split in SPLITS}
    for item in items:
        split = assignment.get(item.id)
        if split not in counts:
            continue
        counts[split]["items"] += 1
        seen[split].add(item.group)
    for split in SPLITS:
        counts[split]["groups"] = len(seen[split])
    if not counts[CALIB]["items"]:  # a split without a calibration part reads as before
        del counts[CALIB]
    return counts


def read_split(path: str | Path, manifest: Manifest) -> dict[str, str]:
    """Read an ``id,split`` CSV and check it against ``manifest`` (a loaded Manifest).

    Raises :class:`DataError` (with the 1-based data row, header not counted) for an unknown split
    value, an id not in the manifest, a repeated id or a group on both sides; and if manifest ids
    are missing from the file, naming how many and one of them.
    """
    path = Path(path)
    items = manifest.by_id()
    assignment: dict[str, str] = {}
    group_side: dict[str, tuple[str, int]] = {}
    for number, item_id, split in read_split_rows(path):
        if split not in SPLITS:
            raise DataError(
                f"{path}: row {number}: unknown split {split!r} (expected train, val or calib)"
            )
        if item_id not in items:
            raise DataError(f"{path}: row {number}: id {item_id!r} is not in the manifest")
        if item_id in assignment:
            raise DataError(f"{path}: row {number}: id {item_id!r} appears twice")
        group = items[item_id].group
        if group in group_side and group_side[group][0] != split:
            raise DataError(
                f"{path}: row {number}: group {group!r} is on both sides "
                f"(row {group_side[group][1]} puts it in {group_side[group][0]})"
            )
        group_side.setdefault(group, (split, number))
        assignment[item_id] = split
    missing = [item_id for item_id in items if item_id not in assignment]
    if missing:
        raise DataError(
            f"{path}: {len(missing)} id(s) of the manifest are missing from the split, "
            f"e.g. {missing[0]!r}"
        )
    return assignment
