"""Projection heads and the two-tower model that maps tower features into one shared space."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from artsim import runfolder
from artsim.errors import UserError
from artsim.model.blend import blend_parts, whiten
from artsim.model.config import ModelConfig
from artsim.model.conse import bridge_vectors
from artsim.runfolder import MODEL_CARD, MODEL_WEIGHTS, replacing

FORMAT_VERSION = 1


class ProjectionHead(nn.Module):
    """Features -> shared space: a residual MLP on a linear projection, L2-normalised output."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.linear = nn.Linear(in_dim, out_dim)
        self.dropout = nn.Dropout(dropout)
        # hidden_dim 0: a linear projection only (fewer parameters, for small data sets)
        self.mlp = (
            nn.Sequential(
                nn.Linear(out_dim, hidden_dim),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden_dim, out_dim),
            )
            if hidden_dim > 0
            else None
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        projected = self.linear(self.dropout(self.norm(features)))
        if self.mlp is not None:
            projected = projected + self.mlp(projected)
        return F.normalize(projected, dim=-1)


class ArtSimModel(nn.Module):
    """Two projection heads: ``embed_image(features)`` and ``embed_text(features)``.

    The towers stay outside: their features are cached. Cosine similarity between two outputs
    is their dot product.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.image_head = ProjectionHead(
            config.content_feature_dim, config.embed_dim, config.hidden_dim, config.dropout
        )
        self.text_head = ProjectionHead(
            config.text_feature_dim, config.embed_dim, config.hidden_dim, config.dropout
        )
        # PCA-whitening of the frozen image descriptor (fitted on the training originals)
        # (with a copy descriptor: block-diagonal, content then copy columns)
        whiten_dim = config.whiten_dim + config.copy_whiten_dim
        self.register_buffer(
            "whiten_mean", torch.zeros(config.image_feature_dim if whiten_dim else 0)
        )
        self.register_buffer("whiten_projection", torch.zeros(config.image_feature_dim, whiten_dim))
        # the ConSE bridge: ImageNet classifier and class-name text vectors (empty when unused)
        self._bridge_buffers(config.bridge_classes)

    def _bridge_buffers(self, classes: int) -> None:
        config = self.config
        self.register_buffer("bridge_classifier", torch.zeros(classes, config.content_feature_dim))
        self.register_buffer("bridge_bias", torch.zeros(classes))
        self.register_buffer("bridge_names", torch.zeros(classes, config.text_feature_dim))

    def content_features(self, features: torch.Tensor) -> torch.Tensor:
        """The content tower's part of image features (all of them without a copy tower)."""
        return features[:, : self.config.content_feature_dim]

    def embed_image(self, features: torch.Tensor) -> torch.Tensor:
        """The trained image head (what training optimises); it reads the content features."""
        return self.image_head(self.content_features(features))

    def embed_text(self, features: torch.Tensor) -> torch.Tensor:
        """The trained text head."""
        return self.text_head(features)

    @property
    def frozen_content_dim(self) -> int:
        return self.config.whiten_dim or self.config.content_feature_dim

    @property
    def frozen_copy_dim(self) -> int:
        return self.config.copy_whiten_dim or self.config.copy_feature_dim

    @property
    def frozen_image_dim(self) -> int:
        return self.frozen_content_dim + self.frozen_copy_dim

    def part_slices(self) -> dict[str, slice]:
        """Where each part lies in an image vector of :meth:`infer_image` (blended models):
        ``trained``, ``content`` (the frozen content descriptor), ``copy`` and ``text``."""
        config = self.config
        trained = config.embed_dim
        if not config.blended:  # the trained head alone
            empty = slice(trained, trained)
            return {"trained": slice(0, trained), "content": empty, "copy": empty, "text": empty}
        content_end = trained + self.frozen_content_dim
        copy_end = content_end + self.frozen_copy_dim
        return {
            "trained": slice(0, trained),
            "content": slice(trained, content_end),
            "copy": slice(content_end, copy_end),
            "text": slice(copy_end, copy_end + config.text_feature_dim),
        }

    @property
    def output_dim(self) -> int:
        """Length of the vectors :meth:`infer_image` and :meth:`infer_text` return."""
        config = self.config
        if not config.blended:
            return config.embed_dim
        return config.embed_dim + self.frozen_image_dim + config.text_feature_dim

    def part_weights(self) -> dict[str, float]:
        """What each part of an image vector counts in an image-image score: ``copy`` (the copy
        descriptor's cosine times this) and ``content`` (the trained head and the frozen content
        descriptor: what is drawn). Empty without a copy descriptor."""
        config = self.config
        if not (config.has_copy and config.blended):
            return {}
        kept = 1.0 - (config.bridge_weight if self.has_bridge else 0.0)
        copy = (1.0 - config.image_blend) * config.copy_weight
        return {"copy": kept * copy, "content": kept * (1.0 - copy)}

    def frozen_image(self, features: torch.Tensor) -> torch.Tensor:
        """The whitened, normalised frozen image descriptor; with a copy descriptor
        ``[sqrt(1 - c) * content | sqrt(c) * copy]``, each part whitened and normalised apart."""
        config = self.config
        if not config.has_copy:
            return whiten(features, self.whiten_mean, self.whiten_projection)
        return frozen_with_copy(
            features,
            self.whiten_mean,
            self.whiten_projection,
            config.content_feature_dim,
            config.whiten_dim,
            config.copy_whiten_dim,
            config.copy_weight,
        )

    def set_whitening(self, mean: torch.Tensor, projection: torch.Tensor) -> None:
        if projection.shape != self.whiten_projection.shape:
            raise ValueError(
                f"whitening of shape {tuple(projection.shape)}, the model expects "
                f"{tuple(self.whiten_projection.shape)}"
            )
        self.whiten_mean.copy_(mean)
        self.whiten_projection.copy_(projection)

    @property
    def has_bridge(self) -> bool:
        """Whether image vectors carry the ConSE bridge (in the frozen-text part of a blend)."""
        config = self.config
        return config.blended and config.bridge_weight > 0 and self.bridge_classifier.shape[0] > 0

    def set_bridge(
        self,
        classifier: torch.Tensor,
        bias: torch.Tensor,
        names: torch.Tensor,
        weight: float,
        top: int,
        scale: float,
    ) -> None:
        """Attach the ConSE bridge: ``classifier`` (classes x image features), ``bias`` and the
        class names' text vectors (classes x text features); see :mod:`artsim.model.conse`."""
        config = self.config
        classes = classifier.shape[0]
        expected = (
            (classes, config.content_feature_dim),
            (classes,),
            (classes, config.text_feature_dim),
        )
        got = (tuple(classifier.shape), tuple(bias.shape), tuple(names.shape))
        if got != expected:
            raise ValueError(f"bridge tensors of shapes {got}, the model expects {expected}")
        if not 0.0 <= weight < 1.0 or top < 1:
            raise ValueError(f"bridge weight must be in [0, 1) and top at least 1: {weight}, {top}")
        device = self.whiten_mean.device
        self._bridge_buffers(classes)
        for buffer, value in zip(
            (self.bridge_classifier, self.bridge_bias, self.bridge_names),
            (classifier, bias, names),
            strict=True,
        ):
            buffer.copy_(value)
        self.to(device)
        config.bridge_classes, config.bridge_weight = classes, float(weight)
        config.bridge_top, config.bridge_scale = int(top), float(scale)

    def bridge(self, features: torch.Tensor) -> torch.Tensor:
        """The unit-length ConSE vectors of image features (in the frozen text space)."""
        config = self.config
        return bridge_vectors(
            self.content_features(features),
            self.bridge_classifier,
            self.bridge_bias,
            self.bridge_names,
            config.bridge_top,
            config.bridge_scale,
        )

    def infer_image(
        self, features: torch.Tensor, tuned: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The image embedding users get: the trained head blended with the frozen descriptor,
        and, with the bridge, ``sqrt(1 - b) * that + sqrt(b) * [0 | bridge]`` (``b`` =
        ``bridge_weight``): image-text scores gain ``sqrt(b)`` times the bridge's cosine with the
        frozen text part, image-image scores ``b`` times the bridges' cosine.

        ``features`` are the packaged (frozen) tower's. A model trained with a fine-tune stage
        reads ``tuned``, its fine-tuned tower's features, in the trained head only: the whitened
        frozen part and the bridge stay the frozen tower's (they were fitted on its features, and
        the blend is never below frozen only while its frozen part is the frozen tower's).
        """
        trained = self.embed_image(features if tuned is None else tuned)
        if not self.config.blended:
            return trained
        frozen = self.frozen_image(features)
        blended = blend_parts(
            trained, frozen, self.config.image_blend, 0, self.config.text_feature_dim
        )
        if not self.has_bridge:
            return blended
        weight = self.config.bridge_weight
        bridge = self.bridge(features)
        before = blended.new_zeros(blended.shape[0], blended.shape[1] - bridge.shape[1])
        return math.sqrt(1.0 - weight) * blended + math.sqrt(weight) * torch.cat(
            [before, bridge], dim=1
        )

    def without_bridge(self, image: np.ndarray) -> np.ndarray:
        """Image vectors as they are without the bridge (its part zeroed, rows renormalised):
        the fused vectors are built from these, so the bridge changes no fused score."""
        if not self.has_bridge:
            return image
        image = np.array(image, dtype=np.float32, copy=True)
        image[:, image.shape[1] - self.config.text_feature_dim :] = 0.0
        norms = np.linalg.norm(image, axis=1, keepdims=True)
        return (image / np.maximum(norms, 1e-12)).astype(np.float32)

    def infer_text(self, features: torch.Tensor) -> torch.Tensor:
        """The text embedding users get: the trained head blended with the frozen text tower."""
        trained = self.embed_text(features)
        if not self.config.blended:
            return trained
        frozen = F.normalize(features, dim=-1)
        return blend_parts(trained, frozen, self.config.text_blend, self.frozen_image_dim, 0)


def fit_output_projection(vectors: np.ndarray, dim: int) -> np.ndarray:
    """An orthonormal projection (vector_dim x ``dim``) onto the top ``dim`` directions of
    ``vectors`` (uncentred PCA: the directions that hold most of their squared length), so the
    dot products of vectors that lie in them are kept. Fewer rows than ``dim`` keep that many."""
    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.ndim != 2 or len(matrix) == 0:
        raise ValueError("an output projection needs a matrix of at least one row")
    dim = max(1, min(dim, matrix.shape[1]))
    _, _, rows = np.linalg.svd(matrix, full_matrices=False)
    basis = rows[:dim].T
    if basis.shape[1] < dim:  # fewer vectors than dimensions: pad with zero columns
        basis = np.pad(basis, ((0, 0), (0, dim - basis.shape[1])))
    return basis.astype(np.float32)


def fit_block_projection(vectors: np.ndarray, blocks: list[slice], dim: int) -> np.ndarray:
    """Like :func:`fit_output_projection`, but each block of columns (``blocks``: the parts of a
    vector, :meth:`ArtSimModel.part_slices`) keeps its own directions: a block-diagonal projection
    whose ``dim`` columns are the directions of largest energy over all the blocks' own PCAs, so a
    part used alone (the copy part as a partial query) is projected within itself."""
    matrix = np.asarray(vectors, dtype=np.float64)
    candidates = []  # (energy, block, direction)
    for number, block in enumerate(blocks):
        part = matrix[:, block]
        if part.shape[1] == 0 or not np.any(part):
            continue
        _, values, rows = np.linalg.svd(part, full_matrices=False)
        for value, row in zip(values, rows, strict=True):
            candidates.append((float(value) ** 2, number, row))
    candidates.sort(key=lambda c: -c[0])
    projection = np.zeros((matrix.shape[1], dim), np.float32)
    for column, (_, number, row) in enumerate(candidates[:dim]):
        projection[blocks[number], column] = row
    return projection


def frozen_with_copy(
    features: torch.Tensor,
    mean: torch.Tensor,
    projection: torch.Tensor,
    content_dim: int,
    content_whiten: int,
    copy_whiten: int,
    copy_weight: float,
) -> torch.Tensor:
    """``[sqrt(1 - c) * content | sqrt(c) * copy]`` of ``[content | copy]`` features: each part
    whitened by its block of ``projection`` (content columns first; a part of 0 columns is only
    normalised) and normalised, so the dot product of two such vectors is
    ``(1 - c) * content cosine + c * copy cosine``."""
    parts = []
    column = 0
    for rows, columns in (
        (slice(0, content_dim), content_whiten),
        (slice(content_dim, features.shape[1]), copy_whiten),
    ):
        block = features[:, rows]
        if columns and projection.numel():
            block = (block - mean[rows]) @ projection[rows, column : column + columns]
            column += columns
        parts.append(F.normalize(block, dim=-1))
    return torch.cat(
        [math.sqrt(1.0 - copy_weight) * parts[0], math.sqrt(copy_weight) * parts[1]], dim=1
    )


def save_model(
    model: ArtSimModel,
    folder: str | Path,
    extra: dict | None = None,
    tower_state: dict | None = None,
) -> Path:
    """Write ``model.safetensors`` (heads, plus fine-tuned tower weights if any) and ``model.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"heads.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for key, value in (tower_state or {}).items():
        tensors[f"image_tower.{key}"] = value.detach().cpu().contiguous()
    # the config travels inside the weights file: the blend weights and towers decide the
    # vectors as much as the tensors do, so model_id hashes it and load_model reads it from here
    with replacing(folder / MODEL_WEIGHTS) as temporary:
        save_file(
            tensors,
            str(temporary),
            metadata={
                "format": "artsim",
                "version": str(FORMAT_VERSION),
                "config": json.dumps(asdict(model.config), sort_keys=True),
            },
        )
    card = {
        "format_version": FORMAT_VERSION,
        "config": asdict(model.config),
        "model_id": model_id(folder),
        "has_finetuned_image_tower": bool(tower_state),
        **(extra or {}),
    }
    runfolder.write_model_card(folder, card)
    return folder / MODEL_WEIGHTS


def model_id(folder: str | Path) -> str:
    """A short hash of the weights and the config saved with them (blend weights, towers): indexes
    record it and refuse queries from another model.

    The tensors are hashed by sorted name (with dtype and shape), not the file's bytes: the
    same weights saved twice must keep their id, and safetensors' header order is not fixed.
    Files saved before the config was stored in them hash their tensors only (their ids stay).
    """
    digest = hashlib.sha256()
    with safe_open(str(Path(folder, MODEL_WEIGHTS)), framework="pt") as handle:
        config = (handle.metadata() or {}).get("config")
        if config is not None:
            digest.update(b"config|" + config.encode())
        for name in sorted(handle.keys()):
            tensor = handle.get_tensor(name).contiguous()
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            # reshape(-1) first: a 0-dim tensor (batch norm's num_batches_tracked) cannot be
            # viewed as bytes; for every other tensor the bytes (and so the id) are unchanged
            raw = tensor.reshape(-1).view(torch.uint8) if tensor.numel() else None
            digest.update(raw.numpy().tobytes() if raw is not None else b"")
    return digest.hexdigest()[:16]


def _config(raw: dict) -> ModelConfig:
    raw = dict(raw)
    raw["tower_versions"] = tuple(raw.get("tower_versions", ("", "")))
    return ModelConfig(**raw)


def load_model(folder: str | Path) -> tuple[ArtSimModel, dict, dict]:
    """Read a model folder; returns (model in eval mode, model card, fine-tuned tower state)."""
    folder = Path(folder)
    weights, card_path = folder / MODEL_WEIGHTS, folder / MODEL_CARD
    if not weights.is_file() or not card_path.is_file():
        raise UserError(
            f"{folder}: no trained model here (expected {MODEL_WEIGHTS} and {MODEL_CARD})"
        )
    try:
        card = runfolder.read_model_card(folder)
        config = _config(card["config"])  # the card must hold a whole config
        with safe_open(str(weights), framework="pt") as handle:
            saved = (handle.metadata() or {}).get("config")
        if saved is not None:  # the config saved with the weights wins: model_id hashes it
            config = _config(json.loads(saved))
            card["config"] = asdict(config)
    except (UserError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{card_path}: not an artsim model card ({error})") from error
    tensors = load_file(str(weights))
    model = ArtSimModel(config)
    state = {k[6:]: v for k, v in tensors.items() if k.startswith("heads.")}
    for key, value in model.state_dict().items():  # models saved before the blend/the bridge
        if key.startswith(("whiten_", "bridge_")) and key not in state and value.numel() == 0:
            state[key] = value
    model.load_state_dict(state)
    model.eval()
    tower_state = {k[12:]: v for k, v in tensors.items() if k.startswith("image_tower.")}
    card["model_id"] = model_id(folder)
    return model, card, tower_state
