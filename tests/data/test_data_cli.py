"""``artsim data`` in-process: exit codes, one line per problem, never a traceback."""

from __future__ import annotations

import csv
import sys
import types
from pathlib import Path

import pytest

from artsim.cli.data import main
from artsim.data.manifest.manifest import write_manifest


def _output(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return text


def _break_row(manifest: Path, index: int, **changes: str) -> None:
    with manifest.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[index].update(changes)
    with manifest.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_validate_clean(synthetic_manifest: Path, capsys) -> None:
    assert main(["validate", str(synthetic_manifest)]) == 0
    out = _output(capsys)
    assert "Every row is usable." in out
    for label, value in [("rows", "24"), ("usable", "24"), ("groups", "6"), ("originals", "6")]:
        assert any(label in line and value in line for line in out.splitlines()), label
    assert "en 16, es 8" in out


def test_validate_bad_rows_exit_1(synthetic_manifest: Path, tmp_copy, capsys) -> None:
    copied = tmp_copy(synthetic_manifest)
    _break_row(copied, 2, role="bogus")
    _break_row(copied, 6, image="../../etc/passwd")
    assert main(["validate", str(copied)]) == 1
    out = _output(capsys)
    assert "manifest.csv: row 3 (id g000-gen1): error: unknown role 'bogus'" in out
    assert "row 7 (id g001-gen1): error: image path escapes the manifest's folder" in out
    assert "2 row(s) cannot be used." in out


def test_validate_warnings_only_exit_0(synthetic_manifest: Path, tmp_copy, capsys) -> None:
    copied = tmp_copy(synthetic_manifest)
    _break_row(copied, 0, role="generated")
    assert main(["validate", str(copied)]) == 0
    assert "warning: group 'g000' has 4 generated item(s) but no original" in _output(capsys)


def test_validate_max_pixels(synthetic_manifest: Path, capsys) -> None:
    assert main(["validate", str(synthetic_manifest), "--max-pixels", "1000"]) == 1
    assert "image too large: 32x32 = 1,024 pixels" in _output(capsys)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "manifest not found"),
        (b"", "empty manifest"),
        (b"id,group\na,b\n", "missing required column(s): role, image"),
        (b"id,group,role,image\na,g,original,caf\xe9.png\n", "not UTF-8 text: line 2"),
    ],
)
def test_validate_bad_file_is_one_line(tmp_path: Path, capsys, content, message) -> None:
    path = tmp_path / "manifest.csv"
    if content is not None:
        path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    out = _output(capsys)
    assert message in out
    assert len(out.strip().splitlines()) == 1


def test_bad_options_are_usage_errors(synthetic_manifest: Path, capsys) -> None:
    assert main(["validate", str(synthetic_manifest), "--max-pixels", "0"]) == 2
    assert main(["validate"]) == 2
    assert main(["split", str(synthetic_manifest)]) == 2  # --out is required
    _output(capsys)


def test_no_arguments_shows_help(capsys) -> None:
    main([])
    out = _output(capsys)
    assert "validate" in out and "split" in out


def test_split(synthetic_manifest: Path, tmp_path: Path, capsys) -> None:
    out_path = tmp_path / "split.csv"
    argv = ["split", str(synthetic_manifest), "--val-fraction", "0.25", "--seed", "1"]
    assert main([*argv, "--out", str(out_path), "--stratify", "lang"]) == 0
    out = _output(capsys)
    assert "train" in out and "val" in out
    rows = list(csv.DictReader(out_path.open(encoding="utf-8")))
    assert len(rows) == 24
    val_groups = {row["id"].split("-")[0] for row in rows if row["split"] == "val"}
    train_groups = {row["id"].split("-")[0] for row in rows if row["split"] == "train"}
    assert val_groups and train_groups and not val_groups & train_groups


def test_split_bad_fraction_is_one_line(synthetic_manifest: Path, tmp_path: Path, capsys) -> None:
    argv = ["split", str(synthetic_manifest), "--val-fraction", "1.5", "--out", str(tmp_path / "s")]
    assert main(argv) == 2
    out = _output(capsys)
    assert "val_fraction must be between 0 and 1" in out
    assert len(out.strip().splitlines()) == 1


def test_derive_and_demo_call_their_builders(
    synthetic_manifest: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """Only the wiring: the builders themselves are tested with their own modules."""
    from artsim.data.manifest.manifest import load_manifest

    calls = {}

    def derive_manifest(
        manifest, out_dir: Path, per_original: int = 3, seed: int = 0, reporter=None
    ) -> Path:
        calls["derive"] = (len(manifest.items), out_dir, per_original, seed)
        return write_manifest(manifest.items, synthetic_manifest.parent / "derived.csv")

    def build_demo_corpus(
        out_dir,
        max_originals=None,
        per_original=3,
        seed=0,
        cache_dir=None,
        corpus="demo",
        reporter=None,
    ):
        calls["demo"] = (out_dir, max_originals, per_original, seed, cache_dir, corpus)
        return synthetic_manifest

    monkeypatch.setitem(
        sys.modules,
        "artsim.data.families.training.derive",
        types.SimpleNamespace(derive_manifest=derive_manifest),
    )
    monkeypatch.setitem(
        sys.modules,
        "artsim.data.corpora.demo",
        types.SimpleNamespace(build_demo_corpus=build_demo_corpus),
    )
    try:
        argv = ["derive", str(synthetic_manifest), "--per-original", "2", "--seed", "4"]
        assert main([*argv, "--out", str(tmp_path / "d")]) == 0
    finally:
        (synthetic_manifest.parent / "derived.csv").unlink(missing_ok=True)
    assert calls["derive"] == (24, tmp_path / "d", 2, 4)
    assert "derived.csv" in _output(capsys)

    argv = ["demo", "--out", str(tmp_path / "demo"), "--max-originals", "5", "--seed", "2"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache"), "--corpus", "full"]) == 0
    assert calls["demo"] == (tmp_path / "demo", 5, 3, 2, tmp_path / "cache", "full")
    out = _output(capsys)
    assert "generated" in out and "18" in out
    assert load_manifest(synthetic_manifest).problems == []
