"""benchmarks/bench_descriptors.py: several-scale descriptors, split sets, known recalls."""

from __future__ import annotations

import csv
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from artsim.data.manifest.manifest import load_manifest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_descriptors.py"
sys.path.insert(0, str(BENCH.parent))  # the benchmarks import their harness from their folder
_spec = importlib.util.spec_from_file_location("bench_descriptors", BENCH)
bench_descriptors = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_descriptors)


def table_lines(out: str) -> list[str]:
    """The Markdown tables' lines of the section (the heading and the command line left out)."""
    return [line for line in out.splitlines() if line.startswith("|")]


def test_mean_of_scales_averages_the_normalised_descriptors():
    first, second = np.array([[3.0, 4.0], [0.0, 2.0]]), np.array([[1.0, 0.0], [0.0, 5.0]])
    np.testing.assert_allclose(
        bench_descriptors.mean_of_scales([first, second]), [[0.8, 0.4], [0.0, 1.0]]
    )


def test_paired_cells_count_the_queries_each_side_alone_gets_right():
    hits = np.array([True, True, False, True, False])
    baseline = np.array([True, False, False, False, True])
    assert bench_descriptors.paired_cell(hits, None) == "0.600"
    assert bench_descriptors.paired_cell(hits, baseline) == "0.600 (+2/-1, p 1)"
    ten = np.ones(10, bool)
    assert bench_descriptors.paired_cell(ten, ~ten) == "1.000 (+10/-0, p 0.002)"


def test_scales_are_parsed_or_refused_in_one_line():
    assert bench_descriptors.parse_scales("224+320") == (224, 320)
    with pytest.raises(SystemExit, match="224\\+x"):
        bench_descriptors.parse_scales("224+x")
    with pytest.raises(SystemExit, match="at least 32"):
        bench_descriptors.parse_scales("16")


@pytest.fixture
def copies(synthetic_manifest: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Each generated image a byte copy of an original: its own for groups 0-2 (the ``val``
    split), the next group's for groups 3-5 (``train``). Recall@1 is 1 on val, 0.5 overall."""
    folder = tmp_path / "copies"
    shutil.copytree(synthetic_manifest.parent, folder)
    items = load_manifest(folder / "manifest.csv").items
    originals = [i for i in items if i.is_original]
    index = {item.group: k for k, item in enumerate(originals)}
    for item in items:
        if not item.is_original:
            k = index[item.group]
            source = originals[k if k < 3 else (k + 1) % len(originals)]
            shutil.copyfile(source.image, item.image)
    split = tmp_path / "split.csv"
    with open(split, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "split"])
        for item in items:
            writer.writerow([item.id, "val" if index[item.group] < 3 else "train"])
    return folder / "manifest.csv", split


def test_rows_have_the_known_recalls_and_features_are_reused(copies, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ARTSIM_CACHE", str(tmp_path / "cache"))
    manifest, split = copies
    argv = ["--train", str(manifest), "--split", str(split), "--set", f"all={manifest}"]
    argv += ["--split-set", "val=val", "--tower", "tiny", "--dims", "0,2"]
    assert bench_descriptors.main(argv) == 0
    captured = capsys.readouterr()
    assert table_lines(captured.out) == [
        "| descriptor | all | val |",
        "|---|---:|---:|",
        "| tiny | 0.500 | 1.000 |",
        "| tiny, whitened 2 | 0.500 | 1.000 |",
    ]
    # 24 rows but 6 distinct files: the copies share their originals' cached rows
    assert sum(int(n) for n in re.findall(r"computed (\d+) images", captured.err)) == 6
    assert bench_descriptors.main(argv) == 0
    assert "computed" not in capsys.readouterr().err  # the second run reads the cache


def test_several_scales_combine_single_scale_towers(copies, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ARTSIM_CACHE", str(tmp_path / "cache"))
    manifest, split = copies
    argv = ["--train", str(manifest), "--split", str(split), "--split-set", "val=val"]
    argv += ["--scales", "64+96", "--scales", "96", "--dims", "0,2", "--paired"]
    assert bench_descriptors.main(argv) == 0
    captured = capsys.readouterr()
    assert table_lines(captured.out)[2:] == [
        "| GeM 64+96 px | 1.000 |",
        "| GeM 64+96 px, whitened 2 | 1.000 |",
        "| GeM 96 px | 1.000 (+0/-0, p 1) |",
        "| GeM 96 px, whitened 2 | 1.000 (+0/-0, p 1) |",
    ]
    # each size is extracted once (3 training originals, then 3 distinct val files) and reused
    assert captured.err.count("computed 3 images") == 4
    assert "gem3-64: computed" in captured.err and "gem3-96: computed" in captured.err


def test_rows_per_pattern_compare_each_descriptor_with_the_first(
    copies, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("ARTSIM_CACHE", str(tmp_path / "cache"))
    manifest, split = copies
    with open(manifest, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:  # the first generated copy of each group is a "mosaic", the others "combo:"
        row["pattern"] = "" if row["role"] == "original" else "combo:blur+mosaic"
    for group in {row["group"] for row in rows}:
        next(r for r in rows if r["group"] == group and r["role"] != "original")["pattern"] = (
            "mosaic"
        )
    with open(manifest, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    argv = ["--train", str(manifest), "--split", str(split), "--set", f"all={manifest}"]
    argv += ["--split-set", "val=val", "--tower", "tiny", "--tower", "tiny-bn"]
    assert bench_descriptors.main([*argv, "--dims", "0", "--by-pattern", "0"]) == 0
    lines = table_lines(capsys.readouterr().out)
    start = lines.index("| pattern | all |")  # the split set has no pattern column
    # byte copies: both towers find the same originals, right for groups 0-2 and wrong for 3-5
    assert lines[start + 2 :] == [
        "| combination | 0.500 -> 0.500 (+0/-0) |",
        "| mosaic | 0.500 -> 0.500 (+0/-0) |",
    ]
    with pytest.raises(SystemExit):
        bench_descriptors.main([*argv, "--dims", "0", "--by-pattern", "768"])
    assert "--by-pattern 768: not one of --dims 0" in capsys.readouterr().err


def test_pattern_rows_count_wins_and_losses_per_pattern():
    patterns = {"a": ["mosaic", "blur", "mosaic", "blur"], "b": ["blur", "blur"]}
    new = {"a": np.array([True, False, True, True]), "b": np.array([True, True])}
    old = {"a": np.array([False, True, True, True]), "b": np.array([False, True])}
    assert bench_descriptors.pattern_rows(patterns, new, old) == [
        "| blur | 1.000 -> 0.500 (+0/-1) | 0.500 -> 1.000 (+1/-0) |",
        "| mosaic | 0.500 -> 1.000 (+1/-0) | – |",
    ]
