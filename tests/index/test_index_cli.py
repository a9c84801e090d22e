"""``artsim index build/add/remove``, ``artsim search`` and ``artsim score`` in-process."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artsim.cli.index import main
from artsim.cli.search import score_main, search_main
from artsim.errors import ModelMismatchError
from artsim.index.catalog import ArtIndex
from artsim.index.query import search_index
from artsim.model.embedder import Embedder
from artsim.verdicts.source import load_calibration


def originals(manifest: Path) -> list[dict]:
    with manifest.open(encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["role"] == "original"]


def search_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert search_main(["--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_build_records_the_model_and_every_original(
    built_index: Path, synthetic_manifest, tiny_run
):
    index = ArtIndex.open(built_index, read_only=True)
    assert index.model_id == Embedder.from_run(tiny_run).model_id
    assert index.info.run == str(tiny_run.resolve())
    wanted = {row["id"] for row in originals(synthetic_manifest)}
    assert set(index.store.ids()) == wanted
    record = index.store.get(["g000-orig"], with_thumbnails=True)["g000-orig"]
    assert record.thumbnail[:2] == b"\xff\xd8"  # a JPEG kept in the index
    assert record.caption and record.title and record.image_path.endswith("g000_orig.png")
    index.close()


def test_each_original_image_finds_itself_first(built_index: Path, synthetic_manifest, capsys):
    for row in originals(synthetic_manifest):
        image = synthetic_manifest.parent / row["image"]
        data = search_json(capsys, "--index", str(built_index), "--image", str(image), "-k", "3")
        assert data["task"] == "image"
        first = data["results"][0]
        assert first["id"] == row["id"] and first["group"] == row["group"]
        assert first["scores"]["image"] == pytest.approx(1.0, abs=1e-4)
        assert {"image", "fused"} <= set(first["scores"])
        assert first["verdict"] == "uncalibrated" and first["threshold"] is None
        assert data["calibration"]["status"] == "uncalibrated"


def test_perturbed_copy_and_text_queries(built_index, synthetic_manifest, tmp_path, capsys):
    row = originals(synthetic_manifest)[2]
    picture = np.asarray(Image.open(synthetic_manifest.parent / row["image"]).convert("RGB"))
    noisy = np.clip(
        picture.astype(int) + np.random.default_rng(0).integers(-3, 4, picture.shape), 0, 255
    )
    copy = tmp_path / "copy.png"
    Image.fromarray(noisy.astype(np.uint8)).save(copy)
    data = search_json(
        capsys, "--index", str(built_index), "--image", str(copy), "--text", row["text"]
    )
    assert data["task"] == "fused" and data["results"][0]["id"] == row["id"]
    assert set(data["results"][0]["scores"]) == {"image", "text", "i2t", "t2i", "fused"}
    data = search_json(capsys, "--index", str(built_index), "--text", row["text"], "-k", "2")
    assert data["task"] == "text" and data["results"][0]["id"] == row["id"]
    assert len(data["results"]) == 2
    assert search_main(["--index", str(built_index), "--text", row["text"]]) == 0
    assert row["id"] in capsys.readouterr().out  # the table for people


def test_verdicts_come_from_calibration_json(built_index, synthetic_manifest, tmp_path, capsys):
    index = ArtIndex.open(built_index, read_only=True)
    run = Path(index.info.run)
    row = originals(synthetic_manifest)[0]
    image = Image.open(synthetic_manifest.parent / row["image"])
    embedder = Embedder.from_run(run, cache_dir=False)
    from artsim.verdicts.grades import OpenSetCalibration, TaskCalibration

    image_task = TaskCalibration(
        thresholds={"0.01": {"threshold": 0.999}, "0.25": {"threshold": -1.0}},
        probability={"x": [0.5, 1.0], "y": [0.1, 0.9]},
        n_matches=10,
        n_distractors=10,
    )
    open_set = OpenSetCalibration(index.model_id, 0.01, {"image": image_task})
    calibration = {"model_id": index.model_id, "open_set": open_set.to_json()}
    path = run / "calibration.json"
    try:
        path.write_text(json.dumps(calibration))
        response = search_index(index, embedder, image=image, k=8)
        first = response.results[0]
        assert first.verdict == "derived" and first.threshold == 0.999
        assert first.decided_by == "image" and first.probability == 0.9
        # below the derived threshold, above the (here very low) related one
        assert {r.verdict for r in response.results[1:]} == {"related"}
        # a task without a threshold is uncalibrated, never given an invented one
        text_response = search_index(index, embedder, text=row["text"], k=2)
        assert {r.verdict for r in text_response.results} == {"uncalibrated"}
        # another model's calibration does not apply
        other = OpenSetCalibration("someone-else", 0.01, {"image": image_task})
        path.write_text(json.dumps({"open_set": other.to_json()}))
        assert load_calibration(run, index.model_id).status == "uncalibrated"
        assert "someone-else" in load_calibration(run, index.model_id).note
        # a calibration file of the old per-pair kind gives no verdict, and says why
        path.write_text(json.dumps({"model_id": index.model_id, "thresholds": {}}))
        assert "per-pair" in load_calibration(run, index.model_id).note
    finally:
        path.unlink(missing_ok=True)
        index.close()


def test_add_and_remove_incrementally(index_copy: Path, synthetic_manifest, tmp_copy, capsys):
    # a second manifest beside a copy of the pictures, whose originals have new ids
    copied = tmp_copy(synthetic_manifest)
    rows = originals(copied)[:2]
    extra = copied.parent / "extra.csv"
    with extra.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "id": "new-" + row["id"]})
    before = ArtIndex.open(index_copy, read_only=True).count()
    assert main(["add", "--index", str(index_copy), "--data", str(extra)]) == 0
    assert ArtIndex.open(index_copy, read_only=True).count() == before + 2
    # adding again replaces instead of duplicating
    assert main(["add", "--index", str(index_copy), "--data", str(extra)]) == 0
    assert ArtIndex.open(index_copy, read_only=True).count() == before + 2
    assert main(["remove", "--index", str(index_copy), "--ids", "new-g000-orig,unknown"]) == 0
    assert "unknown" in capsys.readouterr().err
    index = ArtIndex.open(index_copy, read_only=True)
    assert index.count() == before + 1 and "new-g000-orig" not in index.store.ids()
    assert main(["remove", "--index", str(index_copy), "--ids", "unknown"]) == 2
    assert main(["info", "--index", str(index_copy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == before + 1


def test_build_refuses_to_overwrite_unless_forced(index_copy, synthetic_manifest, tiny_run, capsys):
    args = [
        "build",
        "--run",
        str(tiny_run),
        "--data",
        str(synthetic_manifest),
        "--out",
        str(index_copy),
    ]
    assert main(args) == 2
    assert "already holds an index" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert ArtIndex.open(index_copy).count() == len(originals(synthetic_manifest))
    assert not [p for p in index_copy.parent.iterdir() if p.name.startswith(".")]


def test_index_refuses_another_model(index_copy, tmp_path, synthetic_manifest, make_run, capsys):
    other_run = make_run(tmp_path / "other-run", seed=1)
    index = ArtIndex.open(index_copy, read_only=True)
    with pytest.raises(ModelMismatchError, match="built with model"):
        index.load_embedder(other_run)
    image = synthetic_manifest.parent / originals(synthetic_manifest)[0]["image"]
    code = search_main(["--index", str(index_copy), "--image", str(image), "--run", str(other_run)])
    err = capsys.readouterr().err
    assert code == 2 and "another space" in err and "Traceback" not in err


def test_user_mistakes_are_one_line(built_index: Path, tmp_path: Path, capsys):
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    cases = [
        (["--index", str(built_index)], "give --image"),
        (["--index", str(tmp_path / "missing"), "--text", "x"], "index not found"),
        (["--index", str(built_index), "--image", str(not_image)], "not an image"),
    ]
    for args, message in cases:
        assert search_main(args) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert (
        main(
            [
                "build",
                "--run",
                str(tmp_path),
                "--data",
                str(tmp_path / "m.csv"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "manifest not found" in capsys.readouterr().err


def test_score_pair(synthetic_manifest: Path, tiny_run: Path, capsys):
    folder = synthetic_manifest.parent / "images"
    capsys.readouterr()
    code = score_main(
        [
            str(folder / "g000_orig.png"),
            str(folder / "g000_gen0.png"),
            "--run",
            str(tiny_run),
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["task"] == "image" and set(data["scores"]) == {"image", "fused"}
    assert data["verdict"] == "uncalibrated"
    code = score_main(
        [
            str(folder / "g000_orig.png"),
            str(folder / "g000_orig.png"),
            "--run",
            str(tiny_run),
            "--text-a",
            "a red fox",
            "--text-b",
            "a red fox",
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["task"] == "fused"
    assert data["scores"]["fused"] == pytest.approx(1.0, abs=1e-4)
    assert set(data["scores"]) == {"image", "text", "i2t", "t2i", "fused"}


def test_the_score_table_names_the_copy_and_content_scores(
    synthetic_manifest: Path, tmp_path: Path, capsys
):
    """A model with a copy descriptor scores two pictures also on ``copy`` and ``content``:
    the table has a row for each (it once stopped at them with a KeyError)."""
    import torch

    from artsim.model.heads import ArtSimModel, ModelConfig, save_model

    torch.manual_seed(0)
    config = ModelConfig(
        image_tower="tiny+tiny-copy",
        text_tower="tiny",
        image_feature_dim=64,
        copy_feature_dim=32,
        text_feature_dim=32,
        embed_dim=16,
        image_blend=0.5,
        copy_weight=0.5,
    )
    save_model(ArtSimModel(config), tmp_path / "run")
    folder = synthetic_manifest.parent / "images"
    pair = [str(folder / "g000_gen0.png"), str(folder / "g000_orig.png")]
    capsys.readouterr()
    assert score_main([*pair, "--run", str(tmp_path / "run"), "--json"]) == 0
    assert {"copy", "content"} <= set(json.loads(capsys.readouterr().out)["scores"])
    assert score_main([*pair, "--run", str(tmp_path / "run")]) == 0
    table = capsys.readouterr().out
    assert "copy (copy descriptor: the same pixels)" in table
    assert "content (what is drawn)" in table


def test_score_line_gives_the_derived_threshold_whatever_decided(
    synthetic_manifest: Path, tiny_run: Path, tmp_path, capsys
):
    """A pair graded 'copy' reports the copy threshold as its own; the line under it says when
    a pair is called derived, so it must give the derived threshold (0.6 here), not 0.95."""
    import shutil

    from artsim.verdicts.grades import OpenSetCalibration, fit_task

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    embedder = Embedder.from_run(run, cache_dir=False)
    image = fit_task(np.linspace(0.5, 1.0, 100), np.ones(100, bool), np.linspace(0.0, 0.6, 200))
    calibration = OpenSetCalibration(
        embedder.model_id, 0.01, {"image": image}, {"threshold": 0.95, "recall": 0.9, "n": 50.0}
    )
    (run / "calibration.json").write_text(json.dumps({"open_set": calibration.to_json()}))
    derived = image.threshold(0.01)
    folder = synthetic_manifest.parent / "images"
    picture = str(folder / "g000_orig.png")
    capsys.readouterr()
    assert score_main([picture, picture, "--run", str(run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["verdict"], data["threshold"]) == ("copy", 0.95)
    assert score_main([picture, picture, "--run", str(run)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert f"derived when the image score is >= {derived:.3f} " in printed, printed
    assert ">= 0.950" not in printed


def test_info_and_remove_need_no_model_even_when_its_run_folder_is_gone(index_copy, capsys):
    """`index info` and `index remove` go through artsim.api without loading the model: they
    work on an index whose run folder has moved; what embeds says it needs the model."""
    from artsim.api import open_index
    from artsim.errors import UserError

    info = json.loads((index_copy / "index.json").read_text())
    info["run"] = str(index_copy.parent / "moved-away")
    (index_copy / "index.json").write_text(json.dumps(info))
    with open_index(index_copy, read_only=True, with_model=False) as index:
        first = index.describe()
        some_id = sorted(index.catalog.store.ids())[0]
        with pytest.raises(UserError, match="opened without its model"):
            index.search(text="a red circle")
    assert main(["info", "--index", str(index_copy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == first["count"]
    assert main(["remove", "--index", str(index_copy), "--ids", some_id]) == 0
    assert f"removed 1; the index holds {first['count'] - 1}" in capsys.readouterr().err
    with pytest.raises(UserError):  # with its model, the missing run folder is the error
        open_index(index_copy)
