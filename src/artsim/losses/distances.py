"""Cosine distances, the one distance of every loss here."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_distance_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos(a_i, b_j)`` for every pair (inputs need not be normalised)."""
    return 1.0 - F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
