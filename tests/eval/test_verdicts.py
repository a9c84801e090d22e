"""Graded verdicts: thresholds fitted on known scores give known grades."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from artsim.verdicts.grades import (
    OpenSetCalibration,
    confusion,
    copy_threshold,
    fit_task,
)


def calibration() -> OpenSetCalibration:
    distractors = np.linspace(0.0, 0.6, 200)  # 1% of them (2) reach 0.597
    matches = np.linspace(0.5, 1.0, 100)
    correct = np.ones(100, bool)
    image = fit_task(matches, correct, distractors)
    text = fit_task(matches, correct, distractors * 0.5)
    copy = copy_threshold(np.linspace(0.9, 1.0, 50), floor=image.threshold(0.001))
    return OpenSetCalibration("m1", 0.01, {"image": image, "text": text, "fused": image}, copy)


def test_thresholds_follow_the_distractors():
    cal = calibration()
    image = cal.tasks["image"]
    rates = {rate: image.thresholds[rate]["false_rate"] for rate in ("0.001", "0.01", "0.05")}
    assert rates["0.01"] <= 0.01 and rates["0.05"] <= 0.05 and rates["0.001"] == 0.0
    t = image.threshold(0.01)
    assert (np.linspace(0.0, 0.6, 200) >= t).sum() == 2
    assert cal.copy["threshold"] >= image.threshold(0.001)


def test_grades_in_order_of_strength():
    cal = calibration()
    assert cal.grade("image", 0.97, {"image": 0.97}).verdict == "copy"
    derived = cal.grade("image", 0.8, {"image": 0.8})
    assert derived.verdict == "derived" and derived.decided_by == "image"
    assert derived.threshold == pytest.approx(cal.tasks["image"].threshold(0.01))
    # below derived but the prompt matches the caption
    related = cal.grade("fused", 0.3, {"fused": 0.3, "text": 0.95, "image": 0.2})
    assert related.verdict == "related" and related.decided_by == "text"
    # above what a quarter of distractors reach, no text
    assert cal.grade("image", 0.5, {"image": 0.5}).verdict == "related"
    unrelated = cal.grade("image", 0.1, {"image": 0.1})
    assert unrelated.verdict == "unrelated"
    assert cal.grade("i2t", 0.9, {"i2t": 0.9}).verdict == "uncalibrated"


def test_probability_rises_with_the_score():
    cal = calibration()
    low = cal.grade("image", 0.1, {"image": 0.1}).probability
    high = cal.grade("image", 0.9, {"image": 0.9}).probability
    assert low < 0.1 < 0.9 < high


def test_json_round_trip():
    cal = calibration()
    again = OpenSetCalibration.from_json(json.loads(json.dumps(cal.to_json())))
    assert again == cal
    for score in (0.1, 0.5, 0.8, 0.97):
        assert again.grade("image", score, {"image": score}) == cal.grade(
            "image", score, {"image": score}
        )


def test_confusion_counts():
    table = confusion(["derived", "derived", "none"], ["derived", "copy", "unrelated"])
    assert table["derived"]["derived"] == 1 and table["derived"]["copy"] == 1
    assert table["none"]["unrelated"] == 1 and table["none"]["derived"] == 0


def test_background_normalised_task_decides_on_score_minus_background():
    """Thresholds fitted on normalised scores: a result is derived when its score minus the
    query's background reaches the threshold, and the threshold comes back in score units."""
    distractors = np.linspace(-0.3, 0.1, 200)  # normalised: 1% (2) reach 0.098
    image = fit_task(
        np.linspace(0.0, 0.5, 100),
        np.ones(100, bool),
        distractors,
        background_rank=4,
        background_weight=1.0,
    )
    cal = OpenSetCalibration("m1", 0.01, {"image": image})
    t = image.threshold(0.01)
    assert t == pytest.approx(distractors[-2])
    # the same score 0.75: derived for a query whose 4th-best original scores 0.5, not for
    # one that is that close to nearly everything (0.7)
    specific = cal.grade("image", 0.75, {"image": 0.75}, background=0.5)
    generic = cal.grade("image", 0.75, {"image": 0.75}, background=0.7)
    assert specific.verdict == "derived" and generic.verdict != "derived"
    assert specific.threshold == pytest.approx(t + 0.5) and specific.score == 0.75
    assert cal.derived_threshold("image", 0.7) == pytest.approx(t + 0.7)
    # without its background a normalised task gives no verdict rather than a wrong one
    assert cal.grade("image", 0.75, {"image": 0.75}).verdict == "uncalibrated"
    # ... but a copy is graded on the plain image score, which needs no background
    copied = replace(cal, copy={"threshold": 0.95, "recall": 0.9, "n": 50.0})
    copy = copied.grade("fused", 0.5, {"fused": 0.5, "image": 0.97})
    assert copy.verdict == "uncalibrated"  # no fused calibration at all
    copy = copied.grade("image", 0.97, {"image": 0.97})
    assert (copy.verdict, copy.threshold, copy.probability) == ("copy", 0.95, None)
    assert copied.grade("image", 0.9, {"image": 0.9}).verdict == "uncalibrated"
    # it survives JSON; a calibration saved before normalisation existed reads as plain scores
    again = OpenSetCalibration.from_json(json.loads(json.dumps(cal.to_json())))
    assert again.grade("image", 0.75, {"image": 0.75}, 0.5) == specific
    old = cal.to_json()
    for task in old["tasks"].values():
        del task["background_rank"], task["background_weight"]
    plain = OpenSetCalibration.from_json(old)
    assert plain.grade("image", 0.2, {"image": 0.2}).verdict == "derived"


@pytest.mark.parametrize(
    "broken",
    [
        {"model_id": "m1", "tasks": {"image": {"thresholds": [0.5]}}},  # a list, not a table
        {"model_id": "m1", "tasks": ["image"]},
        {"model_id": "m1"},
    ],
)
def test_an_unreadable_index_calibration_is_uncalibrated_with_its_reason(broken, tmp_path):
    from artsim.verdicts.source import load_calibration

    calibration = load_calibration(tmp_path, "m1", broken)
    assert calibration.status == "uncalibrated"
    assert calibration.note.startswith("the index's calibration is unreadable")
