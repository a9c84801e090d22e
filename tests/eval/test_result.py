"""EvalResult: the typed result reads an evaluation file and writes it back byte for byte."""

from __future__ import annotations

import copy
import json

from artsim.eval.generalisation import baseline_comparison
from artsim.eval.result import (
    BaselineFigures,
    Comparison,
    EvalResult,
    Paired,
    Pairs,
    PatternFigures,
)

TASKS = ("image", "text", "i2t", "t2i", "fused")


def _figures(r1: float, n: int = 4) -> dict:
    return {
        "recall@1": r1,
        "recall@5": 1.0,
        "recall@10": 1.0,
        "mrr": 0.875,
        "map": 0.875,
        "triplet_acc": 1.0,
        "triplet_acc_hard": r1,
        "n_queries": n,
    }


def _at(threshold: float) -> dict:
    return {"threshold": threshold, "precision": 0.5, "recall": 0.75, "fpr": 0.01}


OPEN_SET = {
    "thresholds": {"0.01": {"threshold": 0.6, "false_rate": 0.0, "recall": 0.5, "wrong": 0.0}},
    "micro_ap": 0.625,
    "at_precision_0.9": {"threshold": 0.7, "recall": 0.25, "precision": 1.0},
}
PAIRED = {"wins": 2, "losses": 1, "queries": 4, "p_value": 1.0}


def written_file() -> dict:
    """An evaluation as ``artsim evaluate`` writes it today, every part present, in its order."""
    return {
        "name": "heldout",
        "run": "runs/demo",
        "model_id": "0123456789abcdef",
        "manifest": "data/heldout/manifest.csv",
        "data_fingerprint": "9a0057b3e2f84e6a",
        "split": "all",
        "seed": 0,
        "tasks": {task: _figures(0.75) for task in TASKS},
        "by_lang": {"en": {task: _figures(0.75, 3) for task in TASKS}},
        "verification": {
            task: {"roc_auc": 0.9, "at_fpr_0.001": _at(0.8), "at_fpr_0.01": _at(0.7)}
            for task in TASKS
        },
        "open_set": {task: {**OPEN_SET, "n_matches": 4, "n_distractors": 4} for task in TASKS},
        "baselines": {
            "phash": {"image": {**_figures(0.25), "open_set": OPEN_SET}},
            "frozen": {
                "image": {**_figures(0.5), "open_set": OPEN_SET, "paired": PAIRED},
                "text": {**_figures(0.75), "open_set": OPEN_SET, "paired": PAIRED},
                "i2t": None,
                "t2i": None,
                "fused": {**_figures(0.5), "open_set": OPEN_SET, "paired": PAIRED},
                "reason": "the towers share no space",
            },
            "copy": {"image": {**_figures(1.0), "open_set": OPEN_SET, "paired": PAIRED}},
        },
        "notes": ["a note"],
        "pairs": Pairs.on("all").to_dict(),
        "by_pattern": {
            "collage": {
                "image": {"trained": 1.0, "frozen": 0.5, "n_queries": 2},
                "fused": {"trained": 1.0, "frozen": 1.0, "n_queries": 2},
            }
        },
        "vs_baselines": {
            "image": {
                "trained": 0.75,
                "frozen": 0.5,
                "phash": 0.25,
                "minus_frozen": 0.25,
                "wins": 2,
                "losses": 1,
                "p_value": 1.0,
                "below_frozen": False,
                "lower_within_chance": False,
            }
        },
        "below_frozen": [],
        "lower_within_chance": [],
        "seed_figures": {"loss": 0.125, "triplet_acc": 0.875},
        "counts": {
            "items": 8,
            "queries": 4,
            "gallery": 4,
            "skipped": {"text: query has no text (left out of text, t2i)": 1},
            "problems": [],
        },
        "open_set_confusion": {"fused": {"derived": {"copy": 0, "derived": 3}}},
        "calibration": None,
    }


def test_a_written_file_round_trips_key_for_key() -> None:
    written = written_file()
    result = EvalResult.from_dict(written)
    # the same JSON text: same keys, same order, same values (ints stay ints)
    text = json.dumps(written, indent=2, ensure_ascii=False)
    assert json.dumps(result.to_dict(), indent=2, ensure_ascii=False) == text
    assert EvalResult.from_dict(json.loads(text)) == result
    # known answers, by attribute
    assert result.name == "heldout" and result.split == "all" and result.seed == 0
    assert result.retrieval.figure("fused") == 0.75 and result.retrieval.main_task == "fused"
    assert result.retrieval.by_lang["en"]["image"]["n_queries"] == 3
    assert result.verification.at_fpr("fused", 0.01) == _at(0.7)
    assert result.verification.thresholds()["image"] == {"fpr_0.001": 0.8, "fpr_0.01": 0.7}
    assert result.verification.open_set_confusion["fused"]["derived"]["derived"] == 3
    assert result.baselines.figure("phash", "image") == 0.25
    assert result.baselines.figure("copy", "image") == 1.0
    assert result.baselines.of("frozen", "i2t") is None
    assert result.baselines.frozen_reason == "the towers share no space"
    assert result.baselines.frozen["image"].paired == Paired(2, 1, 4, 1.0)
    assert result.baselines.phash["image"].paired is None
    comparison = result.generalisation.vs_baselines["image"]
    assert (comparison.minus_frozen, comparison.wins, comparison.below_frozen) == (0.25, 2, False)
    assert result.generalisation.by_pattern["collage"]["image"] == PatternFigures(1.0, 0.5, 2)
    assert result.counts.queries == 4 and result.notes == ["a note"]
    assert result.pairs.open_set.startswith("cross-fitted on the all part")


def test_to_dict_is_a_copy_and_from_dict_does_not_keep_the_callers_dict() -> None:
    written = written_file()
    result = EvalResult.from_dict(written)
    written["tasks"]["fused"]["recall@1"] = 0.0
    assert result.retrieval.figure("fused") == 0.75
    out = result.to_dict()
    out["baselines"]["frozen"]["image"]["recall@1"] = 0.0
    assert result.baselines.figure("frozen", "image") == 0.5


def test_parts_only_some_evaluations_have_stay_out_of_the_file() -> None:
    written = written_file()
    del written["by_pattern"], written["baselines"]["copy"]
    result = EvalResult.from_dict(written)
    assert result.generalisation.by_pattern == {} and result.baselines.copy is None
    assert json.dumps(result.to_dict()) == json.dumps(written)


def test_an_older_file_reads_and_is_compared_afresh() -> None:
    # before paired counts, open-set figures, pairs and the comparison were written
    older = {
        "name": "external-a",
        "tasks": {"image": {"recall@1": 0.4}, "fused": {"recall@1": 0.9, "n_queries": 0}},
        "baselines": {
            "frozen": {"image": {"recall@1": 0.5}, "fused": {"recall@1": 0.8}},
            "phash": {"image": {"recall@1": 0.3}},
        },
        "counts": {"queries": 10, "gallery": 5},
    }
    result = EvalResult.from_dict(copy.deepcopy(older))
    assert result.model_id is None and result.pairs is None and result.notes == []
    assert result.verification.open_set == {} and result.baselines.frozen_reason is None
    assert result.baselines.frozen["image"] == BaselineFigures({"recall@1": 0.5})
    assert result.retrieval.main_task == "image"  # fused has no queries
    assert result.counts.skipped == {} and result.counts.items is None
    assert result.generalisation.vs_baselines == {}
    comparison = baseline_comparison(result.retrieval, result.baselines)
    assert comparison.below_frozen == ["image"]  # no paired counts: any loss counts
    assert comparison.vs_baselines["fused"] == Comparison(
        0.9, 0.8, None, 0.9 - 0.8, None, None, None, False, False
    )


def test_damaged_parts_read_as_empty() -> None:
    result = EvalResult.from_dict({"tasks": None, "baselines": {"frozen": [1, 2]}, "pairs": {}})
    assert result.retrieval.tasks == {} and result.baselines.frozen == {}
    assert result.pairs is None and result.retrieval.figure("image") is None
