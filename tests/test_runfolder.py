"""The run folder's one reader/writer: formats that training, evaluation and reports share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from artsim import runfolder
from artsim.errors import DataError


def test_metrics_skip_blank_lines_and_stop_at_a_torn_one(tmp_path: Path):
    path = runfolder.metrics_path(tmp_path)
    assert runfolder.read_metrics(tmp_path) == []  # no file yet
    runfolder.write_metrics(path, [{"epoch": 1}, {"epoch": 2}])
    runfolder.append_metrics_row(path, {"epoch": 3})
    with path.open("a", encoding="utf-8") as handle:
        handle.write('\n{"epoch": 4}\n{"epoch": 5, "val/lo')  # a blank line, then a crash mid-write
    assert [row["epoch"] for row in runfolder.read_metrics(tmp_path)] == [1, 2, 3, 4]
    assert runfolder.read_metrics(path) == runfolder.read_metrics(tmp_path)


def test_split_rows_and_lenient_ids(tmp_path: Path):
    runfolder.write_split({"a": "train", "b": "val"}, tmp_path / runfolder.SPLIT_FILE)
    assert runfolder.read_split_ids(tmp_path) == {"a": "train", "b": "val"}
    (tmp_path / "extra.csv").write_text(" id , split \n\nc,val\n", encoding="utf-8")
    assert runfolder.read_split_rows(tmp_path / "extra.csv") == [
        (1, "c", "val")
    ]  # csv skips blanks
    with pytest.raises(DataError, match="id,split"):
        (tmp_path / "bad.csv").write_text("name,side\nx,val\n", encoding="utf-8")
        runfolder.read_split_rows(tmp_path / "bad.csv")
    with pytest.raises(DataError, match="unknown split 'test'"):
        runfolder.write_split({"a": "test"}, tmp_path / "other.csv")


def test_calibration_file_round_trip(tmp_path: Path):
    assert runfolder.read_calibration(tmp_path) == {}
    runfolder.write_calibration(tmp_path, {"model_id": "m1", "open_set": {"rate": 0.01}})
    assert runfolder.read_calibration(tmp_path) == {"model_id": "m1", "open_set": {"rate": 0.01}}
    (tmp_path / runfolder.CALIBRATION_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(Exception, match="not valid JSON"):
        runfolder.read_calibration(tmp_path)


def test_evaluation_files_and_strict_json(tmp_path: Path):
    result = {"name": "val", "tasks": {}, "baselines": {}, "score": float("nan")}
    runfolder.write_evaluation(tmp_path, "val", result, {"items": {}}, {"image": {}})
    on_disk = json.loads(runfolder.evaluation_path(tmp_path, "val").read_text(encoding="utf-8"))
    assert on_disk["score"] is None  # NaN is not JSON: written as null
    assert runfolder.read_evaluation(tmp_path, "val", "top5") == {"items": {}}
    assert runfolder.read_evaluation(tmp_path, "nope") == {}
    assert [r["name"] for r in runfolder.read_evaluations(tmp_path)] == ["val"]


def test_config_and_summary(tmp_path: Path):
    assert runfolder.read_config(tmp_path) == {} and runfolder.read_summary(tmp_path) == {}
    runfolder.write_config({"data": "m.csv", "seed": 3}, tmp_path)
    runfolder.write_summary(tmp_path, {"epochs_completed": 2})
    assert runfolder.read_config(tmp_path) == {"data": "m.csv", "seed": 3}
    assert runfolder.training_manifest(tmp_path) == "m.csv"
    (tmp_path / runfolder.SUMMARY_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(Exception, match="not valid JSON"):
        runfolder.read_summary(tmp_path)


def test_training_defaults_for_the_heads_are_the_model_config_defaults():
    import dataclasses

    from artsim.model.heads import ModelConfig
    from artsim.training.config import TrainConfig

    model = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    train = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for name in ("embed_dim", "hidden_dim", "dropout"):
        assert train[name] == model[name], name


def test_the_train_command_table_shows_exactly_the_seed_document_figures():
    from artsim.cli.train import SEED_DOCUMENT_TABLE_ROWS

    shown = [
        key
        for _, keys in SEED_DOCUMENT_TABLE_ROWS
        for key in (keys if isinstance(keys, tuple) else (keys,))
    ]
    assert shown == list(runfolder.SEED_DOCUMENT_FIGURES)


def test_a_metrics_row_that_does_not_fit_is_cut_off_whole(small_disk, filled):
    from artsim.runfolder import append_metrics_row, read_metrics, replacing

    disk = small_disk(256)
    path = disk / "metrics.jsonl"
    append_metrics_row(path, {"epoch": 1, "val/loss": 0.5})
    before = path.read_bytes()
    filled(disk, leave=0)
    with pytest.raises(OSError):
        append_metrics_row(path, {"epoch": 2, "note": "x" * 64_000})
    assert path.read_bytes() == before and len(read_metrics(path)) == 1
    with pytest.raises(OSError), replacing(disk / "summary.json") as temporary:
        temporary.write_text("y" * 64_000)
    assert sorted(p.name for p in disk.iterdir()) == [".filler", "metrics.jsonl"]
