"""The ConSE bridge: class probabilities weighing class-name text vectors, inside image vectors."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from artsim.model import conse
from artsim.model.blend import fit_whitening
from artsim.model.heads import ArtSimModel, ModelConfig, load_model, save_model

IMAGE_DIM, TEXT_DIM, CLASSES = 12, 10, 4


def _classifier(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(CLASSES, IMAGE_DIM, generator=generator)
    bias = torch.randn(CLASSES, generator=generator) * 0.1
    names = F.normalize(torch.randn(CLASSES, TEXT_DIM, generator=generator), dim=-1)
    return weight, bias, names


def _model(bridge_weight: float | None, top: int = 2, image_blend=0.3, text_blend=0.8):
    torch.manual_seed(0)
    config = ModelConfig(
        "tiny", "tiny", IMAGE_DIM, TEXT_DIM, embed_dim=6, hidden_dim=0, dropout=0.0,
        image_blend=image_blend, text_blend=text_blend, whiten_dim=5,
    )  # fmt: skip
    model = ArtSimModel(config).eval()
    mean, projection = fit_whitening(np.random.default_rng(1).normal(size=(40, IMAGE_DIM)), 5)
    model.set_whitening(torch.from_numpy(mean), torch.from_numpy(projection))
    if bridge_weight is not None:
        weight, bias, names = _classifier()
        model.set_bridge(weight, bias, names, weight=bridge_weight, top=top, scale=1.0)
    return model


def test_one_class_gives_its_name_and_two_classes_their_renormalised_mix():
    names = F.normalize(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)), dim=-1)
    weight = torch.eye(3, 4)  # class k reads feature k
    features = torch.tensor([[2.0, 1.0, -5.0, 0.0]])
    bias = torch.zeros(3)
    one = conse.bridge_vectors(features, weight, bias, names, top=1)
    torch.testing.assert_close(one, names[:1])
    two = conse.bridge_vectors(features, weight, bias, names, top=2)
    p = torch.softmax(torch.tensor([2.0, 1.0, -5.0]), dim=0)[:2]
    expected = F.normalize((p[0] * names[0] + p[1] * names[1]) / p.sum(), dim=-1)
    torch.testing.assert_close(two[0], expected)
    # the scale sharpens the softmax: at scale 10 the second class all but vanishes
    sharp = conse.bridge_vectors(features, weight, bias, names, top=2, scale=10.0)
    assert float(sharp[0] @ names[0]) > float(two[0] @ names[0])
    # more classes asked for than there are: all of them, no error
    assert conse.bridge_vectors(features, weight, bias, names, top=50).shape == (1, 5)


def test_the_class_names_and_classifier_are_imagenets():
    names = conse.class_names()
    assert len(names) == 1000 and len(set(names)) > 990
    assert names[0] == "tench" and names[388] == "giant panda"
    weight, bias = conse.imagenet_classifier()
    assert weight.shape == (1000, conse.CLASSIFIER_INPUT) and bias.shape == (1000,)


def test_only_towers_the_classifier_can_read_get_a_scale():
    assert conse.bridge_scale("efficientnet-lite0", 1280) == 1.0
    assert conse.bridge_scale("efficientnet-lite0-gem", 1280) == conse.GEM_LOGIT_SCALE
    assert conse.bridge_scale("efficientnet-lite0-gem", 1472) is None  # a mid-layer branch
    assert conse.bridge_scale("tiny", 1280) is None


def test_the_bridge_weight_makes_it_count_ratio_times_the_trained_heads():
    # the default blend: image 0.25, text 0.05 -> ratio 2 is a weight of 0.05
    assert conse.bridge_weight_for(2.0, 0.25, 0.05) == pytest.approx(0.05)
    for ratio, a_image, a_text in [(1.0, 0.01, 0.01), (3.0, 0.5, 0.2)]:
        b = conse.bridge_weight_for(ratio, a_image, a_text)
        bridge = math.sqrt(b) * math.sqrt(1 - a_text)
        trained = math.sqrt(1 - b) * math.sqrt(a_image * a_text)
        assert bridge == pytest.approx(ratio * trained)
    assert conse.bridge_weight_for(2.0, 0.0, 0.0) == conse.ALONE_WEIGHT  # the bridge alone
    assert conse.bridge_weight_for(2.0, 0.3, 1.0) == 0.0  # no frozen text part
    assert conse.bridge_weight_for(0.0, 0.3, 0.1) == 0.0


def test_name_vectors_embed_the_template_and_are_unit_length():
    seen = []

    def encode(texts):
        seen.extend(texts)
        return np.arange(len(texts) * 3, dtype=np.float32).reshape(len(texts), 3) + 1

    vectors = conse.name_vectors(encode, ["fox", "owl"])
    assert seen == ["a picture of a fox", "a picture of a owl"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)


def test_the_bridge_adds_its_cosine_with_the_frozen_text_to_image_text_scores():
    beta = 0.2
    plain, bridged = _model(None), _model(beta)
    images, texts = torch.randn(5, IMAGE_DIM), torch.randn(4, TEXT_DIM)
    with torch.no_grad():
        before, after = plain.infer_image(images), bridged.infer_image(images)
        text = bridged.infer_text(texts)
        bridge = bridged.bridge(images)
    assert bridged.has_bridge and not plain.has_bridge
    assert after.shape == before.shape == (5, bridged.output_dim)
    torch.testing.assert_close(after.norm(dim=1), torch.ones(5))
    frozen_text = F.normalize(texts, dim=-1)
    expected = math.sqrt(1 - beta) * before @ text.T + math.sqrt(beta) * math.sqrt(1 - 0.8) * (
        bridge @ frozen_text.T
    )
    torch.testing.assert_close(after @ text.T, expected)
    # image-image scores: the old ones, plus beta times the bridges' cosines
    expected = (1 - beta) * before @ before.T + beta * bridge @ bridge.T
    torch.testing.assert_close(after @ after.T, expected)
    # the fused vectors are built from the image vectors without the bridge: exactly the old ones
    np.testing.assert_allclose(bridged.without_bridge(after.numpy()), before.numpy(), atol=1e-6)
    np.testing.assert_array_equal(plain.without_bridge(before.numpy()), before.numpy())


def test_a_weight_of_zero_or_heads_alone_has_no_bridge():
    assert not _model(0.0).has_bridge
    alone = _model(0.2, image_blend=1.0, text_blend=1.0)
    images = torch.randn(2, IMAGE_DIM)
    with torch.no_grad():
        assert alone.infer_image(images).shape == (2, 6)


def test_a_saved_bridge_loads_back_and_older_models_load_without_one(tmp_path):
    model = _model(0.1, top=3)
    save_model(model, tmp_path / "new")
    loaded, card, _ = load_model(tmp_path / "new")
    assert card["config"]["bridge_weight"] == 0.1 and loaded.config.bridge_top == 3
    images = torch.randn(3, IMAGE_DIM)
    with torch.no_grad():
        torch.testing.assert_close(loaded.infer_image(images), model.infer_image(images))
    # a model saved before the bridge: no bridge_* tensors and no bridge fields in its config
    from safetensors.torch import save_file

    old = _model(None)
    save_model(old, tmp_path / "old")
    state = {f"heads.{k}": v for k, v in old.state_dict().items() if not k.startswith("bridge_")}
    config = {k: v for k, v in asdict(old.config).items() if not k.startswith("bridge_")}
    metadata = {"format": "artsim", "version": "1", "config": json.dumps(config)}
    save_file(state, str(tmp_path / "old" / "model.safetensors"), metadata=metadata)
    loaded, _, _ = load_model(tmp_path / "old")
    assert not loaded.has_bridge
    with torch.no_grad():
        torch.testing.assert_close(loaded.infer_image(images), old.infer_image(images))


def test_bridge_tensors_of_the_wrong_shape_are_refused():
    model = _model(None)
    weight, bias, names = _classifier()
    with pytest.raises(ValueError, match="bridge tensors"):
        model.set_bridge(weight[:, :3], bias, names, weight=0.1, top=2, scale=1.0)
    with pytest.raises(ValueError, match="bridge weight"):
        model.set_bridge(weight, bias, names, weight=1.0, top=2, scale=1.0)
    assert not model.has_bridge
