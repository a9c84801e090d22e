"""A run chooses its blend of trained and frozen scores on leave-one-source-out folds."""

from __future__ import annotations

import csv
import json

import numpy as np

from artsim.cli.train import main
from artsim.eval.evaluate import evaluate_run
from artsim.model.embedder import Embedder
from artsim.model.heads import load_model
from artsim.training.loso import fold_sources
from artsim.training.select import KEEP_CROSS


def _two_sources(manifest, tmp_copy, sources=("pkg-a", "pkg-b")):
    """The synthetic corpus with its groups' originals spread over packages (``sources``, in
    equal runs of groups)."""
    copied = tmp_copy(manifest)
    rows = list(csv.DictReader(copied.open(encoding="utf-8")))
    groups = sorted({row["group"] for row in rows})
    package = {g: sources[k * len(sources) // len(groups)] for k, g in enumerate(groups)}
    fields = list(rows[0]) + (["package"] if "package" not in rows[0] else [])
    for row in rows:
        if row["role"] == "original":
            row["package"] = package[row["group"]]
    with copied.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return copied


def test_a_two_source_run_chooses_its_blend_on_folds_and_every_user_applies_it(
    training_manifest, feature_cache, tiny_args, tmp_path, tmp_copy
):
    manifest = _two_sources(training_manifest, tmp_copy)
    out = tmp_path / "run"
    assert (
        main(tiny_args(manifest, out, feature_cache, "--max-epochs", "3", "--whiten-dim", "8")) == 0
    )
    model, card, _ = load_model(out)
    blend = card["blend"]
    assert blend["mode"] == "loso"
    assert blend["folds"] == ["without pkg-a", "without pkg-b"]
    # the chosen weight is the best of the grid on the folds' mean, never below frozen on a fold
    scores = blend["scores"]["image"]
    frozen = scores["0"]
    chosen = scores[f"{blend['image_blend']:g}"]
    assert all(c >= f for c, f in zip(chosen, frozen, strict=True))
    assert np.mean(chosen) == max(
        np.mean(v) for v in scores.values() if all(a >= b for a, b in zip(v, frozen, strict=True))
    )
    assert model.config.image_blend == blend["image_blend"]
    assert model.config.whiten_dim == 8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["blend"]["image_blend"] == blend["image_blend"]
    embedder = Embedder.from_run(out, cache_dir=feature_cache, device="cpu")
    assert embedder.dim == model.output_dim
    result = evaluate_run(out, manifest, split="val", cache_dir=feature_cache)
    assert result.retrieval.tasks["image"]["n_queries"] > 0


def test_blend_trained_keeps_the_heads_alone_and_frozen_the_towers_alone(
    training_manifest, feature_cache, tiny_args, tmp_path
):
    trained, frozen = tmp_path / "trained", tmp_path / "frozen"
    assert (
        main(
            tiny_args(
                training_manifest, trained, feature_cache, "--max-epochs", "2", "--blend", "trained"
            )
        )
        == 0
    )
    assert (
        main(
            tiny_args(
                training_manifest,
                frozen,
                feature_cache,
                "--max-epochs",
                "2",
                "--blend",
                "frozen",
                "--whiten-dim",
                "0",
            )
        )
        == 0
    )
    model, _card, _ = load_model(trained)
    assert not model.config.blended and model.output_dim == model.config.embed_dim
    model, _card, _ = load_model(frozen)
    assert (model.config.image_blend, model.config.text_blend) == (0.0, 0.0)
    # frozen, unwhitened: the evaluation's image scores are the frozen baseline's exactly
    result = evaluate_run(frozen, training_manifest, split="val", cache_dir=feature_cache)
    for task in ("image", "text"):
        assert result.retrieval.figure(task) == result.baselines.figure("frozen", task)


def test_a_one_source_run_keeps_the_frozen_towers_and_says_why(
    training_manifest, feature_cache, tiny_args, tmp_path
):
    out = tmp_path / "run"
    assert main(tiny_args(training_manifest, out, feature_cache, "--max-epochs", "2")) == 0
    _, card, _ = load_model(out)
    assert card["blend"]["image_blend"] == KEEP_CROSS == card["config"]["image_blend"]
    assert "fewer than two sources" in card["blend"]["note"]
    # the fused weight is chosen on the validation groups: the best recall there (ties: nearest
    # 0.5), not a fixed 0.5
    scores = {float(w): v[0] for w, v in card["blend"]["scores"]["fused"].items()}
    best = max(scores, key=lambda w: (scores[w], -abs(w - 0.5)))
    assert card["config"]["fused_image_weight"] == card["blend"]["fused_image_weight"] == best


def test_sources_are_grouped_into_folds_of_similar_size():
    counts = {"a": 50, "b": 40, "c": 30, "d": 20, "e": 10}
    # largest first into the lightest fold: a | b | c, then d -> c's fold (30), e -> b's (40)
    assert fold_sources(counts, 3) == [("a",), ("b", "e"), ("c", "d")]
    assert sorted(s for fold in fold_sources(counts, 2) for s in fold) == sorted(counts)
    assert fold_sources(counts, 0) == [("a",), ("b",), ("c",), ("d",), ("e",)]
    assert fold_sources(counts, 5) == fold_sources(counts, 9) == fold_sources(counts, 0)


def test_a_run_with_fewer_folds_than_sources_leaves_sources_out_together(
    training_manifest, feature_cache, tiny_args, tmp_path, tmp_copy
):
    manifest = _two_sources(training_manifest, tmp_copy, ("pkg-a", "pkg-b", "pkg-c"))
    out = tmp_path / "run"
    args = tiny_args(manifest, out, feature_cache, "--max-epochs", "2", "--loso-folds", "2")
    assert main(args) == 0
    _, card, _ = load_model(out)
    folds = card["blend"]["folds"]
    assert len(folds) == 2
    left_out = sorted(name for fold in folds for name in fold.removeprefix("without ").split(" + "))
    assert left_out == ["pkg-a", "pkg-b", "pkg-c"]
    assert json.loads((out / "summary.json").read_text())["config"]["loso_folds"] == 2


def test_one_fold_is_refused_in_one_line(training_manifest, tiny_args, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tiny_args(training_manifest, out, tmp_path / "cache", "--loso-folds", "1")) != 0
    assert "--loso-folds must be 0 (one fold per source) or at least 2, got 1" in (
        capsys.readouterr().err
    )


def test_the_text_cap_given_on_the_command_line_reaches_the_choice(
    training_manifest, feature_cache, tiny_args, tmp_path, tmp_copy
):
    manifest = _two_sources(training_manifest, tmp_copy)
    out = tmp_path / "run"
    args = tiny_args(manifest, out, feature_cache, "--max-epochs", "2", "--text-blend-max", "0")
    assert main(args) == 0
    _, card, _ = load_model(out)
    assert card["blend"]["text_blend_max"] == 0.0
    assert card["blend"]["text_blend"] == 0.0


def test_a_text_cap_out_of_range_is_refused_naming_the_option(
    training_manifest, tiny_args, tmp_path, capsys
):
    args = tiny_args(training_manifest, tmp_path / "run", tmp_path / "c", "--text-blend-max", "2")
    assert main(args) != 0
    assert "--text-blend-max must be between 0 and 1, got 2.0" in capsys.readouterr().err
