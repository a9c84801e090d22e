"""Embedding (evaluation, index, service) creates every tensor on the model's device."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from artsim.model.embedder import Embedder
from artsim.model.heads import ArtSimModel, ModelConfig, save_model


def test_embedder_follows_its_device(foreign_default_device, synthetic_manifest, tmp_path):
    torch.manual_seed(0)
    save_model(ArtSimModel(ModelConfig("tiny-bn", "tiny", 32, 32, embed_dim=8)), tmp_path)
    embedder = Embedder.from_run(tmp_path, cache_dir=False, device="cpu")
    paths = sorted((synthetic_manifest.parent / "images").glob("*.png"))[:5]
    texts = ["a red fox", "", "un zorro rojo"]
    pictures = [Image.open(path).convert("RGB") for path in paths[:2]]
    expected = (
        embedder.embed_images(paths),
        embedder.embed_texts(texts),
        embedder.embed_pil(pictures),
    )
    with foreign_default_device():
        got = (
            embedder.embed_images(paths),
            embedder.embed_texts(texts),
            embedder.embed_pil(pictures),
        )
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have, want, rtol=1e-6, atol=1e-6)
