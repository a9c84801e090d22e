"""evaluate_run and ``artsim evaluate`` on a run folder with random heads (mechanics, not quality)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from artsim.cli.evaluate import main
from artsim.data.corpora.synthetic import make_synthetic_manifest
from artsim.errors import UserError
from artsim.eval.evaluate import TASKS, evaluate_run
from artsim.eval.result import EvalResult

RETRIEVAL_KEYS = {
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr",
    "map",
    "triplet_acc",
    "triplet_acc_hard",
    "n_queries",
}
SEED_KEYS = {
    "loss",
    "triplet_acc",
    "image_loss",
    "image_acc",
    "text_loss",
    "text_acc",
    "i2t_loss",
    "i2t_acc",
    "t2i_loss",
    "t2i_acc",
    "cross_loss",
    "cross_acc",
}
AT_FPR_KEYS = {"threshold", "precision", "recall", "fpr"}


def test_val_evaluation_has_every_key_and_writes_its_files(eval_run, run_copy, synthetic_manifest):
    run = run_copy(eval_run)
    result = evaluate_run(run, synthetic_manifest, split="val")

    tasks, verification = result.retrieval.tasks, result.verification.tasks
    assert set(tasks) == set(TASKS)
    for task in TASKS:
        assert set(tasks[task]) == RETRIEVAL_KEYS
        assert tasks[task]["n_queries"] > 0
        assert 0.0 <= verification[task]["roc_auc"] <= 1.0
        for target in ("at_fpr_0.001", "at_fpr_0.01", "at_fpr_0.05"):
            assert set(verification[task][target]) == AT_FPR_KEYS
    assert set(result.seed_figures) == SEED_KEYS
    for lang, by_task in result.retrieval.by_lang.items():
        assert lang in ("en", "es")
        assert set(by_task) == set(TASKS)
        assert set(by_task["image"]) == RETRIEVAL_KEYS
    phash = result.baselines.phash["image"]
    assert set(phash.figures) == RETRIEVAL_KEYS and phash.open_set and phash.paired is None
    frozen = result.baselines.frozen
    for task in ("image", "text", "fused"):  # wins and losses add up to what recall@1 says
        assert set(frozen[task].figures) == RETRIEVAL_KEYS and frozen[task].open_set
        paired = frozen[task].paired
        assert paired.queries == tasks[task]["n_queries"]
        assert paired.wins + paired.losses <= paired.queries
        gap = tasks[task]["recall@1"] - frozen[task].figures["recall@1"]
        assert abs(gap) <= (paired.wins + paired.losses) / paired.queries + 1e-9
    assert frozen["i2t"] is None and frozen["t2i"] is None
    assert "feature spaces" in result.baselines.frozen_reason
    # Per task: trained vs frozen vs hash, and the list of tasks below frozen, consistent.
    generalisation = result.generalisation
    assert set(generalisation.vs_baselines) == {"image", "text", "fused"}
    for task, row in generalisation.vs_baselines.items():
        assert row.trained == tasks[task]["recall@1"]
        assert row.frozen == frozen[task].figures["recall@1"]
        assert row.below_frozen == (row.trained < row.frozen)
        assert (task in generalisation.below_frozen) == row.below_frozen
    assert generalisation.vs_baselines["image"].phash == phash.figures["recall@1"]
    counts = result.counts
    assert counts.queries == tasks["image"]["n_queries"]
    assert counts.gallery >= 1 and counts.skipped == {} and counts.problems == []
    assert len(result.model_id) == 16 and result.data_fingerprint
    assert result.manifest == str(synthetic_manifest)

    # the file holds the result, key for key, and reads back as the same result
    text = (run / "eval" / "val.json").read_text()
    assert text == json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
    assert EvalResult.from_dict(json.loads(text)) == result
    top5 = json.loads((run / "eval" / "val.top5.json").read_text())
    first = top5["tasks"]["fused"][0]
    assert {"query", "correct", "rank", "top"} <= set(first)
    assert len(first["top"]) == min(5, counts.gallery)
    assert (
        first["query"] in top5["items"] and Path(top5["items"][first["query"]]["image"]).is_file()
    )
    curves = json.loads((run / "eval" / "val.curves.json").read_text())
    assert set(curves) == set(TASKS) and curves["fused"]["roc"]["fpr"][0] == 0.0

    calibration = json.loads((run / "calibration.json").read_text())
    assert calibration["model_id"] == result.model_id
    assert calibration["source"] == f"val split of {synthetic_manifest}"
    assert set(calibration["thresholds"]) == set(TASKS)
    assert set(calibration["thresholds"]["fused"]) == {"fpr_0.001", "fpr_0.01", "fpr_0.05"}
    assert calibration["thresholds"] == result.verification.thresholds()
    assert calibration["default_fpr"] == 0.001


def _rewrite(manifest: Path, change) -> None:
    with manifest.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows = change(rows)
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_other_data_is_evaluated_without_calibration(eval_run, run_copy, tmp_path):
    run = run_copy(eval_run)
    other = make_synthetic_manifest(tmp_path / "other", n_groups=4, seed=5)
    result = evaluate_run(run, other)
    assert result.split == "all" and result.name.startswith("external-")
    assert result.counts.queries == 12 and result.counts.gallery == 4
    assert (run / "eval" / f"{result.name}.json").is_file()
    assert not (run / "calibration.json").exists()
    # same ids as the training data (g000-orig...) but other pictures: matched by id, with a
    # note, and never taken for the run's own validation data
    result = evaluate_run(run, other, split="val")
    assert "not the data the run was trained on" in result.notes[0]
    assert not (run / "calibration.json").exists()
    # ids that match nothing in split.csv: said plainly
    _rewrite(other, lambda rows: [{**row, "id": "x" + row["id"]} for row in rows])
    with pytest.raises(UserError, match="none of the ids"):
        evaluate_run(run, other, split="val")


def test_queries_without_text_or_original_are_skipped_and_counted(
    eval_run, run_copy, synthetic_manifest, tmp_copy
):
    manifest = tmp_copy(synthetic_manifest)

    def change(rows):
        rows = [row for row in rows if row["id"] != "g000-orig"]  # g000 loses its original
        for row in rows:
            if row["id"] == "g001-gen0":
                row["text"] = ""  # a prompt-less query
            if row["id"] == "g002-orig":
                row["text"] = ""  # a caption-less original
        return rows

    _rewrite(manifest, change)
    result = evaluate_run(run_copy(eval_run), manifest)
    skipped = result.counts.skipped
    assert skipped["group has no original among the evaluated items"] == 3
    assert skipped["text: query has no text (left out of text, t2i)"] == 1
    assert skipped["text: original has no caption (left out of text, i2t)"] == 3
    assert skipped["i2t: original has no caption (left out of text, i2t)"] == 3
    tasks = result.retrieval.tasks
    assert tasks["image"]["n_queries"] == 15
    assert tasks["t2i"]["n_queries"] == 14
    assert tasks["i2t"]["n_queries"] == 12
    assert tasks["text"]["n_queries"] == 11


def test_command_writes_json_and_prints(eval_run, run_copy, synthetic_manifest, tmp_path, capsys):
    run = run_copy(eval_run)
    out = tmp_path / "result.json"
    code = main(["--run", str(run), "--data", str(synthetic_manifest), "--split", "val",
                 "--json", str(out)])  # fmt: skip
    assert code == 0
    saved = json.loads(out.read_text())
    assert saved["split"] == "val"
    printed = capsys.readouterr().out
    assert "fused" in printed and "phash (image)" in printed and "calibration.json" in printed
    assert "frozen (fused)" in printed and "trained vs baselines" in printed
    # The flag line appears exactly when some task is below frozen, naming those tasks.
    flagged = [line for line in printed.splitlines() if line.startswith("BELOW FROZEN:")]
    assert bool(flagged) == bool(saved["below_frozen"])
    for task in saved["below_frozen"]:
        assert task in flagged[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--run", "{tmp}/missing", "--data", "{manifest}"], "run folder not found"),
        (["--run", "{run}", "--data", "{tmp}/nope.csv"], "manifest not found"),
        (["--run", "{run}", "--data", "{manifest}", "--split", "test"], "--split must be one of"),
        (["--run", "{tmp}", "--data", "{manifest}"], "no trained model here"),
    ],
)
def test_user_mistakes_are_one_line(eval_run, synthetic_manifest, tmp_path, capsys, args, message):
    values = {"tmp": tmp_path, "manifest": synthetic_manifest, "run": eval_run}
    code = main([arg.format(**values) for arg in args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_calibration_part_sets_open_set_thresholds(eval_run, run_copy, synthetic_manifest):
    """With a calib part in split.csv, only its evaluation writes calibration.json, and the
    thresholds there are open-set: fitted on distractor queries by halving the gallery."""
    from artsim.data.manifest.manifest import load_manifest
    from artsim.data.manifest.split import carve_calibration, group_split, write_split
    from artsim.verdicts.grades import OpenSetCalibration

    run = run_copy(eval_run)
    manifest = load_manifest(synthetic_manifest)
    assignment = carve_calibration(group_split(manifest.items, 0.67, seed=0), manifest.items, 0.5)
    assert "calib" in assignment.values() and "val" in assignment.values()
    write_split(assignment, run / "split.csv")

    val = evaluate_run(run, synthetic_manifest, split="val")
    assert val.calibration is None and not (run / "calibration.json").exists()
    result = evaluate_run(run, synthetic_manifest, split="calib")
    assert result.calibration == str(run / "calibration.json")
    saved = json.loads((run / "calibration.json").read_text("utf-8"))
    assert saved["source"].startswith("calib split") and "open_set" in saved["pairs"]
    calibration = OpenSetCalibration.from_json(saved["open_set"])
    assert calibration.about["chose_nothing"] is True
    image = result.verification.open_set["image"]
    # every calib query is a match once and a distractor once
    n_queries = result.retrieval.tasks["image"]["n_queries"]
    assert image["n_matches"] == image["n_distractors"] == n_queries
    assert 0.0 <= image["micro_ap"] <= 1.0
    assert set(image["at_precision_0.9"]) == {"threshold", "recall", "precision"}
    assert image["thresholds"]["0.01"]["false_rate"] <= 0.01
    assert result.baselines.phash["image"].open_set
    counts = result.verification.open_set_confusion["image"]
    assert sum(sum(row.values()) for row in counts.values()) == 2 * n_queries


def test_heldout_queries_get_figures_per_pattern(eval_run, run_copy, tmp_path):
    from artsim.data.families.heldout.derive import derive_heldout_manifest
    from artsim.data.manifest.manifest import load_manifest

    run = run_copy(eval_run)
    originals = load_manifest(make_synthetic_manifest(tmp_path / "src", n_groups=5, seed=3))
    heldout = derive_heldout_manifest(originals, tmp_path / "heldout", per_original=4)
    result = evaluate_run(run, heldout, name="heldout")
    queries = load_manifest(heldout).generated()
    expected = {}
    for item in queries:
        pattern = item.metadata["pattern"].split(":")[0]
        expected[pattern] = expected.get(pattern, 0) + 1
    by_pattern = result.generalisation.by_pattern
    assert {p: figures["image"].n_queries for p, figures in by_pattern.items()} == expected
    for figures in by_pattern.values():
        assert set(figures) == {"image", "text", "fused"}
        for task in ("image", "fused"):
            assert 0.0 <= figures[task].trained <= 1.0 and 0.0 <= figures[task].frozen <= 1.0
    # weighted by queries, the patterns add up to the whole task
    total = sum(f["image"].trained * f["image"].n_queries for f in by_pattern.values())
    assert abs(total / len(queries) - result.retrieval.tasks["image"]["recall@1"]) < 1e-9
    assert "by_pattern" in result.to_dict()
    # the training family's stand-ins carry no pattern: no per-pattern part, in the file neither
    plain = evaluate_run(run, make_synthetic_manifest(tmp_path / "o", 4))
    assert plain.generalisation.by_pattern == {} and "by_pattern" not in plain.to_dict()
