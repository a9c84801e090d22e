"""The report's verdict part says whether the stated probabilities are right: the collection
calibration's cross-fitted expected calibration error and its reliability diagram (a table of
bins), in English and Spanish."""

from __future__ import annotations

import json

from artsim.report.verdicts import verdicts_part


def test_the_reliability_of_stated_probabilities_is_reported(evaluated_run, run_copy):
    run = run_copy(evaluated_run)
    model_id = json.loads((run / "eval" / "val.json").read_text())["model_id"]
    bins = [
        {"low": 0.0, "high": 0.1, "weight": 0.9, "n": 540, "stated": 0.012, "observed": 0.015},
        {"low": 0.8, "high": 0.9, "weight": 0.1, "n": 60, "stated": 0.86, "observed": 0.8},
    ]
    calibration = {
        "model_id": model_id,
        "rate": 0.01,
        "tasks": {},
        "copy": None,
        "about": {
            "on": {"match_queries": 30, "distractor_queries": 30, "seed": 0},
            "reliability": {
                "image": {
                    "results": 600,
                    "ece": 0.0087,
                    "ece_best_result_table_everywhere": 0.21,
                    "bins": bins,
                }
            },
        },
    }
    (run / "index").mkdir()
    (run / "index" / "index.json").write_text(json.dumps({"calibration": calibration}))
    english, spanish = verdicts_part(run, "en"), verdicts_part(run, "es")
    text = " ".join(english["paragraphs"])
    assert "expected calibration error 0.0087 over 600 results, against 0.21" in text
    diagram = english["tables"][-1]
    assert diagram[0] == [
        "stated probability",
        "share of results",
        "mean stated",
        "share that was the original",
    ]
    assert diagram[1] == [["0–0.1", "0.9", "0.012", "0.015"], ["0.8–0.9", "0.1", "0.86", "0.8"]]
    assert "error de calibración esperado 0.0087" in " ".join(spanish["paragraphs"])
    assert spanish["tables"][-1][0][0] == "probabilidad dada"
