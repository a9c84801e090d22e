"""Projection heads on disk (save/load, model_id) and the Embedder with tiny towers."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from artsim.errors import UserError
from artsim.model.embedder import Embedder, fuse_embeddings
from artsim.model.heads import (
    MODEL_CARD,
    MODEL_WEIGHTS,
    ArtSimModel,
    ModelConfig,
    load_model,
    model_id,
    save_model,
)
from artsim.model.towers import TinyImageTower, TinyTextTower


def tiny_config(**overrides) -> ModelConfig:
    image, text = TinyImageTower(), TinyTextTower()
    values = {
        "image_tower": "tiny",
        "text_tower": "tiny",
        "image_feature_dim": image.dim,
        "text_feature_dim": text.dim,
        "tower_versions": (image.version, text.version),
        "embed_dim": 16,
        "hidden_dim": 24,
    }
    return ModelConfig(**{**values, **overrides})


def tiny_model(seed: int = 0, **overrides) -> ArtSimModel:
    torch.manual_seed(seed)
    return ArtSimModel(tiny_config(**overrides)).eval()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder with tiny towers' heads; read-only."""
    folder = tmp_path_factory.mktemp("tiny-run")
    save_model(tiny_model(seed=3), folder, extra={"epochs": 1})
    return folder


@pytest.fixture
def image_paths(synthetic_manifest: Path) -> list[Path]:
    with synthetic_manifest.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [synthetic_manifest.parent / row["image"] for row in rows[:5]]


# --------------------------------------------------------------------------- save / load


def test_round_trip_gives_identical_embeddings(tmp_path):
    model = tiny_model(seed=1)
    save_model(model, tmp_path / "run", extra={"note": "x"})
    loaded, card, tower_state = load_model(tmp_path / "run")
    assert not loaded.training
    assert loaded.config == model.config
    assert card["note"] == "x" and card["model_id"] == model_id(tmp_path / "run")
    assert card["has_finetuned_image_tower"] is False and tower_state == {}
    features = torch.randn(
        7, model.config.image_feature_dim, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        assert torch.equal(loaded.embed_image(features), model.embed_image(features))
        assert torch.equal(loaded.embed_text(features), model.embed_text(features))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_round_trip_keeps_a_finetuned_tower_state(tmp_path):
    tower = TinyImageTower()
    state = {k: v + 1.0 for k, v in tower.state_dict().items()}
    save_model(tiny_model(), tmp_path, tower_state=state)
    _, card, loaded_state = load_model(tmp_path)
    assert card["has_finetuned_image_tower"] is True
    assert loaded_state.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded_state[key], value)


def test_outputs_are_unit_vectors():
    model = tiny_model()
    with torch.no_grad():
        out = model.embed_image(torch.randn(4, model.config.image_feature_dim))
    assert out.shape == (4, 16)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))


def test_model_id_changes_when_weights_change(tmp_path):
    save_model(tiny_model(seed=0), tmp_path / "a")
    save_model(tiny_model(seed=1), tmp_path / "b")
    assert model_id(tmp_path / "a") != model_id(tmp_path / "b")
    assert len(model_id(tmp_path / "a")) == 16
    # one weight nudged: another id, recorded in the card too
    model = tiny_model(seed=0)
    with torch.no_grad():
        model.image_head.linear.bias[0] += 1e-3
    save_model(model, tmp_path / "nudged")
    assert model_id(tmp_path / "nudged") != model_id(tmp_path / "a")
    card = json.loads((tmp_path / "nudged" / MODEL_CARD).read_text(encoding="utf-8"))
    assert card["model_id"] == model_id(tmp_path / "nudged")
    assert model_id(tmp_path / "nudged") == model_id(tmp_path / "nudged")  # reading is stable


def test_model_id_is_the_same_for_the_same_weights(tmp_path):
    """A content hash: the same weights saved again (a resumed run, a copy) keep their id, or
    every index built with them would be refused as "another model"."""
    model = tiny_model(seed=0)
    ids = set()
    for attempt in range(8):
        save_model(model, tmp_path / f"save-{attempt}")
        ids.add(model_id(tmp_path / f"save-{attempt}"))
    assert len(ids) == 1, ids


def test_model_id_changes_with_the_blend_and_loads_what_it_hashes(tmp_path):
    """The same heads with another blend give other vectors: another id, so an index built with
    one refuses queries from the other; the config saved with the weights is what loads."""
    model = tiny_model(seed=0)
    save_model(model, tmp_path / "a")
    model.config.image_blend = 0.25
    save_model(model, tmp_path / "b")
    assert model_id(tmp_path / "a") != model_id(tmp_path / "b")
    # a hand-edited card neither changes the id nor what the model computes
    card_path = tmp_path / "b" / MODEL_CARD
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["config"]["image_blend"] = 0.9
    card_path.write_text(json.dumps(card), encoding="utf-8")
    loaded, loaded_card, _ = load_model(tmp_path / "b")
    assert loaded.config.image_blend == 0.25
    assert loaded_card["model_id"] == model_id(tmp_path / "b") == card["model_id"]


def test_weights_saved_without_a_config_keep_their_tensor_only_id(tmp_path):
    """Files written before the config was stored in them keep their id (their indexes stay
    usable) and load from the card's config."""
    model = tiny_model(seed=0)
    save_model(model, tmp_path / "new")
    old = tmp_path / "old"
    old.mkdir()
    tensors = load_file(str(tmp_path / "new" / MODEL_WEIGHTS))
    save_file(tensors, str(old / MODEL_WEIGHTS), metadata={"format": "artsim", "version": "1"})
    (old / MODEL_CARD).write_text(
        (tmp_path / "new" / MODEL_CARD).read_text(encoding="utf-8"), encoding="utf-8"
    )
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    assert model_id(old) == digest.hexdigest()[:16] != model_id(tmp_path / "new")
    loaded, _, _ = load_model(old)
    assert loaded.config == model.config


def test_save_leaves_no_temporary_file(tmp_path):
    save_model(tiny_model(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MODEL_WEIGHTS, MODEL_CARD])


@pytest.mark.parametrize("present", [(), (MODEL_WEIGHTS,), (MODEL_CARD,)])
def test_load_model_without_its_files_is_a_user_error(tmp_path, present):
    source = tmp_path / "full"
    save_model(tiny_model(), source)
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in present:
        (partial / name).write_bytes((source / name).read_bytes())
    with pytest.raises(UserError, match="no trained model"):
        load_model(partial)
    with pytest.raises(UserError):
        load_model(tmp_path / "does-not-exist")


@pytest.mark.parametrize("card", ["not json", "{}", '{"config": {"image_tower": "tiny"}}'])
def test_a_broken_model_card_is_a_user_error(tmp_path, card):
    save_model(tiny_model(), tmp_path)
    (tmp_path / MODEL_CARD).write_text(card, encoding="utf-8")
    with pytest.raises(UserError, match="not an artsim model card"):
        load_model(tmp_path)


# --------------------------------------------------------------------------- Embedder


def test_embedder_from_run_embeds_images_and_texts(tiny_run, image_paths, tmp_path):
    embedder = Embedder.from_run(tiny_run, cache_dir=tmp_path / "cache", device="cpu")
    assert embedder.dim == 16 and embedder.model_id == model_id(tiny_run)
    images = embedder.embed_images(image_paths)
    assert images.shape == (len(image_paths), 16) and images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)

    texts = embedder.embed_texts(["a red circle", "", "un círculo rojo", "   "])
    assert texts.shape == (4, 16)
    np.testing.assert_allclose(np.linalg.norm(texts[[0, 2]], axis=1), 1.0, atol=1e-5)
    assert not texts[1].any() and not texts[3].any()
    assert not np.allclose(texts[0], texts[2])


def test_embedder_matches_the_model_and_uploads(tiny_run, image_paths):
    embedder = Embedder.from_run(tiny_run, cache_dir=False, device="cpu")
    assert embedder.image_cache is None and embedder.text_cache is None
    model, _, _ = load_model(tiny_run)
    tower = TinyImageTower()
    from PIL import Image

    pictures = [Image.open(path).convert("RGB") for path in image_paths[:2]]
    with torch.no_grad():
        features = tower(torch.stack([tower.preprocess(p) for p in pictures]))
        expected = model.embed_image(features).numpy()
    np.testing.assert_allclose(embedder.embed_images(image_paths[:2]), expected, atol=1e-5)
    np.testing.assert_allclose(embedder.embed_pil(pictures), expected, atol=1e-5)
    assert embedder.embed_pil([]).shape == (0, 16)
    with torch.no_grad():
        text_expected = model.embed_text(TinyTextTower().encode(["a cat"])).numpy()
    np.testing.assert_allclose(embedder.embed_texts(["a cat"]), text_expected, atol=1e-5)


def test_embedder_cache_is_used_on_the_second_call(tiny_run, image_paths, tmp_path):
    first = Embedder.from_run(tiny_run, cache_dir=tmp_path, device="cpu")
    expected = first.embed_images(image_paths)
    second = Embedder.from_run(tiny_run, cache_dir=tmp_path, device="cpu")

    def broken(pixels):
        raise AssertionError("the tower ran although every feature was cached")

    second.image_tower.forward = broken
    np.testing.assert_array_equal(second.embed_images(image_paths), expected)


# --------------------------------------------------------------------------- fuse_embeddings


def unit(rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_fuse_embeddings_averages_and_falls_back_to_image():
    image = unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    text = np.array([[0, 1, 0], [0, 0, 0], [0, 0, 1]], dtype=np.float32)  # item 1 has no text
    fused = fuse_embeddings(image, text)
    np.testing.assert_allclose(fused[0], unit([[1, 1, 0]])[0], atol=1e-6)
    np.testing.assert_allclose(fused[1], image[1], atol=1e-6)
    np.testing.assert_allclose(fused[2], image[2], atol=1e-6)  # same direction: unchanged
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-6)
    assert fused.dtype == np.float32


def test_fuse_embeddings_honours_an_explicit_has_text():
    rng = np.random.default_rng(0)
    image, text = unit(rng.normal(size=(4, 5))), unit(rng.normal(size=(4, 5)))
    has_text = np.array([True, False, True, False])
    fused = fuse_embeddings(image, text, has_text)
    for row in range(4):
        expected = unit([image[row] + text[row]])[0] if has_text[row] else image[row]
        np.testing.assert_allclose(fused[row], expected, atol=1e-6)
