"""The optional second stage: the image tower's last blocks fine-tuned at a lower learning rate,
on augmented images (the seed's two recommendations).

Stage one leaves the heads trained on cached features; here the image tower runs in every step,
so an epoch costs a full forward and backward pass through its last blocks. Batch norm keeps its
ImageNet statistics (the tower stays in eval mode), which is what small batches need.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from artsim.data.families.training.augment import augment_image
from artsim.data.manifest.items import Item
from artsim.data.pictures.images import load_rgb
from artsim.model.heads import ModelConfig
from artsim.model.towers import ImageTower
from artsim.training.config import TrainConfig
from artsim.training.datamodule import FeatureSet
from artsim.training.module import TripletModule
from artsim.triplets import GroupBatchSampler

# The tower is kept in eval mode on purpose (frozen batch-norm statistics).
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")


def finetune_rows(items: Sequence[Item], groups: int, seed: int) -> list[int]:
    """Rows of ``items`` in ``groups`` of their groups drawn with ``seed`` (every row when
    ``groups`` is 0 or not below the number of groups): the fine-tune stage's training items."""
    names = sorted({item.group for item in items})
    if groups <= 0 or groups >= len(names):
        return list(range(len(items)))
    drawn = {
        names[k] for k in np.random.default_rng(seed).choice(len(names), groups, replace=False)
    }
    return [row for row, item in enumerate(items) if item.group in drawn]


def subset(features: FeatureSet, rows: Sequence[int]) -> FeatureSet:
    """The rows of a feature set (group and affinity indices unchanged)."""
    index = torch.as_tensor(list(rows), dtype=torch.long)
    return FeatureSet(
        ids=[features.ids[row] for row in rows],
        image=features.image[index],
        text=features.text[index],
        has_text=features.has_text[index],
        labels=features.labels[index],
        affinity=features.affinity[index],
    )


class PixelSet(Dataset):
    """Items' images as tower input (augmented when training), with their cached text features."""

    def __init__(
        self,
        items: Sequence[Item],
        features: FeatureSet,
        tower: ImageTower,
        augment: bool,
        seed: int,
        max_pixels: int,
    ):
        self.items, self.features, self.tower = list(items), features, tower
        self.augment, self.seed, self.max_pixels = augment, seed, max_pixels
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = load_rgb(self.items[index].image, max_pixels=self.max_pixels)
        if self.augment:
            # seeded by (seed, epoch, item): a resumed run sees the same views
            image = augment_image(image, np.random.default_rng([self.seed, self.epoch, index]))
        row = self.features[index]
        row["image"] = self.tower.preprocess(image)
        return row


class FinetuneDataModule(pl.LightningDataModule):
    def __init__(self, train: PixelSet, val: PixelSet, config: TrainConfig):
        super().__init__()
        self.train_set, self.val_set, self.config = train, val, config

    def train_dataloader(self) -> DataLoader:
        sampler = GroupBatchSampler(
            self.train_set.features.labels.tolist(),
            self.config.groups_per_batch,
            self.config.items_per_group,
            seed=self.config.seed,
            rank=self.trainer.global_rank if self.trainer else 0,
            world_size=self.trainer.world_size if self.trainer else 1,
        )
        return DataLoader(self.train_set, batch_sampler=sampler, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=64, shuffle=False, num_workers=0)


class FinetuneModule(TripletModule):
    """Stage two: the heads of stage one plus the image tower's last ``finetune_blocks`` blocks."""

    def __init__(self, model_config: ModelConfig, config: TrainConfig, tower: ImageTower):
        super().__init__(model_config, config)
        self.image_tower = tower
        for parameter in tower.parameters():
            parameter.requires_grad_(False)
        self.tower_parameters = tower.finetune_parameters(config.finetune_blocks)
        for parameter in self.tower_parameters:
            parameter.requires_grad_(True)

    def train(self, mode: bool = True):
        super().train(mode)
        self.image_tower.eval()  # frozen batch-norm statistics, no tower dropout
        return self

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self.trainer.datamodule.train_set.epoch = self.current_epoch

    def image_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.image_tower(batch["image"])

    def parameter_groups(self) -> list[dict]:
        # the heads move ten times faster than the pretrained blocks under them
        return [
            {"params": self.tower_parameters, "lr": self.config.finetune_lr},
            {"params": list(self.model.parameters()), "lr": self.config.finetune_lr * 10},
        ]

    def tower_state(self) -> dict[str, torch.Tensor]:
        """The whole image tower's weights, to ship beside the heads."""
        return {k: v.detach().cpu() for k, v in self.image_tower.state_dict().items()}
