"""A trained run gets the ConSE bridge when its image tower has an ImageNet classifier."""

from __future__ import annotations

import numpy as np
import torch

from artsim.cli.train import main
from artsim.eval.evaluate import evaluate_run
from artsim.model import conse
from artsim.model.embedder import Embedder
from artsim.model.heads import load_model
from artsim.model.towers import create_text_tower

NAMES = ["fox", "owl", "boat", "house", "tree"]


def test_a_run_attaches_the_bridge_and_every_user_applies_it(
    training_manifest, feature_cache, tiny_args, tmp_path, monkeypatch
):
    # the tiny tower (32-d) stands in for EfficientNet: a 5-class classifier that reads it
    generator = torch.Generator().manual_seed(0)
    classifier = (torch.randn(5, 32, generator=generator), torch.zeros(5))
    monkeypatch.setattr(conse, "bridge_scale", lambda tower, dim: 2.0 if dim == 32 else None)
    monkeypatch.setattr(conse, "imagenet_classifier", lambda: classifier)
    monkeypatch.setattr(conse, "class_names", lambda: list(NAMES))
    out = tmp_path / "run"
    args = tiny_args(training_manifest, out, feature_cache, "--max-epochs", "2")
    assert main([*args, "--bridge-ratio", "3"]) == 0
    model, card, _ = load_model(out)
    config = model.config
    weight = conse.bridge_weight_for(3.0, config.image_blend, config.text_blend)
    assert 0 < weight < 1
    assert card["blend"]["bridge"] == {
        "used": True, "ratio": 3.0, "weight": weight, "top": 5, "scale": 2.0, "classes": 5,
        "template": "a picture of a {}",
    }  # fmt: skip
    assert model.has_bridge and config.bridge_scale == 2.0 and config.bridge_weight == weight
    torch.testing.assert_close(model.bridge_classifier, classifier[0])
    # the names are the run's text tower's vectors of "a picture of a NAME", unit length
    tower = create_text_tower("tiny")
    expected = tower.encode([f"a picture of a {name}" for name in NAMES])
    torch.testing.assert_close(model.bridge_names, torch.nn.functional.normalize(expected, dim=-1))

    embedder = Embedder.from_run(out, cache_dir=feature_cache, device="cpu")
    assert embedder.dim == model.output_dim
    result = evaluate_run(out, training_manifest, split="val", cache_dir=feature_cache)
    assert result.retrieval.tasks["i2t"]["n_queries"] > 0
    # the fused vectors leave the bridge out: the same as those of the model without it
    features = np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32)
    image = embedder.project_image_features(features)
    embedder.model.config.bridge_weight = 0.0
    plain = embedder.project_image_features(features)
    assert not np.allclose(image, plain)
    text = np.zeros((3, model.output_dim), np.float32)
    embedder.model.config.bridge_weight = weight
    np.testing.assert_allclose(embedder.fuse(image, text), embedder.fuse(plain, text), atol=1e-6)


def test_a_tower_without_a_classifier_trains_without_the_bridge_and_says_why(
    training_manifest, feature_cache, tiny_args, tmp_path
):
    out = tmp_path / "run"
    assert main(tiny_args(training_manifest, out, feature_cache, "--max-epochs", "2")) == 0
    model, card, _ = load_model(out)
    bridge = card["blend"]["bridge"]
    assert bridge["used"] is False and "'tiny' has no ImageNet classifier" in bridge["reason"]
    assert not model.has_bridge and model.config.bridge_classes == 0
