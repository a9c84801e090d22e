"""The seed document's figures on fixed, seeded triplets of a whole set (validation and
evaluation read them; no training step does)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from artsim.losses.triplet import TRIPLET_FAMILIES
from artsim.losses.weights import LossWeights
from artsim.triplets import sample_fixed_triplets


@torch.no_grad()
def seed_document_figures(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    labels: torch.Tensor,
    has_text: torch.Tensor,
    margin: float = 0.2,
    seed: int = 0,
    weights: LossWeights | None = None,
) -> dict[str, float]:
    """The seed's figures on fixed, seeded random triplets over a whole set of items.

    Keys: ``loss, triplet_acc, image_loss, image_acc, text_loss, text_acc, i2t_loss, i2t_acc,
    t2i_loss, t2i_acc, cross_loss, cross_acc``. Each family uses one random positive and one random
    negative per anchor, the same for every call with the same seed and labels.
    """
    weights = weights or LossWeights()
    texts, text_labels = text_embeddings[has_text], labels[has_text]
    inputs = {
        "image": (image_embeddings, labels, None, None),
        "text": (texts, text_labels, None, None),
        "i2t": (image_embeddings, labels, texts, text_labels),
        "t2i": (texts, text_labels, image_embeddings, labels),
    }
    figures: dict[str, float] = {}
    counts: dict[str, int] = {}
    for offset, (family, (anchors, anchor_labels, refs, ref_labels)) in enumerate(inputs.items()):
        a, p, n = sample_fixed_triplets(anchor_labels, ref_labels, seed=seed + offset)
        references = anchors if refs is None else refs
        counts[family] = len(a)
        if len(a) == 0:
            figures[f"{family}_loss"], figures[f"{family}_acc"] = float("nan"), float("nan")
            continue
        anchor_vectors = F.normalize(anchors[a], dim=-1)
        d_ap = 1.0 - (anchor_vectors * F.normalize(references[p], dim=-1)).sum(-1)
        d_an = 1.0 - (anchor_vectors * F.normalize(references[n], dim=-1)).sum(-1)
        figures[f"{family}_loss"] = float(F.relu(d_ap - d_an + margin).mean())
        figures[f"{family}_acc"] = float((d_ap < d_an).float().mean())

    def pooled(families, key):
        total = sum(counts[f] for f in families)
        if total == 0:
            return float("nan")
        return sum(counts[f] * figures[f"{f}_{key}"] for f in families if counts[f]) / total

    figures["cross_loss"] = pooled(("i2t", "t2i"), "loss")
    figures["cross_acc"] = pooled(("i2t", "t2i"), "acc")
    figures["triplet_acc"] = pooled(TRIPLET_FAMILIES, "acc")
    parts = [
        (weights.image, figures["image_loss"]),
        (weights.text, figures["text_loss"]),
        (weights.cross, figures["cross_loss"]),
    ]
    figures["loss"] = sum(w * v for w, v in parts if v == v)  # NaN parts (no triplets) drop out
    return {key: figures[key] for key in sorted(figures)}
