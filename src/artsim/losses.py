"""Triplet losses for the four triplet families, with one signature for all of them.

``loss(embeddings, labels, ref_embeddings, ref_labels)`` compares anchors (``embeddings``) with
references: image-image passes images twice (``ref_* = None``), text-text texts twice, i2t images
against texts, t2i texts against images. Distances are cosine distances ``1 - cos``. Which
negatives make the triplets is the miner's business (passed in, not a flag).

Two more named parts work on the batch's image vectors as copy groups (SSCD, Pizzi et al. 2022):
``copy``, a contrastive loss with every other item of the batch a negative
(:func:`multi_positive_info_nce`), and ``koleo``, a spreading regulariser
(:func:`koleo_loss`, Sablayrolles et al. 2019). Their weights default to 0 here; training
weighs ``koleo`` 1 (:class:`artsim.training.config.TrainConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from artsim.triplets import sample_fixed_triplets

TRIPLET_FAMILIES = ("image", "text", "i2t", "t2i")


def cosine_distance_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos(a_i, b_j)`` for every pair (inputs need not be normalised)."""
    return 1.0 - F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


@dataclass
class TripletBatch:
    """Mined triplets: index tensors into anchors, references, references."""

    anchors: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor


class Miner:
    """Chooses, for every (anchor, positive) pair, one negative from the distance matrix."""

    def __call__(
        self,
        distances: torch.Tensor,
        positive_mask: torch.Tensor,
        negative_mask: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> TripletBatch:
        anchors, positives = positive_mask.nonzero(as_tuple=True)
        keep = negative_mask[anchors].any(dim=1)
        anchors, positives = anchors[keep], positives[keep]
        negatives = self.choose(distances, anchors, positives, negative_mask, generator)
        return TripletBatch(anchors, positives, negatives)

    def choose(self, distances, anchors, positives, negative_mask, generator) -> torch.Tensor:
        raise NotImplementedError


class RandomMiner(Miner):
    """A uniformly random negative: the easy triplets the seed's accuracy figure uses."""

    def choose(self, distances, anchors, positives, negative_mask, generator):
        weights = negative_mask[anchors].float()
        if len(anchors) == 0:
            return anchors
        return torch.multinomial(weights, 1, generator=generator).squeeze(1)


class HardMiner(Miner):
    """The closest negative of each anchor."""

    def choose(self, distances, anchors, positives, negative_mask, generator):
        masked = distances[anchors].masked_fill(~negative_mask[anchors], float("inf"))
        return masked.argmin(dim=1)


class SemiHardMiner(Miner):
    """The closest negative farther than the positive (FaceNet); the hardest one if none is."""

    def choose(self, distances, anchors, positives, negative_mask, generator):
        rows = distances[anchors]
        positive_distance = rows.gather(1, positives[:, None])
        semi_hard = negative_mask[anchors] & (rows > positive_distance)
        masked = rows.masked_fill(~semi_hard, float("inf"))
        choice = masked.argmin(dim=1)
        hardest = rows.masked_fill(~negative_mask[anchors], float("inf")).argmin(dim=1)
        return torch.where(semi_hard.any(dim=1), choice, hardest)


MINERS = {"random": RandomMiner, "semihard": SemiHardMiner, "hard": HardMiner}


def create_miner(name: str) -> Miner:
    """``random``, ``semihard`` or ``hard``."""
    if name not in MINERS:
        raise ValueError(f"unknown miner {name!r}; known: {', '.join(MINERS)}")
    return MINERS[name]()


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


@dataclass
class LossWeights:
    """How much each part counts in ``total``; ``cross`` is the mean of i2t and t2i.

    ``copy`` (:func:`multi_positive_info_nce` over the image vectors, groups as positives) and
    ``koleo`` (:func:`koleo_loss` over the image vectors) are off here (training's default
    weighs ``koleo`` 1: :class:`artsim.training.config.TrainConfig`).
    """

    image: float = 1.0
    text: float = 1.0
    cross: float = 1.0
    copy: float = 0.0
    koleo: float = 0.0


LOSS_PARTS = ("image", "text", "cross", "copy", "koleo")


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
