"""Never worse than frozen: trained and frozen similarities blended into one embedding.

A trained head can forget what the frozen towers already knew about art it never saw. The blend
keeps both: the image score is ``a * trained cosine + (1 - a) * frozen cosine`` (``a`` =
``ModelConfig.image_blend``), the same for text, and the fused score weighs the image and text
scores by ``fused_image_weight``. ``a = 0`` is the frozen towers alone.

The blend lives in the embedding itself, so a plain dot product (and so every faiss or Milvus
index) gives the blended score: an image embeds as
``[sqrt(a_i) * trained | sqrt(1 - a_i) * frozen image | 0]`` and a text as
``[sqrt(a_t) * trained | 0 | sqrt(1 - a_t) * frozen text]``, each part unit length. Image-image
dot products are then ``a_i * trained + (1 - a_i) * frozen``, and cross-modal ones keep the
trained heads' ranking (scaled by ``sqrt(a_i * a_t)``).

The frozen image part is the tower's descriptor PCA-whitened on the training originals
(:func:`fit_whitening`): whitening spreads the variance a narrow corpus piles into a few
directions, which helps retrieval on other styles (BENCHMARKS.md, Generalisation).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def fit_whitening(
    features: np.ndarray, dim: int, shrinkage: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """PCA-whitening of ``features`` (rows): returns (mean, projection features_dim x dim).

    ``shrinkage`` adds that share of the mean of all eigenvalues to each kept one before dividing,
    so the many near-empty directions of a small corpus are not blown up into noise.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError("whitening needs a matrix of at least two rows")
    dim = max(1, min(dim, features.shape[1], len(features) - 1))
    mean = features.mean(axis=0)
    centred = features - mean
    covariance = centred.T @ centred / len(features)
    values, vectors = np.linalg.eigh(covariance)
    shrink = shrinkage * float(np.mean(np.clip(values, 0.0, None)))  # mean of all eigenvalues
    order = np.argsort(values)[::-1][:dim]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
    scale = values + shrink + 1e-12
    projection = vectors / np.sqrt(scale)[None, :]
    return mean.astype(np.float32), projection.astype(np.float32)


def whiten(features: torch.Tensor, mean: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """Centred, projected and L2-normalised features; an empty projection only normalises."""
    if projection.numel() == 0:
        return F.normalize(features, dim=-1)
    return F.normalize((features - mean) @ projection, dim=-1)


def blend_parts(
    trained: torch.Tensor,
    frozen: torch.Tensor,
    weight: float,
    before: int,
    after: int,
) -> torch.Tensor:
    """``[sqrt(w) * trained | zeros(before) | sqrt(1 - w) * frozen | zeros(after)]``."""
    rows = trained.shape[0]
    zeros = trained.new_zeros
    return torch.cat(
        [
            math.sqrt(weight) * trained,
            zeros(rows, before),
            math.sqrt(1.0 - weight) * frozen,
            zeros(rows, after),
        ],
        dim=1,
    )


def fuse(
    image: np.ndarray, text: np.ndarray, has_text: np.ndarray | None, image_weight: float = 0.5
) -> np.ndarray:
    """``sqrt(w) * image + sqrt(1 - w) * text``, renormalised; image alone where no text.

    For unit vectors whose image and text parts are orthogonal (the frozen parts of a blend),
    the dot product of two fused vectors is ``w * image cosine + (1 - w) * text cosine``.
    ``w = 0.5`` is the plain sum of the two.
    """
    if has_text is None:
        has_text = np.linalg.norm(text, axis=1) > 0
    fused = math.sqrt(image_weight) * image + np.where(
        has_text[:, None], math.sqrt(1.0 - image_weight) * text, 0.0
    )
    norms = np.linalg.norm(fused, axis=1, keepdims=True)
    return (fused / np.maximum(norms, 1e-12)).astype(np.float32)
