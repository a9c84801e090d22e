"""The feature cache: hits skip the tower, keys are content hashes, damage is only a miss."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from artsim.data.pictures.images import load_rgb
from artsim.model import features as features_module
from artsim.model.features import (
    FeatureCache,
    compute_image_features,
    compute_text_features,
    file_key,
    text_key,
)
from artsim.model.towers import TinyImageTower, TinyTextTower


class CountingImageTower(TinyImageTower):
    """The tiny tower, counting the images it is run on."""

    def __init__(self):
        super().__init__()
        self.rows_seen = 0

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        self.rows_seen += len(pixels)
        return super().forward(pixels)


class CountingTextTower(TinyTextTower):
    def __init__(self):
        super().__init__()
        self.texts_seen: list[str] = []

    def encode(self, texts):
        self.texts_seen.extend(texts)
        return super().encode(texts)


@pytest.fixture
def image_paths(synthetic_manifest: Path) -> list[Path]:
    with synthetic_manifest.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [synthetic_manifest.parent / row["image"] for row in rows[:6]]


@torch.no_grad()
def direct_features(tower, paths) -> np.ndarray:
    pixels = torch.stack([tower.preprocess(load_rgb(path)) for path in paths])
    return tower(pixels).numpy()


# --------------------------------------------------------------------------- images


def test_image_features_equal_the_tower_and_keep_order(image_paths, tmp_path):
    tower = TinyImageTower()
    cache = FeatureCache(tmp_path, tower.version)
    got = compute_image_features(tower, image_paths, cache, batch_size=4)
    np.testing.assert_allclose(got, direct_features(tower, image_paths), rtol=1e-5, atol=1e-6)
    # half cached, half new, in another order: rows still follow the paths
    mixed = [image_paths[5], image_paths[0], image_paths[3]]
    again = compute_image_features(tower, mixed, FeatureCache(tmp_path, tower.version))
    np.testing.assert_allclose(again, got[[5, 0, 3]], atol=0)


def test_cache_hit_avoids_recomputation(image_paths, tmp_path):
    tower = CountingImageTower()
    first = compute_image_features(tower, image_paths, FeatureCache(tmp_path, tower.version))
    assert tower.rows_seen == len(image_paths)
    # a new cache object on the same folder reads the shards from disk
    second = compute_image_features(tower, image_paths, FeatureCache(tmp_path, tower.version))
    assert tower.rows_seen == len(image_paths)
    np.testing.assert_array_equal(first, second)
    # without a cache everything runs again
    compute_image_features(tower, image_paths[:2], None)
    assert tower.rows_seen == len(image_paths) + 2


@pytest.fixture
def extra_image(image_paths, tmp_path) -> Path:
    extra = tmp_path / "images" / "extra.png"
    extra.parent.mkdir()
    Image.new("RGB", (20, 20), (10, 200, 30)).save(extra)
    return extra


def test_only_missing_images_are_computed(image_paths, extra_image, tmp_path):
    tower = CountingImageTower()
    cache = FeatureCache(tmp_path / "cache", tower.version)
    compute_image_features(tower, image_paths[:3], cache)
    assert tower.rows_seen == 3
    compute_image_features(tower, [*image_paths[:3], extra_image], cache)
    assert tower.rows_seen == 4


def test_cache_keys_by_content_not_name(image_paths, tmp_path):
    twin = tmp_path / "another name.png"
    shutil.copyfile(image_paths[0], twin)
    assert file_key(twin) == file_key(image_paths[0])
    tower = CountingImageTower()
    cache = FeatureCache(tmp_path / "cache", tower.version)
    got = compute_image_features(tower, [image_paths[0], twin, image_paths[1]], cache)
    assert tower.rows_seen == 2
    np.testing.assert_array_equal(got[0], got[1])
    # and without a cache, duplicates in one call are still computed once
    tower.rows_seen = 0
    compute_image_features(tower, [image_paths[0], twin], None)
    assert tower.rows_seen == 1


def test_no_images_give_an_empty_matrix(tmp_path):
    tower = TinyImageTower()
    got = compute_image_features(tower, [], FeatureCache(tmp_path, tower.version))
    assert got.shape == (0, tower.dim) and got.dtype == np.float32


def test_progress_counts_every_image(image_paths, tmp_path):
    tower = TinyImageTower()
    cache = FeatureCache(tmp_path, tower.version)
    seen: list[int] = []
    compute_image_features(tower, image_paths[:3], cache, batch_size=2, progress=seen.append)
    assert sum(seen) == 3
    seen.clear()
    compute_image_features(tower, image_paths[:5], cache, batch_size=2, progress=seen.append)
    assert sum(seen) == 5


# --------------------------------------------------------------------------- texts


def test_empty_texts_give_zero_rows_and_never_reach_the_tower(tmp_path):
    tower = CountingTextTower()
    texts = ["a red circle", "", "   ", "un círculo rojo", "a red circle"]
    got = compute_text_features(tower, texts, FeatureCache(tmp_path, tower.version))
    assert got.shape == (5, tower.dim) and got.dtype == np.float32
    assert not got[1].any() and not got[2].any()
    assert got[0].any() and got[3].any()
    np.testing.assert_array_equal(got[0], got[4])
    assert tower.texts_seen == ["a red circle", "un círculo rojo"]  # each distinct text once
    np.testing.assert_allclose(
        got[[0, 3]], tower.encode(["a red circle", "un círculo rojo"]), rtol=1e-5, atol=1e-6
    )


def test_text_cache_hit_avoids_recomputation(tmp_path):
    tower = CountingTextTower()
    texts = ["one", "two", "three"]
    first = compute_text_features(tower, texts, FeatureCache(tmp_path, tower.version), batch_size=2)
    assert len(tower.texts_seen) == 3
    second = compute_text_features(
        tower, ["three", "four", "one"], FeatureCache(tmp_path, tower.version)
    )
    assert tower.texts_seen[3:] == ["four"]
    np.testing.assert_array_equal(second[0], first[2])
    np.testing.assert_array_equal(second[2], first[0])


def test_only_empty_texts_need_no_tower(tmp_path):
    tower = CountingTextTower()
    got = compute_text_features(tower, ["", " "], FeatureCache(tmp_path, tower.version))
    assert got.shape == (2, tower.dim) and not got.any()
    assert tower.texts_seen == []
    assert compute_text_features(tower, [], None).shape == (0, tower.dim)


def test_text_keys_are_content_hashes():
    assert text_key("a cat") == text_key("a cat")
    assert text_key("a cat") != text_key("a cat ")
    assert len(text_key("ü")) == 64


# --------------------------------------------------------------------------- shards on disk


def shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def test_cache_round_trip_and_versions_are_separate(tmp_path):
    cache = FeatureCache(tmp_path, "tower/v1")
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.put(["a", "b"], matrix)
    reread = FeatureCache(tmp_path, "tower/v1")
    assert "a" in reread and "b" in reread and "c" not in reread
    np.testing.assert_array_equal(reread.get(["b", "a"]), matrix[[1, 0]])
    assert "a" not in FeatureCache(tmp_path, "tower/v2")
    assert reread.folder.parent == tmp_path  # a slash in a version never makes a subfolder


def test_a_damaged_shard_is_only_a_miss(image_paths, tmp_path):
    tower = CountingImageTower()
    cache = FeatureCache(tmp_path, tower.version)
    first = compute_image_features(tower, image_paths[:2], cache, batch_size=1)
    compute_image_features(tower, image_paths[2:4], cache, batch_size=2)
    written = shards(cache.folder)
    assert len(written) == 3
    damaged = next(p for p in written if _keys_of(p) == [file_key(image_paths[0])])
    damaged.write_bytes(damaged.read_bytes()[:40])  # cut short, as a full disk would
    (cache.folder / "garbage.safetensors").write_bytes(b"not a safetensors file")

    fresh = FeatureCache(tmp_path, tower.version)
    assert file_key(image_paths[0]) not in fresh
    assert file_key(image_paths[1]) in fresh and file_key(image_paths[2]) in fresh
    tower.rows_seen = 0
    again = compute_image_features(tower, image_paths[:4], fresh)
    assert tower.rows_seen == 1  # only the damaged row is computed again
    np.testing.assert_allclose(again[:2], first, atol=0)


def _keys_of(shard: Path) -> list[str]:
    with safe_open(str(shard), framework="numpy") as handle:
        return json.loads(handle.metadata()["keys"])


def test_shards_are_written_atomically(image_paths, tmp_path, monkeypatch):
    tower = TinyImageTower()
    cache = FeatureCache(tmp_path, tower.version)
    compute_image_features(tower, image_paths[:3], cache, batch_size=2)
    assert len(shards(cache.folder)) == 2
    assert not [p for p in cache.folder.iterdir() if p.name.endswith(".tmp")]
    for shard in shards(cache.folder):  # every shard is whole: its rows are all there
        assert len(_keys_of(shard)) in (1, 2)

    # interrupted between writing and renaming: no shard appears, a leftover .tmp is ignored
    def interrupted(source, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(features_module.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        FeatureCache(tmp_path, tower.version).put(["k"], np.ones((1, tower.dim), np.float32))
    monkeypatch.undo()
    assert len(shards(cache.folder)) == 2
    assert "k" not in FeatureCache(tmp_path, tower.version)
    got = compute_image_features(tower, image_paths[:3], FeatureCache(tmp_path, tower.version))
    np.testing.assert_allclose(got, direct_features(tower, image_paths[:3]), rtol=1e-5, atol=1e-6)
