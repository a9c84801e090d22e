"""The training configuration: defaults, a YAML file, then command-line options, in that order."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from artsim import runfolder
from artsim.errors import UserError
from artsim.model.heads import ModelConfig
from artsim.model.towers import DEFAULT_IMAGE_TOWER, DEFAULT_TEXT_TOWER

_MODEL_DEFAULTS = {
    field.name: field.default
    for field in dataclasses.fields(ModelConfig)
    if field.default is not dataclasses.MISSING
}


@dataclass
class TrainConfig:
    """Everything a run depends on; written resolved to ``RUN_DIR/config.yaml``."""

    data: str = ""
    out: str = "runs/latest"
    val_fraction: float = 0.2
    # share of the validation groups set aside for calibrating verdicts (never used to choose)
    calib_fraction: float = 0.5
    split: str | None = None
    seed: int = 0
    max_epochs: int = 60
    image_tower: str = DEFAULT_IMAGE_TOWER
    text_tower: str = DEFAULT_TEXT_TOWER
    # the heads' defaults are the model's (one source of truth: ModelConfig)
    embed_dim: int = _MODEL_DEFAULTS["embed_dim"]
    hidden_dim: int = _MODEL_DEFAULTS["hidden_dim"]
    dropout: float = _MODEL_DEFAULTS["dropout"]
    margin: float = 0.2
    miner: str = "random"  # measured best on the demo corpus (BENCHMARKS.md)
    hard_negatives: str | None = None  # None, "artist" or "category": negatives that share it
    loss_weights: dict[str, float] = field(
        default_factory=lambda: {"image": 1.0, "text": 1.0, "cross": 1.0}
    )
    groups_per_batch: int = 32
    items_per_group: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    min_lr: float = 1e-6
    early_stopping_patience: int = 5
    early_stopping_min_delta: float = 1e-4
    finetune_epochs: int = 0
    finetune_lr: float = 1e-5
    finetune_blocks: int = 2
    devices: int = 1
    num_nodes: int = 1
    accelerator: str = "auto"
    cache_dir: str | None = None
    max_pixels: int = 50_000_000
    progress: bool = True

    def validate(self) -> TrainConfig:
        """Raise UserError on values that cannot work, naming the option."""
        if not self.data:
            raise UserError("--data MANIFEST is required")
        if self.split is None and not 0.0 < self.val_fraction < 1.0:
            raise UserError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        if self.split is None and not 0.0 <= self.calib_fraction < 1.0:
            raise UserError(f"--calib-fraction must be in [0, 1), got {self.calib_fraction}")
        if self.max_epochs < 1:
            raise UserError(f"--max-epochs must be at least 1, got {self.max_epochs}")
        if self.miner not in ("random", "semihard", "hard"):
            raise UserError(f"miner must be random, semihard or hard, got {self.miner!r}")
        if self.hard_negatives not in (None, "artist", "category"):
            raise UserError(
                f"hard_negatives must be artist or category, got {self.hard_negatives!r}"
            )
        unknown = set(self.loss_weights) - {"image", "text", "cross"}
        if unknown:
            raise UserError(f"loss_weights: unknown parts {sorted(unknown)} (image, text, cross)")
        if self.devices < 1 or self.num_nodes < 1:
            raise UserError("--devices and --num-nodes must be at least 1")
        return self


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict of TrainConfig fields (unknown keys are an error)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from error
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of options at the top level")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UserError(f"{path}: unknown options {', '.join(unknown)}")
    return raw


def resolve_config(config_file: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the YAML file, then the options given (``None`` means not given)."""
    values: dict[str, Any] = {}
    if config_file:
        values.update(load_config_file(config_file))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**values).validate()


def write_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as ``config.yaml`` (:func:`artsim.runfolder.write_config`)."""
    runfolder.write_config(asdict(config), path)


def read_config(path: str | Path) -> TrainConfig:
    """A ``config.yaml`` read back as a :class:`TrainConfig` (unknown keys are an error)."""
    return TrainConfig(**load_config_file(path))
