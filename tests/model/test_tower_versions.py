"""Tower versions come from the weights' content; fine-tuned towers save and load strictly."""

from __future__ import annotations

import os

import pytest
import torch

from artsim.errors import UserError
from artsim.model.embedder import Embedder
from artsim.model.features import FeatureCache
from artsim.model.heads import ArtSimModel, ModelConfig, load_model, model_id, save_model
from artsim.model.towers import (
    TinyImageTower,
    TinyTextTower,
    create_image_tower,
    file_digest,
    load_tower_weights,
)


def test_towers_with_other_weights_get_other_cache_keys(tmp_path):
    first, same, other = TinyImageTower(seed=0), TinyImageTower(seed=0), TinyImageTower(seed=1)
    assert first.version == same.version
    assert first.version != other.version
    assert (
        FeatureCache(tmp_path, first.version).folder != FeatureCache(tmp_path, other.version).folder
    )
    assert TinyTextTower(seed=0).version != TinyTextTower(seed=1).version
    # loaded weights: the version follows them
    same.load_state_dict(other.state_dict())
    assert same.version == other.version
    with torch.no_grad():
        same.blocks[0].weight.add_(1.0)
    assert same.version not in (first.version, other.version)


def test_file_digest_follows_the_content(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTSIM_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"a" * 100)
    first = file_digest(weights)
    assert file_digest(weights) == first
    assert (tmp_path / "cache" / "file-digests.json").is_file()  # remembered for the next process
    weights.write_bytes(b"b" * 100)
    os.utime(weights, ns=(1, 1))  # another mtime, as any write gives
    assert file_digest(weights) != first


def test_the_packaged_tower_keeps_its_cache_folder_name(efficientnet_tower):
    # the digest's first 8 hex digits are the weights file's name: existing caches stay valid
    assert efficientnet_tower.version == "efficientnet-lite0-57934424"


def _config(tower: str) -> ModelConfig:
    return ModelConfig(tower, "tiny", 32, 32, embed_dim=8, hidden_dim=0)


def test_a_batch_norm_tower_saves_with_a_model_id_and_loads_back(tmp_path):
    tower = create_image_tower("tiny-bn")
    assert any(value.dim() == 0 for value in tower.state_dict().values())
    with torch.no_grad():
        tower.blocks[0].weight.mul_(2.0)
    torch.manual_seed(0)
    save_model(ArtSimModel(_config("tiny-bn")), tmp_path, tower_state=tower.state_dict())
    identity = model_id(tmp_path)
    assert len(identity) == 16
    save_model(load_model(tmp_path)[0], tmp_path / "again", tower_state=tower.state_dict())
    assert model_id(tmp_path / "again") == identity
    embedder = Embedder.from_run(tmp_path, cache_dir=tmp_path / "cache")
    assert torch.equal(embedder.tuned_tower.blocks[0].weight, tower.blocks[0].weight)
    assert embedder.tuned_tower.version == tower.version
    assert embedder.tuned_tower.version != create_image_tower("tiny-bn").version
    # the packaged tower stays beside it (the blend's frozen part and the baseline read it)
    assert embedder.image_tower.version == create_image_tower("tiny-bn").version


def test_a_fine_tuned_tower_that_does_not_fit_is_refused_in_one_line(tmp_path):
    tower = create_image_tower("tiny-bn")
    state = dict(tower.state_dict())
    state["blocks.9.weight"] = state.pop("blocks.3.weight")
    save_model(ArtSimModel(_config("tiny-bn")), tmp_path, tower_state=state)
    with pytest.raises(UserError) as raised:
        Embedder.from_run(tmp_path, cache_dir=tmp_path / "cache")
    message = str(raised.value)
    assert "\n" not in message
    assert "model.safetensors" in message
    assert "1 missing (blocks.3.weight)" in message
    assert "1 unexpected (blocks.9.weight)" in message
    fresh = create_image_tower("tiny-bn")
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(UserError):
        load_tower_weights(fresh, state, "x")
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())
