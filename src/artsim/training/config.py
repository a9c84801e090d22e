"""The training configuration: defaults, a YAML file, then command-line options, in that order."""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from artsim import runfolder
from artsim.data.manifest.split import DEFAULT_CALIB_FRACTION, DEFAULT_VAL_FRACTION
from artsim.errors import UserError
from artsim.losses.weights import LOSS_PARTS, LossWeights
from artsim.model.config import (
    DEFAULT_BRIDGE_RATIO,
    DEFAULT_IMAGE_TOWER,
    DEFAULT_TEXT_TOWER,
    ModelConfig,
)

# The folds' text queries are prompts written by the same template code as the training prompts,
# so they overrate the trained text part. On prompts of other wording (the held-out family) from
# sources the heads never saw, the full corpus' folds chose 0.25 and art4apps text fell
# significantly below frozen (0.985 against 0.994), while 0.05 was never significantly below
# frozen anywhere and helped where captions are sentences (Tux Paint left out of the full corpus:
# 0.713 at 0.05, 0.700 at 0.01, frozen 0.693; BENCHMARKS.md, "The full corpus"). The text weight
# is chosen among the candidates up to this cap (``TrainConfig.text_blend_max``).
TEXT_BLEND_MAX = 0.05

_MODEL_DEFAULTS = {
    field.name: field.default
    for field in dataclasses.fields(ModelConfig)
    if field.default is not dataclasses.MISSING
}


def option(default: Any, help: str) -> Any:
    """A :class:`TrainConfig` field with its ``help``: the one text ``artsim train --help`` and
    docs/configuration.md show for it."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Everything a run depends on; written resolved to ``RUN_DIR/config.yaml``. Every field is
    an option of ``artsim train`` (``--field-name``), a key of its ``--config`` YAML file and a
    keyword of :func:`artsim.train`; its ``help`` is in the field's metadata."""

    data: str = option("", "manifest (CSV, JSONL or Parquet)")
    out: str = option("runs/latest", "run folder")
    val_fraction: float = option(DEFAULT_VAL_FRACTION, "validation share by group: 0.2 = 80/20")
    # never used to choose anything
    calib_fraction: float = option(
        DEFAULT_CALIB_FRACTION, "share of the validation groups kept for calibrating verdicts"
    )
    split: str | None = option(None, "split file (id,split) instead of --val-fraction")
    seed: int = option(
        0, "seed of the split, the batches, the stand-ins' draws and the heads' initialisation"
    )
    max_epochs: int = option(
        60, "most epochs of the heads stage (early stopping usually ends it sooner)"
    )
    image_tower: str = option(
        DEFAULT_IMAGE_TOWER, "the image tower by name (docs/model.md, Towers, lists them)"
    )
    text_tower: str = option(
        DEFAULT_TEXT_TOWER, "the text tower by name (docs/model.md, Towers, lists them)"
    )
    # the heads' defaults are the model's (one source of truth: ModelConfig)
    embed_dim: int = option(
        _MODEL_DEFAULTS["embed_dim"], "size of the trained heads' output (the shared space)"
    )
    hidden_dim: int = option(
        _MODEL_DEFAULTS["hidden_dim"], "hidden layer of the heads (0: a linear head)"
    )
    dropout: float = option(_MODEL_DEFAULTS["dropout"], "dropout in the heads")
    margin: float = option(0.2, "triplet margin (cosine distance)")
    # random: measured best on the demo corpus (BENCHMARKS.md)
    miner: str = option(
        "random", "how each triplet's negative is picked in the batch: random, semihard or hard"
    )
    hard_negatives: str | None = option(
        None, "artist or category: negatives that share it with the anchor (none: any)"
    )
    # KoLeo 1 on the image vectors: measured over three seeds (BENCHMARKS.md, Copy groups)
    loss_weights: dict[str, float] = field(
        default_factory=lambda: {"image": 1.0, "text": 1.0, "cross": 1.0, "koleo": 1.0},
        metadata={
            "help": "weight of each loss part: image, text, cross (triplets), copy, koleo "
            "(artsim.losses; 0 when not given)"
        },
    )
    copy_temperature: float = option(0.1, "temperature of the copy part's softmax")
    copy_views: int = option(
        0,
        "augmented views per training original, added to its group (artsim.training.views; "
        "0: none)",
    )
    groups_per_batch: int = option(32, "groups in every batch")
    items_per_group: int = option(4, "items of each group in every batch")
    lr: float = option(1e-3, "initial learning rate")
    weight_decay: float = option(1e-4, "AdamW's weight decay")
    plateau_factor: float = option(
        0.5, "learning rate multiplied by this when the validation loss stalls"
    )
    plateau_patience: int = option(2, "epochs without improvement before the learning rate is cut")
    min_lr: float = option(1e-6, "the learning rate is never cut below this")
    early_stopping_patience: int = option(5, "epochs without improvement before training stops")
    early_stopping_min_delta: float = option(
        1e-4, "smallest drop of the validation loss that counts as one"
    )
    # see artsim.training.select
    blend: str = option(
        "loso",
        "blend of trained and frozen scores: loso (chosen on leave-one-source-out folds), "
        "trained (heads alone) or frozen (towers alone)",
    )
    loso_folds: int = option(
        0,
        "leave-one-source-out folds for the blend: 0 = one per source; k >= 2 = the sources "
        "grouped into k folds of similar size (fewer fold trainings on a corpus of many sources)",
    )
    text_blend_max: float = option(
        TEXT_BLEND_MAX,
        "the largest trained text part the folds may choose (their prompts share the training "
        "templates and overrate it)",
    )
    whiten_dim: int = option(768, "PCA-whitening of the frozen image descriptor (0: none)")
    copy_whiten_dim: int = option(
        512, "PCA-whitening of the copy descriptor of a paired tower (CONTENT+COPY; 0: none)"
    )
    # artsim.model.conse
    bridge_ratio: float = option(
        DEFAULT_BRIDGE_RATIO,
        "how much the ConSE bridge (ImageNet classes -> text) counts against the trained heads "
        "in image <-> text search (0: none)",
    )
    bridge_top: int = option(
        5, "how many of the ImageNet classifier's top classes the ConSE bridge weighs"
    )
    finetune_epochs: int = option(
        0, "epochs of the fine-tune stage after the heads stage (0: none)"
    )
    finetune_lr: float = option(
        1e-5, "learning rate of the tower's tuned blocks in the fine-tune stage"
    )
    finetune_blocks: int = option(
        2, "how many of the image tower's last blocks the fine-tune stage trains"
    )
    finetune_groups: int = option(
        0, "fine-tune on the items of this many training groups, drawn with the seed (0: all)"
    )
    # "always" serves to judge a fine-tuned tower on evaluations unlike the training data
    finetune_keep: str = option(
        "better",
        "better: ship the fine-tuned tower only if it beat the heads alone on the validation "
        "loss; always: ship it anyway",
    )
    devices: int = option(1, "processes/GPUs per machine (DDP when > 1)")
    num_nodes: int = option(1, "machines")
    accelerator: str = option("auto", "auto, cpu or gpu")
    precision: str = option("32-true", "32-true, or bf16-mixed (bf16 autocast; meant for CUDA)")
    cache_dir: str | None = option(None, "feature cache folder")
    max_pixels: int = option(
        50_000_000, "images with more pixels are refused (decompression bombs)"
    )
    progress: bool = option(True, "draw progress bars")

    def validate(self) -> TrainConfig:
        """Raise UserError on values that cannot work, naming the option; nothing is touched.

        Every number is checked for its type and range (learning rates positive, the margin in
        (0, 2): cosine distances lie in [0, 2]), names against the known ones (accelerator,
        miner, hard negatives). :meth:`check_folders` checks the folders can be written.
        """
        if not self.data:
            raise UserError("--data MANIFEST is required")
        for name, kind, low, high, rule in _RANGES:
            value = getattr(self, name)
            if name in ("val_fraction", "calib_fraction") and self.split is not None:
                continue
            _check_number(name, value, kind, low, high, rule)
        if self.miner not in ("random", "semihard", "hard"):
            raise UserError(f"--miner must be random, semihard or hard, got {self.miner!r}")
        if self.hard_negatives not in (None, "artist", "category"):
            raise UserError(
                f"--hard-negatives must be artist or category, got {self.hard_negatives!r}"
            )
        if self.accelerator not in ACCELERATORS:
            raise UserError(
                f"--accelerator must be one of {', '.join(ACCELERATORS)}, got {self.accelerator!r}"
            )
        if self.precision not in PRECISIONS:
            raise UserError(
                f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if not isinstance(self.loss_weights, dict):
            raise UserError(f"loss_weights must map {', '.join(LOSS_PARTS)} to weights")
        unknown = set(self.loss_weights) - set(LOSS_PARTS)
        if unknown:
            raise UserError(
                f"loss_weights: unknown parts {sorted(unknown)} ({', '.join(LOSS_PARTS)})"
            )
        for part, weight in self.loss_weights.items():
            _check_number(f"loss_weights.{part}", weight, float, 0.0, None, "at least 0")
        defaults = LossWeights()
        learning = [p for p in LOSS_PARTS if p != "koleo"]
        if not any(self.loss_weights.get(p, getattr(defaults, p)) > 0 for p in learning):
            raise UserError(f"loss_weights: at least one of {', '.join(learning)} must be above 0")
        for name in ("out", "cache_dir", "split", "image_tower", "text_tower"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise UserError(f"{flag_of(name)} must be a text, got {value!r}")
        if not self.out:
            raise UserError("--out RUN_DIR must not be empty")
        if self.loso_folds == 1:
            raise UserError("--loso-folds must be 0 (one fold per source) or at least 2, got 1")
        if self.finetune_keep not in ("better", "always"):
            raise UserError(f"finetune_keep must be better or always, got {self.finetune_keep!r}")
        if self.blend not in ("loso", "trained", "frozen"):
            raise UserError(f"--blend must be loso, trained or frozen, got {self.blend!r}")
        from artsim.model.towers import check_tower_name  # the registry loads torch

        check_tower_name(self.image_tower or "", "image")  # names only: nothing is loaded
        check_tower_name(self.text_tower or "", "text")
        self._check_finetune_tower()
        return self

    def _check_finetune_tower(self) -> None:
        """A fine-tune stage trains one torch image tower: a paired tower's copy part (SSCD)
        runs in ONNX Runtime and cannot be trained, so the pair is refused before anything runs."""
        from artsim.model.config import DEFAULT_IMAGE_TOWER

        tower = self.image_tower or DEFAULT_IMAGE_TOWER
        if self.finetune_epochs > 0 and "+" in tower:
            content = tower.partition("+")[0]
            raise UserError(
                f"--finetune-epochs {self.finetune_epochs}: the image tower {tower!r} pairs a "
                "content tower with a copy-detection tower run by ONNX Runtime, which cannot be "
                f"fine-tuned; fine-tune the content tower alone (--image-tower {content}, no "
                "copy score) or leave --finetune-epochs at 0"
            )

    def check_folders(self) -> None:
        """Raise UserError unless ``--out`` and ``--cache-dir`` can be created and written.

        Creates the folders (training would) and writes and removes one small file in each.
        """
        _check_writable(Path(self.out), "--out")
        if self.cache_dir:
            _check_writable(Path(self.cache_dir), "--cache-dir")

    def check_accelerator(self) -> None:
        """Raise UserError when the accelerator asked for is not on this machine."""
        import torch

        if self.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise UserError(
                f"--accelerator {self.accelerator}: no CUDA GPU is available on this machine "
                "(use --accelerator cpu or auto)"
            )
        if self.accelerator == "mps" and not torch.backends.mps.is_available():
            raise UserError("--accelerator mps: Apple's MPS is not available on this machine")


ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
# Lightning's names; 16-bit float needs a loss scaler and CUDA, bf16 needs neither.
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")

# (field, type, low, high, rule): low/high exclusive or inclusive as the rule says.
_RANGES: list[tuple[str, type, float | None, float | None, str]] = [
    ("val_fraction", float, 0.0, 1.0, "between 0 and 1 (exclusive)"),
    ("calib_fraction", float, 0.0, 1.0, "in [0, 1)"),
    ("seed", int, 0, None, "at least 0"),
    ("max_epochs", int, 1, None, "at least 1"),
    ("embed_dim", int, 1, None, "at least 1"),
    ("hidden_dim", int, 0, None, "at least 0"),
    ("dropout", float, 0.0, 1.0, "in [0, 1)"),
    ("margin", float, 0.0, 2.0, "between 0 and 2 (exclusive; cosine distances lie in [0, 2])"),
    ("groups_per_batch", int, 2, None, "at least 2 (a triplet needs another group)"),
    ("items_per_group", int, 2, None, "at least 2 (a triplet needs two items of a group)"),
    ("lr", float, 0.0, None, "a positive number"),
    ("weight_decay", float, 0.0, None, "at least 0"),
    ("plateau_factor", float, 0.0, 1.0, "between 0 and 1 (exclusive)"),
    ("plateau_patience", int, 0, None, "at least 0"),
    ("min_lr", float, 0.0, None, "at least 0"),
    ("early_stopping_patience", int, 0, None, "at least 0"),
    ("early_stopping_min_delta", float, 0.0, None, "at least 0"),
    ("finetune_epochs", int, 0, None, "at least 0"),
    ("finetune_lr", float, 0.0, None, "a positive number"),
    ("finetune_blocks", int, 1, None, "at least 1"),
    ("finetune_groups", int, 0, None, "at least 0 (0: every training group)"),
    ("devices", int, 1, None, "at least 1"),
    ("num_nodes", int, 1, None, "at least 1"),
    ("max_pixels", int, 1, None, "at least 1"),
    ("whiten_dim", int, 0, None, "at least 0"),
    ("copy_whiten_dim", int, 0, None, "at least 0"),
    ("loso_folds", int, 0, None, "0 (one fold per source) or at least 2"),
    ("text_blend_max", float, 0.0, 1.0, "between 0 and 1"),
    ("bridge_ratio", float, 0.0, None, "at least 0"),
    ("bridge_top", int, 1, None, "at least 1"),
    ("copy_temperature", float, 0.0, None, "a positive number"),
    ("copy_views", int, 0, None, "at least 0"),
]
# Rules whose bounds are excluded (the others include theirs).
_EXCLUSIVE_LOW = {
    "val_fraction", "margin", "lr", "plateau_factor", "finetune_lr", "copy_temperature",
}  # fmt: skip
_EXCLUSIVE_HIGH = {
    "val_fraction", "calib_fraction", "dropout", "margin", "plateau_factor",
}  # fmt: skip


def flag_of(name: str) -> str:
    """The ``artsim train`` flag that sets the field ``name`` (every field has one); a part of a
    field (``loss_weights.image``) is named as it is."""
    if name == "loss_weights":
        return "--loss-weight"
    return name if "." in name else f"--{name.replace('_', '-')}"


def _check_number(name: str, value: Any, kind: type, low, high, rule: str) -> None:
    """One line naming the option unless ``value`` is a finite number of ``kind`` within range."""
    shown = flag_of(name)
    integral = isinstance(value, int) and not isinstance(value, bool)
    if kind is int and not integral:
        raise UserError(f"{shown} must be a whole number ({rule}), got {value!r}")
    if kind is float and not (integral or isinstance(value, float)):
        raise UserError(f"{shown} must be a number ({rule}), got {value!r}")
    if not math.isfinite(value):
        raise UserError(f"{shown} must be a finite number ({rule}), got {value!r}")
    base = name.split(".")[0]
    too_low = low is not None and (value <= low if base in _EXCLUSIVE_LOW else value < low)
    too_high = high is not None and (value >= high if base in _EXCLUSIVE_HIGH else value > high)
    if too_low or too_high:
        raise UserError(f"{shown} must be {rule}, got {value!r}")


# The write check writes this much: a full disk refuses it (an empty file would still be made),
# while any run writes more (its first checkpoint alone).
WRITE_CHECK_BYTES = 256 * 1024


def _check_writable(folder: Path, option: str) -> None:
    """Create ``folder`` if needed and write (and sync) :data:`WRITE_CHECK_BYTES` in it, or one
    line saying why not (no permission, a read-only or full disk)."""
    try:
        if folder.exists() and not folder.is_dir():
            raise UserError(f"{option} {folder}: is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".artsim-write-check-") as handle:
            handle.write(b"\0" * WRITE_CHECK_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        reason = error.strerror or str(error)
        raise UserError(f"{option} {folder}: cannot write there ({reason})") from None


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
    given = {k: v for k, v in overrides.items() if v is not None}
    # loss weights given part by part (--loss-weight copy=1) go over the file's or the defaults
    if isinstance(given.get("loss_weights"), dict):
        base = values.get("loss_weights")
        base = base if isinstance(base, dict) else TrainConfig().loss_weights
        given["loss_weights"] = {**base, **given["loss_weights"]}
    values.update(given)
    return TrainConfig(**values).validate()


def write_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as ``config.yaml`` (:func:`artsim.runfolder.write_config`)."""
    runfolder.write_config(asdict(config), path)


def read_config(path: str | Path) -> TrainConfig:
    """A ``config.yaml`` read back as a :class:`TrainConfig` (unknown keys are an error)."""
    return TrainConfig(**load_config_file(path))


def parse_loss_weights(given: list[str]) -> dict[str, float]:
    """``["copy=1", "koleo=0.1"]`` -> ``{"copy": 1.0, "koleo": 0.1}`` (``--loss-weight``); one
    line naming the bad entry otherwise (range checks are :meth:`TrainConfig.validate`'s)."""
    weights: dict[str, float] = {}
    for entry in given:
        part, sep, value = entry.partition("=")
        part = part.strip()
        if not sep or part not in LOSS_PARTS:
            raise UserError(
                f"--loss-weight {entry!r}: expected PART=WEIGHT with PART one of "
                f"{', '.join(LOSS_PARTS)}"
            )
        try:
            weights[part] = float(value)
        except ValueError:
            raise UserError(f"--loss-weight {entry!r}: {value.strip()!r} is not a number") from None
    return weights
