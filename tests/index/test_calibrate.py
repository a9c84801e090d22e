"""Calibration on the user's own collection, and the issue's "done when" check on a tiny model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from artsim.cli.index import main as index_main
from artsim.data.corpora.synthetic import make_synthetic_manifest
from artsim.data.families.heldout.derive import derive_heldout_manifest
from artsim.data.manifest.manifest import Manifest, load_manifest
from artsim.index.build import build_index
from artsim.index.calibrate import calibrate_index
from artsim.index.catalog import ArtIndex
from artsim.index.query import embed_query, pair_background, search_index
from artsim.model.embedder import Embedder
from artsim.verdicts.openset import binomial_interval
from artsim.verdicts.source import load_calibration


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """40 synthetic originals (each its own group), with no derived rows."""
    folder = tmp_path_factory.mktemp("collection")
    manifest = load_manifest(make_synthetic_manifest(folder / "full", n_groups=40, seed=4))
    originals = Manifest(path=folder / "originals.csv", items=manifest.originals())
    return originals


def _half(collection: Manifest, tmp_path: Path, side: int) -> Path:
    from artsim.data.manifest.manifest import write_manifest

    items = [item for k, item in enumerate(collection.items) if k % 2 == side]
    # beside the pictures: a manifest refers to images below its own folder
    return write_manifest(items, collection.path.parent / "full" / f"{tmp_path.name}-{side}.csv")


def _open_half(collection: Manifest, tiny_run: Path, tmp_path: Path):
    """An index of the first half of the collection, open for writing, and its embedder."""
    indexed = _half(collection, tmp_path, 0)
    out = tmp_path / "index"
    build_index(tiny_run, indexed, out).close()
    return indexed, ArtIndex.open(out), Embedder.from_run(tiny_run, cache_dir=False)


def test_done_when_false_derived_share_stays_within_the_calibrated_rate(
    collection, tiny_run, tmp_path, capsys
):
    """Index half a collection, calibrate on it, then query fresh derivatives of BOTH halves:
    the share of queries whose original is not indexed that are called "derived" must be
    consistent with the calibrated rate (its binomial interval reaches down to the rate), and
    the indexed half's recall is reported."""
    indexed = _half(collection, tmp_path, 0)
    out = tmp_path / "index"
    build_index(tiny_run, indexed, out).close()
    index = ArtIndex.open(out)
    embedder = index.load_embedder()
    calibration = calibrate_index(index, embedder, sample=20, seed=1, rate=0.05)
    index.close()

    saved = json.loads((out / "index.json").read_text("utf-8"))["calibration"]
    about = saved["about"]
    # every drawn group gives a match query and, without its own group, a distractor query
    assert about["on"]["match_queries"] == about["on"]["distractor_queries"] == 20
    assert set(saved["tasks"]) <= {"image", "text", "fused"} and "image" in saved["tasks"]
    measured = about["measured"]["image"]["0.05"]
    assert measured["false_rate"] <= 0.05 and 0.0 <= measured["recall"] <= 1.0
    assert about["confusion"]["counts"]  # grades of the calibration queries, by kind
    assert calibration.copy is None or calibration.copy["threshold"] >= calibration.tasks[
        "image"
    ].threshold(0.001)

    # fresh derivatives of both halves (another seed than calibration's)
    derived = load_manifest(
        derive_heldout_manifest(collection, tmp_path / "queries", per_original=1, seed=99)
    )
    indexed_ids = {item.id for item in load_manifest(indexed).items}
    index = ArtIndex.open(out, read_only=True)
    verdicts = {"in": [], "out": []}
    found = []
    try:
        assert (
            load_calibration(index.info.run, index.model_id, index.info.calibration).source
            == "collection"
        )
        for query in derived.generated():
            original = query.id.split("~")[0]
            side = "in" if original in indexed_ids else "out"
            picture = __import__("PIL.Image").Image.open(query.image).convert("RGB")
            first = search_index(index, embedder, image=picture, k=1).results[0]
            verdicts[side].append(first.verdict)
            if side == "in":
                found.append(first.id == original and first.verdict in ("derived", "copy"))
    finally:
        index.close()
    n_out = len(verdicts["out"])
    false = sum(v in ("derived", "copy") for v in verdicts["out"])
    low, _ = binomial_interval(false, n_out)
    assert n_out == 20
    assert low <= 0.05, f"{false} of {n_out} queries with no indexed original called derived"
    print(f"indexed half recall at the 5% rate: {np.mean(found):.2f}")


def test_calibrate_command_and_info(collection, tiny_run, tmp_path, capsys):
    indexed = _half(collection, tmp_path, 1)
    out = tmp_path / "index"
    build_index(tiny_run, indexed, out).close()
    assert index_main(["calibrate", "--index", str(out), "--sample", "8"]) == 0
    said = capsys.readouterr().err
    assert "calibration: 8 derivatives of indexed originals, each searched with its" in said
    assert "one of 8 distractor queries, without its own group" in said
    assert index_main(["info", "--index", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "calibration: 8 derivatives" in printed
    # plain scores, or minus the query's background where that recalled more (both are said)
    assert re.search(r"image( \(score minus the query's score at rank 4\))?: 0\.1%", printed)
    # too small a collection is one clear line
    tiny = _half(Manifest(path=collection.path, items=collection.items[:6]), tmp_path, 0)
    small = tmp_path / "small"
    build_index(tiny_run, tiny, small).close()
    assert index_main(["calibrate", "--index", str(small), "--sample", "8"]) != 0
    assert "at least 4 groups" in capsys.readouterr().err


@pytest.mark.parametrize("normalised_wins", [True, False])
def test_search_api_gives_graded_verdicts_after_calibration(
    collection, tiny_run, tmp_path, monkeypatch, normalised_wins
):
    import artsim.index.calibration_fit as calibration_fit

    # the variant with the higher calibration recall is kept: make one of them win
    monkeypatch.setattr(
        calibration_fit, "_recall_at", lambda c, rate: float(c.normalised == normalised_wins)
    )
    indexed, index, embedder = _open_half(collection, tiny_run, tmp_path)
    calibrate_index(index, embedder, sample=12)
    item = load_manifest(indexed).items[0]
    picture = __import__("PIL.Image").Image.open(item.image).convert("RGB")
    response = search_index(index, embedder, image=picture, text=item.text, k=3).to_json()
    # normalised: image searches decide on score minus the query's 4th-best score, and /score
    # weighs A the same way; plain: no background anywhere
    calibration = load_calibration(index.info.run, index.model_id, index.info.calibration)
    about = index.info.calibration["about"]["background"]["image"]
    assert about["normalised"] == normalised_wins
    alone = search_index(index, embedder, image=picture, k=5)
    query = embed_query(embedder, picture, None)
    background = pair_background(index, calibration, query, "image")
    threshold = calibration.open_set.tasks["image"].threshold(0.01)
    if normalised_wins:
        assert calibration.to_json()["background"]["image"] == {"rank": 4, "weight": 1.0}
        assert background == pytest.approx(alone.results[3].score, abs=1e-5)
        assert alone.derived_threshold == pytest.approx(threshold + background, abs=1e-5)
    else:
        assert "background" not in calibration.to_json() and background is None
        assert alone.derived_threshold == pytest.approx(threshold)
    index.close()
    assert response["calibration"]["source"] == "collection"
    first = response["results"][0]
    # the original itself, searched with its own picture and caption: nothing closer
    assert first["id"] == item.id and first["verdict"] in ("copy", "derived")
    assert 0.0 < first["probability"] < 1.0 and first["decided_by"] in ("image", "fused")


def test_build_keeps_an_index_too_small_to_calibrate(collection, tiny_run, tmp_path, capsys):
    few = _half(Manifest(path=collection.path, items=collection.items[:6]), tmp_path, 1)
    out = tmp_path / "few"
    args = ["build", "--run", str(tiny_run), "--data", str(few), "--out", str(out)]
    assert index_main(args) == 0
    err = capsys.readouterr().err
    assert "verdicts not calibrated" in err and "at least 4 groups" in err
    assert ArtIndex.open(out, read_only=True).count() == 3


def test_thresholds_bounded_with_confidence_are_never_below_the_average_ones(
    collection, tiny_run, tmp_path
):
    _, index, embedder = _open_half(collection, tiny_run, tmp_path)
    plain = calibrate_index(index, embedder, sample=20, seed=1)
    bounded = calibrate_index(index, embedder, sample=20, seed=1, confidence=0.95)
    index.close()
    saved = json.loads((index.path / "index.json").read_text("utf-8"))["calibration"]["about"]
    assert saved["on"]["confidence"] == 0.95 and "95% confidence" in saved["how"]
    for rate in (0.05, 0.25):
        assert bounded.tasks["image"].threshold(rate) >= plain.tasks["image"].threshold(rate)
    # 20 distractors cannot bound a 5% rate even with none through: above all of them
    measured = saved["measured"]["image"]["0.05"]
    assert measured["false_rate"] == 0.0


def test_look_alike_originals_are_listed(collection, tiny_run, tmp_path, capsys, monkeypatch):
    """Two groups holding the same picture (a collection with one drawing under two names) are
    listed as look-alikes, first, at the highest score."""
    import shutil

    import artsim.index.calibration_fit as calibration_fit

    # plain scores: the tiny tower puts every synthetic original within 0.2 of the others, so a
    # query's background (its 4th-best score) is near 0.9 and decides more than the pair itself
    monkeypatch.setattr(calibration_fit, "NORMALISED_TASKS", ())

    from artsim.data.manifest.items import Item
    from artsim.data.manifest.manifest import write_manifest

    items = list(collection.items[:12])
    twin = items[0]
    copy_path = Path(twin.image).with_name("twin-copy.png")
    shutil.copyfile(twin.image, copy_path)
    items.append(Item(id="twin-copy", group="twin-copy", role="original", image=copy_path))
    data = write_manifest(items, collection.path.parent / "full" / f"{tmp_path.name}-twins.csv")
    out = tmp_path / "index"
    build_index(tiny_run, data, out).close()
    assert index_main(["calibrate", "--index", str(out), "--sample", "13"]) == 0
    said = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    look = json.loads((out / "index.json").read_text("utf-8"))["calibration"]["about"]
    look = look["look_alikes"]
    assert look["checked"] == 13 and look["found"] >= 2
    first_two = {(pair["original"], pair["look_alike"]) for pair in look["pairs"][:2]}
    assert first_two == {(twin.id, "twin-copy"), ("twin-copy", twin.id)}
    assert look["pairs"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert "look-alikes:" in said and "put each work in one group" in said
    index = ArtIndex.open(out, read_only=True)
    try:
        picture = __import__("PIL.Image").Image.open(twin.image).convert("RGB")
        response = search_index(index, index.load_embedder(), image=picture, k=2).to_json()
    finally:
        index.close()
    assert response["calibration"]["look_alikes"]["found"] == look["found"]  # the page says it


def test_search_cli_states_the_threshold_of_this_query_in_score_units(
    collection, tiny_run, tmp_path, monkeypatch, capsys
):
    """A background-normalised image task: the line under ``artsim search`` gives the score a
    result of this query needs (calibrated threshold + the query's 4th-best score), not the
    calibrated threshold, which is on score minus background."""
    import artsim.index.calibration_fit as calibration_fit
    from artsim.cli.search import search_main

    monkeypatch.setattr(calibration_fit, "_recall_at", lambda c, rate: float(c.normalised))
    indexed, index, embedder = _open_half(collection, tiny_run, tmp_path)
    calibrate_index(index, embedder, sample=12)
    item = load_manifest(indexed).items[1]
    picture = __import__("PIL.Image").Image.open(item.image).convert("RGB")
    response = search_index(index, embedder, image=picture, k=5)
    plain = response.calibration.open_set.tasks["image"].threshold(0.01)
    background = response.results[3].score
    index.close()
    assert response.calibration.background_rank("image") == 4 and abs(background) > 0.01
    assert response.derived_threshold == pytest.approx(plain + background, abs=1e-5)

    capsys.readouterr()
    assert search_main(["--index", str(index.path), "--image", str(item.image), "-k", "2"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    said = re.search(r"derived when the image score is >= (-?[0-9.]+)", printed)
    assert said, printed
    assert float(said.group(1)) == pytest.approx(response.derived_threshold, abs=1e-3)
    assert f">= {plain:.3f} " not in printed


def test_a_collection_smaller_than_the_sample_gets_more_derivatives_per_original(
    collection, tiny_run, tmp_path
):
    """6 originals and a sample of 12: two derivatives each (two patterns), so 12 match and
    12 distractor queries instead of 6."""
    few = _half(Manifest(path=collection.path, items=collection.items[:12]), tmp_path, 0)
    out = tmp_path / "index"
    build_index(tiny_run, few, out).close()
    index = ArtIndex.open(out)
    try:
        calibrate_index(index, index.load_embedder(), sample=12)
        about = index.info.calibration["about"]
        on = about["on"]
    finally:
        index.close()
    assert on["originals_in_index"] == on["groups_drawn"] == 6
    assert on["derivatives_per_original"] == 2
    assert on["match_queries"] == on["distractor_queries"] == 12
    # the two derivatives of one original are correlated: the interval counts 6 groups
    measured = about["measured"]["image"]["0.25"]
    low, high = binomial_interval(round(measured["false_rate"] * 6), 6)
    assert measured["false_rate_interval"] == [low, high]


def test_a_model_with_a_copy_descriptor_grades_copies_on_its_copy_score(
    collection, synthetic_manifest, tmp_path
):
    from artsim.cli.train import main as train_main

    run = tmp_path / "paired-run"
    args = ["--data", str(synthetic_manifest), "--out", str(run), "--image-tower", "tiny+tiny-copy"]
    args += ["--text-tower", "tiny", "--cache-dir", str(tmp_path / "cache"), "--max-epochs", "1"]
    assert train_main([*args, "--blend", "frozen", "--no-progress"]) == 0
    indexed = _half(collection, tmp_path, 0)
    build_index(run, indexed, tmp_path / "index").close()
    index = ArtIndex.open(tmp_path / "index")
    embedder = Embedder.from_run(run, cache_dir=False)
    calibration = calibrate_index(index, embedder, sample=12)
    assert calibration.copy is not None and calibration.copy["on_copy_score"] == 1.0
    assert calibration.copy_score == "copy"
    item = load_manifest(indexed).items[0]
    picture = __import__("PIL.Image").Image.open(item.image).convert("RGB")
    first = search_index(index, embedder, image=picture, k=3).results[0]
    index.close()
    # the original's own picture: copy cosine 1, over any calibrated copy threshold
    assert first.id == item.id
    assert first.scores["copy"] == pytest.approx(1.0, abs=1e-4)
    assert first.verdict == "copy" and first.decided_by == "copy"
    assert first.threshold == pytest.approx(calibration.copy["threshold"])
