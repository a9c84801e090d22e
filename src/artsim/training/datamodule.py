"""Items -> cached tower features -> tensors the heads train on, split by group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from artsim.data.manifest.items import Item
from artsim.triplets import GroupBatchSampler


@dataclass
class FeatureSet(Dataset):
    """Tower features of a list of items, with group labels and hard-negative keys."""

    ids: list[str]
    image: torch.Tensor  # (N, image_dim)
    text: torch.Tensor  # (N, text_dim), zero rows where has_text is False
    has_text: torch.Tensor  # (N,) bool
    labels: torch.Tensor  # (N,) long: group index
    affinity: torch.Tensor  # (N,) long: artist/category index, -1 if unknown

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "image": self.image[index],
            "text": self.text[index],
            "has_text": self.has_text[index],
            "label": self.labels[index],
            "affinity": self.affinity[index],
        }

    def all(self) -> dict[str, torch.Tensor]:
        """The whole set as one batch (validation embeds everything at once)."""
        return {
            "image": self.image,
            "text": self.text,
            "has_text": self.has_text,
            "label": self.labels,
            "affinity": self.affinity,
        }


def affinity_value(item: Item, key: str | None) -> str:
    if key == "artist":
        return item.artist
    if key == "category":
        return item.metadata.get("category", "")
    return ""


def build_feature_set(
    items: Sequence[Item],
    image_features: np.ndarray,
    text_features: np.ndarray,
    group_index: dict[str, int],
    hard_negatives: str | None = None,
) -> FeatureSet:
    """Tensors for ``items`` (rows of the feature matrices follow ``items``)."""
    affinity_names = sorted({affinity_value(i, hard_negatives) for i in items} - {""})
    affinity_index = {name: k for k, name in enumerate(affinity_names)}
    return FeatureSet(
        ids=[item.id for item in items],
        image=torch.from_numpy(np.ascontiguousarray(image_features, dtype=np.float32)),
        text=torch.from_numpy(np.ascontiguousarray(text_features, dtype=np.float32)),
        has_text=torch.tensor([item.has_text for item in items], dtype=torch.bool),
        labels=torch.tensor([group_index[item.group] for item in items], dtype=torch.long),
        affinity=torch.tensor(
            [affinity_index.get(affinity_value(i, hard_negatives), -1) for i in items],
            dtype=torch.long,
        ),
    )


class _WholeSet(Dataset):
    """A dataset of one element: the whole feature set (validation is one batch)."""

    def __init__(self, features: FeatureSet):
        self.features = features

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.features.all()


class FeatureDataModule(pl.LightningDataModule):
    """Group-balanced training batches; the whole validation set as one batch."""

    def __init__(
        self,
        train: FeatureSet,
        val: FeatureSet,
        groups_per_batch: int,
        items_per_group: int,
        seed: int,
    ):
        super().__init__()
        self.train_set, self.val_set = train, val
        self.groups_per_batch, self.items_per_group, self.seed = (
            groups_per_batch,
            items_per_group,
            seed,
        )

    def train_dataloader(self) -> DataLoader:
        rank = self.trainer.global_rank if self.trainer else 0
        world = self.trainer.world_size if self.trainer else 1
        sampler = GroupBatchSampler(
            self.train_set.labels.tolist(),
            self.groups_per_batch,
            self.items_per_group,
            seed=self.seed,
            rank=rank,
            world_size=world,
        )
        return DataLoader(self.train_set, batch_sampler=sampler, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        # Every process measures the whole validation set: the figures are exact and identical.
        return DataLoader(_WholeSet(self.val_set), batch_size=None, num_workers=0)
