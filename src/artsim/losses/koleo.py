"""The KoLeo spreading regulariser (Sablayrolles et al. 2019), as SSCD uses it."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def koleo_loss(
    embeddings: torch.Tensor, labels: torch.Tensor | None = None, eps: float = 1e-8
) -> torch.Tensor:
    """KoLeo spreading regulariser: ``-mean_i log(min_j ||x_i - x_j||)`` over unit vectors.

    The Kozachenko-Leonenko entropy estimate up to constants; minimising it pushes each vector
    away from its nearest neighbour. With ``labels`` the neighbour is the nearest vector of
    another group (SSCD: copies of one picture should stay close). Vectors without any
    neighbour are left out; 0 when none has one.
    """
    vectors = F.normalize(embeddings, dim=-1)
    n = len(vectors)
    allowed = ~torch.eye(n, dtype=torch.bool, device=vectors.device)
    if labels is not None:
        allowed &= labels[:, None] != labels[None, :]
    has_neighbour = allowed.any(dim=1)
    if not has_neighbour.any():
        return embeddings.sum() * 0.0
    with torch.no_grad():
        similarity = (vectors @ vectors.T).masked_fill(~allowed, float("-inf"))
        nearest = similarity.argmax(dim=1)
    rows = has_neighbour.nonzero(as_tuple=True)[0]
    distances = (vectors[rows] - vectors[nearest[rows]]).norm(dim=1)
    return -torch.log(distances + eps).mean()
