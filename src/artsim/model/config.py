"""What a trained model is, as plain data: :class:`ModelConfig` and the defaults the training
options take from it. Imports nothing heavy, so the command line can show them at once."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_IMAGE_TOWER = "efficientnet-lite0-gem+sscd"
DEFAULT_TEXT_TOWER = "e5-small-query"
# how much the ConSE bridge (artsim.model.conse) counts against the trained heads in image <->
# text search: 2 gives the bridge weight 0.05 for the default blend 0.25 / 0.05
DEFAULT_BRIDGE_RATIO = 2.0


@dataclass
class ModelConfig:
    """What a trained artsim model is: which towers, which heads.

    The defaults of the head fields (``embed_dim``, ``hidden_dim``, ``dropout``) are also the
    training defaults: :class:`artsim.training.config.TrainConfig` takes them from here.
    """

    image_tower: str
    text_tower: str
    image_feature_dim: int
    text_feature_dim: int
    tower_versions: tuple[str, str] = ("", "")
    embed_dim: int = 256
    hidden_dim: int = 0  # 0: linear heads, which generalise best to unseen works here
    dropout: float = 0.5
    # the blend with the frozen towers (artsim.model.blend); 1.0 / 0: trained heads alone
    image_blend: float = 1.0
    text_blend: float = 1.0
    fused_image_weight: float = 0.5
    whiten_dim: int = 0  # 0: the frozen image part is the raw descriptor, normalised
    # the ConSE bridge (artsim.model.conse): image vectors get sqrt(bridge_weight) * the bridge in
    # the frozen-text part; 0 classes: none (models saved before it existed)
    bridge_weight: float = 0.0
    bridge_top: int = 5
    bridge_scale: float = 1.0
    bridge_classes: int = 0
    # the copy descriptor (a paired image tower CONTENT+COPY, artsim.model.towers.copy): the last
    # copy_feature_dim image features are its; the trained head and the bridge read the content
    # features before them. The frozen image part is [sqrt(1 - c) * content | sqrt(c) * copy],
    # each whitened on the training originals apart (copy_whiten_dim; 0: normalised only) and
    # c = copy_weight, chosen on the leave-one-source-out folds.
    copy_feature_dim: int = 0
    copy_whiten_dim: int = 0
    copy_weight: float = 0.0

    @property
    def blended(self) -> bool:
        return self.image_blend < 1.0 or self.text_blend < 1.0

    @property
    def content_feature_dim(self) -> int:
        """Image features the trained head and the bridge read (all but the copy descriptor)."""
        return self.image_feature_dim - self.copy_feature_dim

    @property
    def has_copy(self) -> bool:
        return self.copy_feature_dim > 0
