"""The report compares training and validation losses like with like: training's objective holds
the KoLeo spreading term (negative) and the copy part, which validation does not compute, so the
gap, its ratio and the curves use the triplet parts both sides compute."""

from __future__ import annotations

import pytest

from artsim.report.analysis import analyse_run
from artsim.report.plots import loss_series
from artsim.report.reading import load_run


def demo_like_rows(epochs: int = 6) -> list[dict]:
    """Rows shaped like the demo's: a negative KoLeo part makes the training objective < 0."""
    rows = []
    for epoch in range(1, epochs + 1):
        fall = 1 + 2 / epoch
        train = {"image": 0.0078 * fall, "text": 0.0113 * fall, "cross": 0.0437 * fall}
        val = {"image": 0.0104 * fall, "text": 0.0054 * fall, "cross": 0.0741 * fall}
        koleo = -0.2436
        row = {
            "epoch": epoch,
            "lr": 0.0005,
            "train/loss": sum(train.values()) + koleo,
            "train/koleo_loss": koleo,
            "train/copy_loss": 0.0,
            "train/triplet_acc": 0.97,
            "val/loss": sum(val.values()),
            "val/triplet_acc": 0.9246,
        }
        row.update({f"train/{part}_loss": value for part, value in train.items()})
        row.update({f"val/{part}_loss": value for part, value in val.items()})
        rows.append(row)
    return rows


@pytest.fixture
def demo_like_run(tmp_path, report_manifest, write_run):
    rows = demo_like_rows()
    folder = write_run(
        tmp_path / "demo-like",
        report_manifest,
        with_model=False,
        rows=rows,
        config_extra={"loss_weights": {"image": 1.0, "text": 1.0, "cross": 1.0, "koleo": 1.0}},
    )
    return load_run(folder)


def gap_text(run, lang: str) -> str:
    sections, findings = analyse_run(run, None, lang)
    (gap,) = [section for section in sections if section.key == "gap"]
    return " ".join(gap.paragraphs), findings


def test_the_gap_compares_the_parts_both_sides_compute(demo_like_run):
    final = demo_like_run.final()
    assert final["train/loss"] < 0 < final["val/loss"]  # the whole objective is not comparable
    train = demo_like_run.comparable_loss(final, "train")
    val = demo_like_run.comparable_loss(final, "val")
    assert train == pytest.approx(
        final["train/image_loss"] + final["train/text_loss"] + final["train/cross_loss"]
    )
    assert val == pytest.approx(final["val/loss"])
    text, findings = gap_text(demo_like_run, "en")
    ratio = val / train  # 1.43: moderate, not "a clear sign of over-fitting"
    assert findings.overfitting == "moderate"
    assert f"{ratio:.2g} times" in text and "clear sign" not in text
    assert "KoLeo" in text and "not compared" in text and "–" not in text
    spanish, _ = gap_text(demo_like_run, "es")
    assert f"{ratio:.2g} veces" in spanish and "KoLeo" in spanish and "–" not in spanish


def test_the_curves_plot_the_same_parts(demo_like_run):
    rows = demo_like_run.metrics
    _, train = loss_series(rows, "train", demo_like_run.comparable_loss)
    _, val = loss_series(rows, "val", demo_like_run.comparable_loss)
    assert min(train) > 0 and train == pytest.approx(
        [r["train/image_loss"] + r["train/text_loss"] + r["train/cross_loss"] for r in rows]
    )
    assert val == pytest.approx([r["val/loss"] for r in rows])
    _, logged = loss_series(rows, "train")
    assert max(logged) < 0  # what the plot drew before: the objective, KoLeo included


def test_a_run_without_extra_parts_reads_as_before(tmp_path, report_manifest, write_run, make_rows):
    folder = write_run(
        tmp_path / "plain",
        report_manifest,
        with_model=False,
        rows=make_rows(train_final=0.01, val_final=0.12),
    )
    text, findings = gap_text(load_run(folder), "en")
    assert findings.overfitting == "large" and "clear sign of over-fitting" in text
    assert "KoLeo" not in text
