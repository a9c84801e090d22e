"""Miners: which negative each (anchor, positive) pair of a batch gets."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
