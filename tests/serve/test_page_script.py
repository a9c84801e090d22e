"""The page's script (static/app.js) run by node against a stub DOM: what the calibration line
says for a given /search answer. Skipped, saying why, without node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import artsim.serve

APP_JS = Path(artsim.serve.__file__).parent / "static" / "app.js"

HARNESS = r"""
const fs = require("fs");
const vm = require("vm");
const made = {};
function element() {
  return {
    textContent: "", title: "", hidden: false, dataset: {}, classList: { add() {}, remove() {} },
    addEventListener() {}, replaceChildren() {}, append() {}, setAttribute() {},
    removeAttribute() {},
  };
}
const document = {
  documentElement: {},
  getElementById: (id) => (made[id] = made[id] || element()),
  querySelectorAll: () => [],
  createElement: () => element(),
  addEventListener() {},
};
const context = {
  document, location: { search: "", href: "http://x/" }, URLSearchParams, URL,
  fetch: () => new Promise(() => {}), console,
};
vm.createContext(context);
vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), context);
vm.runInContext(`render(${process.argv[2]})`, context);
process.stdout.write(made.calibration.textContent);
"""


def calibration_line(data: dict) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is missing: the page script cannot be run")
    done = subprocess.run(
        [node, "-e", HARNESS, str(APP_JS), json.dumps(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def answer(derived_threshold: float | None) -> dict:
    """A /search answer of an image query on a collection whose image task is normalised."""
    return {
        "task": "image",
        "derived_threshold": derived_threshold,
        "calibration": {
            "status": "calibrated",
            "source": "collection",
            "rate": 0.01,
            # on score minus the query's 4th-best score: not a score a result reaches
            "thresholds": {"image": 0.05},
            "background": {"image": {"rank": 4, "weight": 1.0}},
        },
        "results": [
            {
                "rank": 1,
                "id": "a",
                "group": "a",
                "title": "",
                "artist": "",
                "score": 0.7,
                "scores": {"image": 0.7},
                "verdict": "derived" if derived_threshold is not None else "uncalibrated",
                "probability": None,
                "thumbnail_url": "/t",
            }
        ],
    }


def test_the_page_states_this_querys_threshold_in_score_units():
    said = calibration_line(answer(0.712))
    assert "score ≥ 0.712" in said and "4th closest original" in said


def test_no_threshold_for_this_query_is_uncalibrated_not_the_normalised_threshold():
    """The query's background was unknown (the index holds fewer originals than its rank): the
    server gives no threshold and graded nothing; the page must not show the calibrated
    threshold, which is on score minus background, as a score."""
    said = calibration_line(answer(None))
    assert "0.050" not in said
    assert said.startswith("Uncalibrated")
