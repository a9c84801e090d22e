"""A run with a paired image tower (content + copy descriptor) chooses the copy descriptor's share
on the folds, and every user of the model embeds and scores through both parts."""

from __future__ import annotations

import numpy as np
import torch

from artsim.cli.train import main
from artsim.eval.evaluate import evaluate_run
from artsim.model.embedder import Embedder
from artsim.model.features import FeatureCache, compute_image_features
from artsim.model.heads import load_model
from artsim.model.towers import create_image_tower
from artsim.training.select import COPY_GRID

from .test_blend_run import _two_sources


def _paired_args(tiny_args, manifest, out, cache, *extra):
    args = tiny_args(manifest, out, cache, "--max-epochs", "2", *extra)
    args[args.index("--image-tower") + 1] = "tiny+tiny-copy"
    return args


def test_a_paired_run_chooses_the_copy_share_and_embeds_with_both_parts(
    training_manifest, feature_cache, tiny_args, tmp_path, tmp_copy
):
    manifest = _two_sources(training_manifest, tmp_copy)
    out = tmp_path / "run"
    assert main(_paired_args(tiny_args, manifest, out, feature_cache, "--whiten-dim", "8")) == 0
    model, card, _ = load_model(out)
    config = model.config
    assert config.image_tower == "tiny+tiny-copy"
    assert config.copy_feature_dim == 32 and config.image_feature_dim == 64
    # the copy part is whitened apart from the content part: at most its own dimension and one
    # less than the training originals (18 of 19 here), as the content part's
    assert config.copy_whiten_dim == 18 and config.whiten_dim == 8
    blend = card["blend"]
    assert blend["copy_weight"] == config.copy_weight
    assert config.copy_weight in COPY_GRID
    scores = blend["copy_scores"]
    assert set(scores) == {f"{w:g}" for w in COPY_GRID}
    # the head reads the content features only
    assert model.image_head.linear.in_features == 32

    embedder = Embedder.from_run(out, cache_dir=feature_cache, device="cpu")
    assert embedder.dim == model.output_dim
    slices = model.part_slices()
    assert slices["copy"].stop - slices["copy"].start == 18
    assert slices["content"].stop - slices["content"].start == 8
    result = evaluate_run(out, manifest, split="val", cache_dir=feature_cache)
    assert result.retrieval.tasks["image"]["n_queries"] > 0


def test_the_frozen_part_scores_as_the_weighted_cosines_of_its_two_descriptors(
    training_manifest, feature_cache, tiny_args, tmp_path
):
    out = tmp_path / "frozen"
    assert (
        main(_paired_args(tiny_args, training_manifest, out, feature_cache, "--blend", "frozen"))
        == 0
    )
    model, _, _ = load_model(out)
    config = model.config
    paths = sorted(str(p) for p in training_manifest.parent.rglob("*.png"))[:6]
    tower = create_image_tower("tiny+tiny-copy")
    features = compute_image_features(tower, paths, FeatureCache(feature_cache, tower.version))
    with torch.no_grad():
        vectors = model.infer_image(torch.from_numpy(features)).numpy()
        frozen = model.frozen_image(torch.from_numpy(features)).numpy()
    slices = model.part_slices()
    content, copy = frozen[:, : model.frozen_content_dim], frozen[:, model.frozen_content_dim :]
    c = config.copy_weight
    # each part is unit length before its weight: the dot product is the weighted cosine sum
    np.testing.assert_allclose(np.linalg.norm(content, axis=1), np.sqrt(1 - c), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(copy, axis=1), np.sqrt(c), atol=1e-5)
    copy_part = vectors[:, slices["copy"]]
    a = config.image_blend
    np.testing.assert_allclose(np.linalg.norm(copy_part, axis=1), np.sqrt((1 - a) * c), atol=1e-5)
    # the copy part is the copy tower's features (whitened): the same picture scores 1 on it
    copy_unit = copy_part / np.linalg.norm(copy_part, axis=1, keepdims=True)
    np.testing.assert_allclose(np.diag(copy_unit @ copy_unit.T), 1.0, atol=1e-5)


def test_a_paired_tower_keeps_each_part_in_its_own_cache(tmp_path, synthetic_manifest):
    paths = sorted(str(p) for p in synthetic_manifest.parent.rglob("*.png"))[:5]
    content = create_image_tower("tiny")
    alone = compute_image_features(content, paths, FeatureCache(tmp_path, content.version))
    paired = create_image_tower("tiny+tiny-copy")
    seen: list[int] = []
    both = compute_image_features(
        paired, paths, FeatureCache(tmp_path, paired.version), progress=seen.append
    )
    assert both.shape == (5, 64)
    np.testing.assert_allclose(both[:, :32], alone, atol=1e-6)
    assert sum(seen) == 5  # one pass's worth of rows, though two towers ran
    assert (tmp_path / paired.copy.version).is_dir()
    assert not (tmp_path / paired.version).exists()
    # pictures in memory give the same features as the files
    from artsim.data.pictures.images import load_rgb

    in_memory = paired.features_of_images([load_rgb(p) for p in paths]).numpy()
    np.testing.assert_allclose(in_memory, both, atol=1e-5)


def test_a_pair_score_reads_the_copy_and_the_content_cosines_apart(
    training_manifest, feature_cache, tiny_args, tmp_path
):
    from artsim.data.pictures.images import load_rgb
    from artsim.index.query import embed_query, score_pair
    from artsim.verdicts.source import Calibration

    out = tmp_path / "run"
    assert main(_paired_args(tiny_args, training_manifest, out, feature_cache)) == 0
    embedder = Embedder.from_run(out, cache_dir=feature_cache, device="cpu")
    model = embedder.model
    weights = model.part_weights()
    assert set(weights) == {"copy", "content"}
    np.testing.assert_allclose(sum(weights.values()), 1.0, atol=1e-6)  # no bridge here
    paths = sorted(training_manifest.parent.rglob("*.png"))[:2]
    a, b = (embed_query(embedder, image=load_rgb(p)) for p in paths)
    scored = score_pair(embedder, a, b, Calibration(status="uncalibrated", note="test"))
    slices = model.part_slices()

    def cosine(x, y, where):
        x, y = np.concatenate([x[w] for w in where]), np.concatenate([y[w] for w in where])
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    copy = cosine(a.image, b.image, [slices["copy"]])
    content = cosine(a.image, b.image, [slices["trained"], slices["content"]])
    assert abs(scored.scores["copy"] - copy) < 1e-4
    assert abs(scored.scores["content"] - content) < 1e-4
    # the image score is their weighted sum
    expected = weights["copy"] * copy + weights["content"] * content
    assert abs(scored.scores["image"] - expected) < 1e-4
