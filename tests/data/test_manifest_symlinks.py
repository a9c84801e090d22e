"""Images are read only where the manifest's folder lets them be: a row whose image is a
symbolic link (itself, or through a linked folder) to a file outside the folder is skipped with
its reason, and the file is never opened; links inside the folder, and folders the user names
in ARTSIM_IMAGE_ROOTS, keep working."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from artsim.data.manifest import manifest as manifest_module
from artsim.data.manifest.manifest import load_manifest


@pytest.fixture
def linked(synthetic_manifest: Path, tmp_path: Path, monkeypatch):
    """A copy of the synthetic data set whose rows 0-2 link outside it, row 3 inside; and the
    paths of every image the loader opened."""
    data = tmp_path / "data"
    shutil.copytree(synthetic_manifest.parent, data)
    outside = tmp_path / "outside"
    outside.mkdir()
    with (data / "manifest.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    stolen = outside / "elsewhere.png"
    shutil.copy(data / rows[0]["image"], stolen)
    (data / "links").mkdir()
    (data / "links" / "to-outside.png").symlink_to(stolen)
    (data / "links" / "to-passwd.png").symlink_to("/etc/passwd")
    (data / "linked-folder").symlink_to(outside)
    (data / "links" / "inside.png").symlink_to(data / rows[4]["image"])
    rows[0]["image"] = "links/to-outside.png"
    rows[1]["image"] = "links/to-passwd.png"
    rows[2]["image"] = "linked-folder/elsewhere.png"
    rows[3]["image"] = "links/inside.png"
    with (data / "manifest.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    opened: list[Path] = []
    real_check = manifest_module.check_image

    def recording_check(path, *args, **kwargs):
        opened.append(Path(path))
        return real_check(path, *args, **kwargs)

    monkeypatch.setattr(manifest_module, "check_image", recording_check)
    monkeypatch.delenv("ARTSIM_IMAGE_ROOTS", raising=False)
    return data / "manifest.csv", outside, opened, rows


def test_links_outside_the_folder_are_skipped_unopened(linked):
    manifest_path, _, opened, rows = linked
    manifest = load_manifest(manifest_path)
    reasons = {problem.item_id: problem.reason for problem in manifest.errors}
    for row in rows[:3]:
        assert "resolves outside the manifest's folder" in reasons[row["id"]]
        assert row["image"] in reasons[row["id"]]
    assert "/etc/passwd" in reasons[rows[1]["id"]]
    assert rows[3]["id"] in {item.id for item in manifest.items}  # a link inside: fine
    assert not any("links/to-" in str(path) or "linked-folder" in str(path) for path in opened)
    assert len(opened) == len(rows) - 3


def test_folders_named_in_artsim_image_roots_are_allowed(linked, monkeypatch):
    manifest_path, outside, _, rows = linked
    monkeypatch.setenv("ARTSIM_IMAGE_ROOTS", str(outside))
    manifest = load_manifest(manifest_path)
    ids = {item.id for item in manifest.items}
    assert rows[0]["id"] in ids and rows[2]["id"] in ids and rows[1]["id"] not in ids
