"""The copy part: InfoNCE with several positives over the image vectors (SSCD-style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multi_positive_info_nce(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """InfoNCE with several positives (SupCon, Khosla et al. 2020) over one set of vectors.

    For every anchor that has another item of its group in the set, the mean over those
    positives ``p`` of ``-log(exp(cos(a, p) / t) / sum_{j != a} exp(cos(a, j) / t))``: every item
    of another group is a negative. The mean over such anchors; 0 (with a gradient path) when no
    anchor has a positive.
    """
    vectors = F.normalize(embeddings, dim=-1)
    logits = vectors @ vectors.T / temperature
    n = len(labels)
    self_mask = torch.eye(n, dtype=torch.bool, device=labels.device)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    log_prob = (
        logits - torch.logsumexp(logits.masked_fill(self_mask, float("-inf")), dim=1)[:, None]
    )
    counts = positive.sum(dim=1)
    anchors = counts > 0
    if not anchors.any():
        return embeddings.sum() * 0.0
    per_anchor = -(log_prob * positive).sum(dim=1)[anchors] / counts[anchors]
    return per_anchor.mean()
