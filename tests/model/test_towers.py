"""Tower registry, tiny towers and golden features.

Golden files (tests/model/golden/*.json) hold the first values of each tower's features on fixed
inputs: a change that moves them would make every cached feature and built index stale. When a
change is meant to move them, regenerate and commit the files with the reason:

    HF_HUB_OFFLINE=1 .venv/bin/python tests/model/test_towers.py --regenerate
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artsim.errors import UserError
from artsim.model.towers import (
    IMAGE_TOWERS,
    TEXT_TOWERS,
    TinyImageTower,
    TinyTextTower,
    create_image_tower,
    create_text_tower,
    pil_to_tensor,
)

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = "HF_HUB_OFFLINE=1 .venv/bin/python tests/model/test_towers.py --regenerate"
GOLDEN_TEXTS = ["a red circle on a blue background", "un círculo rojo sobre fondo azul", "x"]
N_VALUES = 8


def fixed_image(size: int) -> Image.Image:
    """A deterministic RGB picture made by arithmetic only (no drawing library), already at the
    tower's input size so that resizing is the identity."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / max(size - 1, 1)
    pixels = np.stack([255 * x, 255 * y, 255 * (0.5 + 0.5 * np.sin(6.0 * x + 3.0 * y))], axis=-1)
    quarter = size // 4
    pixels[quarter : 3 * quarter, quarter : 3 * quarter] = (250, 30, 40)
    return Image.fromarray(np.round(pixels).astype(np.uint8), "RGB")


@torch.no_grad()
def image_features(tower, size: int) -> torch.Tensor:
    return tower(tower.preprocess(fixed_image(size))[None])[0]


def golden_record(features: torch.Tensor) -> dict:
    return {
        "first": [round(float(v), 7) for v in features[:N_VALUES]],
        # the largest features by index: the first few of a ReLU network may all be zero
        "top_indices": sorted(int(i) for i in features.topk(N_VALUES).indices),
        "top_values": [
            round(float(features[i]), 7) for i in sorted(features.topk(N_VALUES).indices.tolist())
        ],
        "norm": round(float(features.norm()), 6),
        "dim": int(features.shape[-1]),
    }


def tiny_image_golden() -> dict:
    return golden_record(image_features(TinyImageTower(), 32))


@torch.no_grad()
def tiny_text_golden() -> dict:
    features = TinyTextTower().encode(GOLDEN_TEXTS)
    return {text: golden_record(row) for text, row in zip(GOLDEN_TEXTS, features, strict=True)}


def efficientnet_golden(tower) -> dict:
    return golden_record(image_features(tower, 224))


def read_golden(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


def write_golden(name: str, values: dict) -> None:
    payload = {"regenerate": REGENERATE, "values": values}
    (GOLDEN / name).write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", "utf-8")


def assert_matches(features: torch.Tensor, record: dict, atol: float) -> None:
    assert features.shape[-1] == record["dim"]
    np.testing.assert_allclose(features[:N_VALUES].numpy(), record["first"], atol=atol, rtol=1e-6)
    top = record["top_indices"]
    np.testing.assert_allclose(features[top].numpy(), record["top_values"], atol=atol, rtol=1e-6)
    assert float(features.norm()) == pytest.approx(record["norm"], abs=atol * 10, rel=1e-5)


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    "create,known", [(create_image_tower, IMAGE_TOWERS), (create_text_tower, TEXT_TOWERS)]
)
def test_unknown_tower_names_list_the_known_ones(create, known):
    with pytest.raises(UserError) as caught:
        create("resnet-9000")
    message = str(caught.value)
    assert "resnet-9000" in message
    for name in known:
        assert name in message
    assert "open_clip:ARCH:WEIGHTS" in message


@pytest.mark.parametrize("create", [create_image_tower, create_text_tower])
@pytest.mark.parametrize("name", ["open_clip:ViT-B-32", "open_clip::x", "open_clip:ViT-B-32:"])
def test_malformed_open_clip_names_are_user_errors(create, name):
    with pytest.raises(UserError, match="open_clip"):
        create(name)


@pytest.mark.parametrize("create", [create_image_tower, create_text_tower])
def test_open_clip_with_a_missing_weights_file_is_a_user_error(create, tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(UserError, match="not found"):
        create(f"open_clip:ViT-B-32:{missing}")


def test_registry_builds_tiny_towers_in_eval_mode():
    image, text = create_image_tower("tiny"), create_text_tower("tiny")
    assert isinstance(image, TinyImageTower) and isinstance(text, TinyTextTower)
    assert not image.training and not text.training
    assert image.version and text.version and image.version != text.version


# --------------------------------------------------------------------------- tiny towers


def test_pil_to_tensor_normalises_with_imagenet_statistics():
    image = Image.new("RGB", (5, 3), (255, 0, 128))
    tensor = pil_to_tensor(image, 4)
    assert tensor.shape == (3, 4, 4) and tensor.dtype == torch.float32
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    for channel, value in enumerate(expected):
        torch.testing.assert_close(tensor[channel], torch.full((4, 4), value), atol=1e-5, rtol=0)


def test_tiny_image_tower_is_deterministic_and_seeded():
    pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first, second = TinyImageTower()(pixels), TinyImageTower()(pixels)
        other_seed = TinyImageTower(seed=1)(pixels)
    assert first.shape == (3, 32)
    assert torch.equal(first, second)
    assert not torch.allclose(first, other_seed)
    assert TinyImageTower(seed=1).version != TinyImageTower().version


def test_tiny_text_tower_is_deterministic_and_content_sensitive():
    texts = ["a red circle", "A RED CIRCLE", "a blue square", ""]
    first, second = TinyTextTower().encode(texts), TinyTextTower().encode(texts)
    assert first.shape == (4, 32) and first.dtype == torch.float32
    assert torch.equal(first, second)
    assert torch.equal(first[0], first[1])  # lower-cased before hashing
    assert not torch.allclose(first[0], first[2])
    assert TinyTextTower().encode([]).shape == (0, 32)


def test_tiny_towers_have_finetune_parameters():
    tower = TinyImageTower()
    last = tower.finetune_parameters(1)
    assert last and all(p is q for p, q in zip(last, tower.blocks[2].parameters(), strict=True))
    assert len(tower.finetune_parameters(2)) == 2 * len(last)


def test_tiny_image_tower_golden():
    assert_matches(
        image_features(TinyImageTower(), 32), read_golden("tiny_image.json")["values"], 1e-5
    )


def test_tiny_text_tower_golden():
    golden = read_golden("tiny_text.json")["values"]
    assert list(golden) == GOLDEN_TEXTS
    features = TinyTextTower().encode(GOLDEN_TEXTS)
    for text, row in zip(GOLDEN_TEXTS, features, strict=True):
        assert_matches(row, golden[text], 1e-5)


# --------------------------------------------------------------------------- packaged towers


@pytest.mark.slow
def test_packaged_towers_load_offline_with_their_dimensions(
    efficientnet_tower, e5_tower, minilm_tower
):
    with torch.no_grad():
        pixels = torch.stack([efficientnet_tower.preprocess(fixed_image(96))] * 2)
        assert pixels.shape == (2, 3, 224, 224)
        features = efficientnet_tower(pixels)
    assert efficientnet_tower.dim == 1280 and features.shape == (2, 1280)
    assert torch.isfinite(features).all()
    texts = ["a black cat", "un gato negro", "a red car"]
    for tower in (e5_tower, minilm_tower):
        encoded = tower.encode(texts)
        assert tower.dim == 384 and encoded.shape == (3, 384), tower.name
        assert encoded.dtype == torch.float32 and torch.isfinite(encoded).all()
        assert tower.encode([]).shape == (0, 384), tower.name


@pytest.mark.slow
def test_e5_is_multilingual(e5_tower):
    cat, gato, car = torch.nn.functional.normalize(
        e5_tower.encode(["a black cat", "un gato negro", "a red car"]), dim=-1
    )
    assert float(gato @ cat) > float(gato @ car)


@pytest.mark.slow
def test_efficientnet_lite0_golden(efficientnet_tower):
    # A 16-layer network in float32: summation order differs across CPU kernels and thread
    # counts, so the tolerance is 1e-4 (values are of order 0.1 to 5) rather than the tiny 1e-5.
    features = image_features(efficientnet_tower, 224)
    assert_matches(features, read_golden("efficientnet_lite0.json")["values"], 1e-4)


def regenerate() -> None:
    GOLDEN.mkdir(exist_ok=True)
    write_golden("tiny_image.json", tiny_image_golden())
    write_golden("tiny_text.json", tiny_text_golden())
    write_golden(
        "efficientnet_lite0.json", efficientnet_golden(create_image_tower("efficientnet-lite0"))
    )
    print(f"wrote {sorted(p.name for p in GOLDEN.glob('*.json'))}")


if __name__ == "__main__":
    if "--regenerate" not in sys.argv:
        sys.exit(f"usage: {REGENERATE}")
    regenerate()
