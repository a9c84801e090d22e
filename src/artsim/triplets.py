"""Which items meet in a batch, and which triplets are measured.

* :class:`GroupBatchSampler` puts several items of each group in a batch, so that every anchor has
  positives for the in-batch miners.
* :func:`sample_fixed_triplets` draws one seeded (anchor, positive, negative) per anchor: the
  seed's "triplet accuracy" figure, the same every epoch so that validation numbers compare.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


class GroupBatchSampler(Sampler[list[int]]):
    """Batches of ``groups_per_batch`` groups x up to ``items_per_group`` items.

    Every epoch shuffles groups and items with ``seed + epoch`` (call :meth:`set_epoch`; Lightning
    does), so a resumed run sees the same batches as an uninterrupted one. With several processes
    each takes its share of the groups of every batch, so all make the same number of steps.
    """

    def __init__(
        self,
        labels: Sequence[int],
        groups_per_batch: int = 16,
        items_per_group: int = 4,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.labels = np.asarray(labels)
        self.groups_per_batch = max(2, groups_per_batch)
        self.items_per_group = max(2, items_per_group)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self._members = [np.flatnonzero(self.labels == g) for g in np.unique(self.labels)]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _global_batches(self) -> list[list[list[int]]]:
        """Every process's batches of this epoch, each a list of per-group chunks of indices."""
        rng = np.random.default_rng([self.seed, self.epoch])
        # A group larger than items_per_group is cut into several chunks, so every item is seen.
        chunks = []
        for members in self._members:
            shuffled = rng.permutation(members)
            for start in range(0, len(shuffled), self.items_per_group):
                chunks.append(shuffled[start : start + self.items_per_group].tolist())
        order = rng.permutation(len(chunks))
        batches = [
            [chunks[c] for c in order[start : start + self.groups_per_batch]]
            for start in range(0, len(order), self.groups_per_batch)
        ]
        # A batch needs two groups (else no negatives) and a chunk for every process: a batch
        # short of either joins the one before it (the first joins the second).
        merged: list[list[list[int]]] = []
        for batch in batches:
            if merged and not self._usable(batch):
                merged[-1].extend(batch)
            else:
                merged.append(batch)
        if len(merged) > 1 and not self._usable(merged[0]):
            merged[1] = merged[0] + merged[1]
            merged.pop(0)
        return merged

    def _usable(self, batch: list[list[int]]) -> bool:
        groups = {int(self.labels[chunk[0]]) for chunk in batch}
        return len(groups) >= 2 and len(batch) >= self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        # Each process takes every world_size-th chunk of the same global batch: all processes
        # make the same number of steps, together covering the batch. Training gathers the
        # processes' embeddings, so triplets are mined over the whole batch.
        for chunks in self._global_batches():
            yield [index for chunk in chunks[self.rank :: self.world_size] for index in chunk]

    def __len__(self) -> int:
        return len(self._global_batches())


def sample_fixed_triplets(
    labels: torch.Tensor,
    ref_labels: torch.Tensor | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One (anchor, positive, negative) per anchor that has both, drawn with a fixed seed.

    Positives share the anchor's label, negatives do not; when ``ref_labels`` is None the
    references are the anchors themselves and an anchor is never its own positive.
    Returns index tensors into anchors, references, references.
    """
    same_set = ref_labels is None
    anchors = np.asarray(labels.cpu())
    refs = anchors if same_set else np.asarray(ref_labels.cpu())
    rng = np.random.default_rng(seed)
    by_label: dict[int, np.ndarray] = {}
    for label in np.unique(refs):
        by_label[int(label)] = np.flatnonzero(refs == label)
    anchor_out, positive_out, negative_out = [], [], []
    for index, label in enumerate(anchors):
        positives = by_label.get(int(label), np.array([], dtype=int))
        if same_set:
            positives = positives[positives != index]
        n_negatives = len(refs) - len(by_label.get(int(label), ()))
        if len(positives) == 0 or n_negatives == 0:
            continue
        positive = positives[rng.integers(len(positives))]
        # rejection sampling is exact and cheap: negatives are the great majority
        while True:
            negative = int(rng.integers(len(refs)))
            if refs[negative] != label:
                break
        anchor_out.append(index)
        positive_out.append(int(positive))
        negative_out.append(negative)
    # on the labels' device, so the indices follow the embeddings wherever they live
    as_tensor = lambda values: torch.as_tensor(values, dtype=torch.long, device=labels.device)  # noqa: E731
    return as_tensor(anchor_out), as_tensor(positive_out), as_tensor(negative_out)
