"""``artsim compare``: relative changes, better/worse, and the noise check over seeds."""

from __future__ import annotations

import math

import pytest

from artsim.cli.compare import main
from artsim.report.compare import (
    _change,
    compare_runs,
    regularized_beta,
    relative_change,
    student_t_cdf,
    t_interval,
    welch_t_test,
    which_is_better,
)

# The seed's two runs (README table): 60/40 first, then 80/20.
SEED_60_40 = {"train/loss": 0.01003, "train/triplet_acc": 0.99997, "val/loss": 0.1148,
              "val/triplet_acc": 0.98934, "val/image_loss": 0.02909, "val/text_loss": 0.17994,
              "val/cross_loss": 0.10576, "val/cross_acc": 0.96106, "val/i2t_acc": 0.95528,
              "val/t2i_acc": 0.96685, "lr": 7e-05}  # fmt: skip
SEED_80_20 = {"train/loss": 0.03043, "train/triplet_acc": 0.99972, "val/loss": 0.07816,
              "val/triplet_acc": 0.99338, "val/image_loss": 0.01866, "val/text_loss": 0.12908,
              "val/text_acc": 0.95123, "val/cross_loss": 0.06927, "val/cross_acc": 0.97414,
              "val/i2t_acc": 0.96428, "val/t2i_acc": 0.98401, "lr": 0.00015}  # fmt: skip


def test_relative_change_reproduces_the_seed():
    assert relative_change(0.1148, 0.07816) == pytest.approx(-0.3192, abs=1e-4)  # "32% lower"
    assert relative_change(0.17994, 0.12908) == pytest.approx(-0.2826, abs=1e-4)  # "28%"
    assert relative_change(0.96685, 0.98401) == pytest.approx(0.01775, abs=1e-4)  # "1.8%"
    assert relative_change(0.0, 1.0) is None
    row = {"relative_change": -0.3192}
    assert _change(row, "en") == "31.9% lower"
    assert _change(row, "es") == "un 31.9 % menor"
    assert _change({"relative_change": 0.0041}, "en") == "0.41% higher"


def test_better_means_lower_loss_and_higher_accuracy():
    assert which_is_better("val/loss", 0.1148, 0.07816) == 1
    assert which_is_better("val/loss", 0.07816, 0.1148) == -1
    assert which_is_better("val/triplet_acc", 0.98934, 0.99338) == 1
    assert which_is_better("eval/fused/recall@1", 0.9, 0.8) == -1
    assert which_is_better("final_lr", 7e-5, 1.5e-4) == 0
    assert which_is_better("epochs_completed", 17, 18) == 0
    assert which_is_better("val/loss", 0.1, 0.1) == 0


def test_statistics_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    special = pytest.importorskip("scipy.special")
    for a, b, x in [(2.0, 0.5, 0.3), (7.5, 0.5, 0.9), (0.5, 3.0, 0.01)]:
        assert regularized_beta(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-9)
    for t, df in [(-2.5, 3), (0.7, 1.7), (4.0, 12.3), (0.0, 5)]:
        assert student_t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), rel=1e-8)
    a, b = [0.1, 0.12, 0.11], [0.08, 0.07, 0.085, 0.075]
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert welch_t_test(a, b) == pytest.approx(expected, rel=1e-6)
    low, high = t_interval(a)
    expected_low, expected_high = stats.t.interval(0.95, 2, loc=0.11, scale=stats.sem(a))
    assert (low, high) == pytest.approx((expected_low, expected_high), rel=1e-6)
    assert welch_t_test([1.0], [2.0, 3.0]) is None and t_interval([1.0]) is None


def _seed_run(write_run, path, manifest, row, seed=0, val_fraction=0.4):
    full = {"epoch": 17, **row}
    return write_run(path, manifest, rows=[full], seed=seed, val_fraction=val_fraction,
                     with_model=False)  # fmt: skip


def test_two_single_runs_compare_like_the_seed(tmp_path, report_manifest, write_run, capsys):
    old = _seed_run(write_run, tmp_path / "vf0.4", report_manifest, SEED_60_40)
    new = _seed_run(write_run, tmp_path / "vf0.2", report_manifest, SEED_80_20, val_fraction=0.2)
    result = compare_runs([old, new])
    assert not result["repeats"] and not result["seed_only"]
    rows = {row["figure"]: row for row in result["rows"]}
    assert rows["val/loss"]["relative_change"] == pytest.approx(-0.3192, abs=1e-4)
    assert rows["val/loss"]["better"] == 1 and rows["val/loss"]["p_value"] is None
    assert rows["train/loss"]["better"] == -1  # higher training loss: worse on that figure
    assert rows["final_lr"]["better"] == 0
    assert "val/text_acc" not in rows  # the 60/40 run did not report it, as in the seed

    out = tmp_path / "compare.md"
    assert main([str(old), str(new), "--out", str(out)]) == 0
    markdown = out.read_text(encoding="utf-8")
    assert "31.9% lower" in markdown and "noise cannot be judged" in markdown
    assert main([str(old), str(new), "--lang", "es", "--out", str(out)]) == 0
    markdown = out.read_text(encoding="utf-8")
    assert "un 31.9 % menor" in markdown and "no se puede juzgar el ruido" in markdown
    assert "lower" not in markdown


def test_repeated_seeds_are_grouped_and_tested(tmp_path, report_manifest, write_run):
    runs = []
    for fraction, base in ((0.4, SEED_60_40), (0.2, SEED_80_20)):
        for seed in range(3):
            wobble = {k: v * (1 + 0.01 * (seed - 1)) for k, v in base.items()}
            runs.append(_seed_run(write_run, tmp_path / f"vf{fraction}_s{seed}", report_manifest,
                                  wobble, seed=seed, val_fraction=fraction))  # fmt: skip
    result = compare_runs(runs)
    assert result["repeats"]
    assert [g["name"] for g in result["groups"]] == ["val_fraction=0.4", "val_fraction=0.2"]
    rows = {row["figure"]: row for row in result["rows"]}
    assert rows["val/loss"]["a_n"] == 3 and rows["val/loss"]["p_value"] < 0.05
    assert rows["val/loss"]["better"] == 1
    # a folder of runs (a sweep) stands for its runs
    expanded = compare_runs([tmp_path])["groups"]
    assert sorted(g["name"] for g in expanded) == sorted(g["name"] for g in result["groups"])


def test_runs_that_differ_only_in_seed(tmp_path, report_manifest, write_run):
    a = _seed_run(write_run, tmp_path / "a", report_manifest, SEED_80_20, seed=0)
    b = _seed_run(write_run, tmp_path / "b", report_manifest, SEED_80_20, seed=1)
    result = compare_runs([a, b])
    assert result["seed_only"]
    assert all(math.isclose(row["a"], row["b"]) for row in result["rows"])


def test_compare_mistakes_are_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), str(tmp_path / "nope2")]) == 2
    assert "run folder not found" in capsys.readouterr().err
