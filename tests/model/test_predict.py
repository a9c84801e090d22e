"""Image features over two CPU processes (Lightning's prediction loop) equal one process's,
in the same order."""

from __future__ import annotations

import numpy as np
import pytest

from artsim.errors import ImageError
from artsim.model.features import FeatureCache, compute_image_features
from artsim.model.predict import predict_image_features
from artsim.model.towers import TinyImageTower

pytestmark = pytest.mark.slow


def test_two_processes_give_one_process_vectors_in_input_order(synthetic_manifest, tmp_path):
    # an odd count: the distributed sampler pads the last share with a repeat
    paths = sorted((synthetic_manifest.parent / "images").glob("*.png"))[:23]
    paths = paths[::-1]  # not the order of the files on disk
    tower = TinyImageTower(batch_norm=True)
    single = compute_image_features(tower, paths)
    both = predict_image_features(tower, paths, devices=2, accelerator="cpu")
    assert both.shape == single.shape == (23, tower.dim)
    np.testing.assert_allclose(both, single, rtol=1e-5, atol=1e-6)
    # the same through the cached path: two processes fill the cache, one process reads it
    cache = FeatureCache(tmp_path, tower.version)
    cached = compute_image_features(tower, paths, cache, devices=2)
    np.testing.assert_allclose(cached, single, rtol=1e-5, atol=1e-6)
    again = compute_image_features(tower, paths, FeatureCache(tmp_path, tower.version))
    np.testing.assert_array_equal(again, cached)


def test_repeated_two_process_embeddings_all_finish(synthetic_manifest):
    # a spawned worker used to abort at exit now and then (SIGABRT from gloo threads left to the
    # interpreter's shutdown): about one embedding in four failed; each must now finish
    paths = sorted((synthetic_manifest.parent / "images").glob("*.png"))[:6]
    tower = TinyImageTower()
    single = compute_image_features(tower, paths)
    for _ in range(8):
        both = predict_image_features(tower, paths, devices=2, accelerator="cpu")
        np.testing.assert_allclose(both, single, rtol=1e-5, atol=1e-6)


def test_a_worker_stopped_by_an_unreadable_image_gives_one_line_not_a_traceback(
    synthetic_manifest, tmp_path
):
    paths = sorted((synthetic_manifest.parent / "images").glob("*.png"))[:5]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    paths.insert(1, bad)  # the second process's first image
    with pytest.raises(ImageError, match=r"bad\.png: not an image") as raised:
        predict_image_features(TinyImageTower(), paths, devices=2, accelerator="cpu")
    assert "Traceback" not in str(raised.value) and "\n" not in str(raised.value)


def test_one_process_names_the_unreadable_image_in_one_line_too(synthetic_manifest, tmp_path):
    paths = sorted((synthetic_manifest.parent / "images").glob("*.png"))[:3]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageError, match=r"bad\.png: not an image") as raised:
        predict_image_features(TinyImageTower(), [*paths, bad], devices=1, accelerator="cpu")
    assert "\n" not in str(raised.value)
