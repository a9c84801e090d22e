"""The triplet margin loss, and the four triplet families of a batch with one signature."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from artsim.losses.copy import multi_positive_info_nce
from artsim.losses.distances import cosine_distance_matrix
from artsim.losses.koleo import koleo_loss
from artsim.losses.miners import Miner, RandomMiner, SemiHardMiner
from artsim.losses.weights import LossWeights

TRIPLET_FAMILIES = ("image", "text", "i2t", "t2i")


class TripletMarginLoss(nn.Module):
    """Mean of ``relu(d(a, p) - d(a, n) + margin)`` over mined triplets, with its accuracy.

    ``hard_negative_mask`` (anchors x references, optional) narrows the negatives to those that
    share something with the anchor (the same artist or category) where the anchor has any.
    Returns ``(loss, accuracy, n_triplets)``; accuracy uses a random negative per pair, so it is
    the seed's figure whatever the miner.
    """

    def __init__(self, margin: float = 0.2, miner: Miner | None = None):
        super().__init__()
        self.margin = margin
        self.miner = miner or SemiHardMiner()
        self._random = RandomMiner()

    def forward(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        ref_embeddings: torch.Tensor | None = None,
        ref_labels: torch.Tensor | None = None,
        hard_negative_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        same_set = ref_embeddings is None
        references = embeddings if same_set else ref_embeddings
        reference_labels = labels if same_set else ref_labels
        distances = cosine_distance_matrix(embeddings, references)
        same = labels[:, None] == reference_labels[None, :]
        positive_mask = same.clone()
        if same_set:
            positive_mask.fill_diagonal_(False)
        negative_mask = ~same
        mining_mask = negative_mask
        if hard_negative_mask is not None:
            narrowed = negative_mask & hard_negative_mask
            # anchors without such a negative keep all of theirs
            mining_mask = torch.where(narrowed.any(dim=1, keepdim=True), narrowed, negative_mask)
        zero = embeddings.sum() * 0.0
        if not positive_mask.any() or not negative_mask.any():
            return zero, zero.detach(), 0
        with torch.no_grad():
            mined = self.miner(distances.detach(), positive_mask, mining_mask, generator)
            measured = self._random(distances.detach(), positive_mask, negative_mask, generator)
        if len(mined.anchors) == 0:
            return zero, zero.detach(), 0
        d_ap = distances[mined.anchors, mined.positives]
        d_an = distances[mined.anchors, mined.negatives]
        loss = F.relu(d_ap - d_an + self.margin).mean()
        accuracy = (
            (
                distances[measured.anchors, measured.positives]
                < distances[measured.anchors, measured.negatives]
            )
            .float()
            .mean()
        )
        return loss, accuracy.detach(), len(mined.anchors)


class MultimodalTripletLoss(nn.Module):
    """The four triplet families of a batch, as a named dict of losses and accuracies.

    Returns ``{"image", "text", "i2t", "t2i", "cross", "copy", "koleo", "total"}`` losses and
    ``{"<family>_acc", "cross_acc", "triplet_acc"}`` accuracies (``triplet_acc`` pools every
    family's triplets, weighted by their number). ``copy`` and ``koleo`` are computed only when
    their weight is above 0 (else 0).
    """

    def __init__(
        self,
        loss: TripletMarginLoss,
        weights: LossWeights | None = None,
        temperature: float = 0.1,
    ):
        super().__init__()
        self.loss = loss
        self.weights = weights or LossWeights()
        self.temperature = temperature

    def forward(
        self,
        image_embeddings: torch.Tensor,
        text_embeddings: torch.Tensor,
        labels: torch.Tensor,
        has_text: torch.Tensor,
        affinity: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        texts, text_labels = text_embeddings[has_text], labels[has_text]
        text_affinity = affinity[has_text][:, has_text] if affinity is not None else None
        parts = {
            "image": self.loss(image_embeddings, labels, None, None, affinity, generator),
            "text": self.loss(texts, text_labels, None, None, text_affinity, generator),
            "i2t": self.loss(
                image_embeddings, labels, texts, text_labels,
                affinity[:, has_text] if affinity is not None else None, generator,
            ),
            "t2i": self.loss(
                texts, text_labels, image_embeddings, labels,
                affinity[has_text] if affinity is not None else None, generator,
            ),
        }  # fmt: skip
        out: dict[str, torch.Tensor] = {}
        for family, (loss, accuracy, count) in parts.items():
            out[family] = loss
            out[f"{family}_acc"] = accuracy
            # on the embeddings' device: the weighted accuracies below mix counts and accuracies
            out[f"{family}_n"] = torch.tensor(float(count), device=image_embeddings.device)
        out["cross"] = (out["i2t"] + out["t2i"]) / 2
        out["cross_acc"] = _weighted_accuracy(out, ("i2t", "t2i"))
        out["triplet_acc"] = _weighted_accuracy(out, TRIPLET_FAMILIES)
        w = self.weights
        zero = image_embeddings.sum() * 0.0
        out["copy"] = (
            multi_positive_info_nce(image_embeddings, labels, self.temperature)
            if w.copy > 0
            else zero
        )
        out["koleo"] = koleo_loss(image_embeddings, labels) if w.koleo > 0 else zero
        out["total"] = (
            w.image * out["image"]
            + w.text * out["text"]
            + w.cross * out["cross"]
            + w.copy * out["copy"]
            + w.koleo * out["koleo"]
        )
        return out


def _weighted_accuracy(parts: dict[str, torch.Tensor], families) -> torch.Tensor:
    counts = torch.stack([parts[f"{f}_n"] for f in families])
    accuracies = torch.stack([parts[f"{f}_acc"].float() for f in families])
    return (counts * accuracies).sum() / counts.sum().clamp_min(1.0)
