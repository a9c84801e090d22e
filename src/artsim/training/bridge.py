"""Attaching the ConSE bridge to a trained model (:mod:`artsim.model.conse`; issue 10, step 7).

The bridge needs no training: the image tower's ImageNet classifier and the class names embedded
by the run's frozen text tower. Its weight follows the chosen blend (``--bridge-ratio`` times the
trained heads' part of image <-> text scores, :func:`artsim.model.conse.bridge_weight_for`); the
ratio (2) and the top classes (5) were chosen on the demo validation groups and the sources left
out of training, with held-out transforms (BENCHMARKS.md, "Cross-modal: the ConSE bridge").
"""

from __future__ import annotations

import torch

from artsim.model import conse
from artsim.model.features import FeatureCache, compute_text_features
from artsim.model.heads import ArtSimModel
from artsim.model.towers import create_text_tower
from artsim.training.config import TrainConfig


def attach_bridge(config: TrainConfig, model: ArtSimModel) -> dict:
    """Give ``model`` the bridge as ``config`` asks, if its towers allow; returns what was done
    (for summary.json and model.json)."""
    if config.bridge_ratio <= 0:
        return {"used": False, "reason": "bridge ratio 0"}
    blend = model.config
    weight = conse.bridge_weight_for(config.bridge_ratio, blend.image_blend, blend.text_blend)
    if not blend.blended or weight <= 0:
        return {"used": False, "reason": "trained heads alone: no frozen text part to bridge to"}
    # a paired tower (CONTENT+COPY): the classifier reads the content tower's features
    content_tower = config.image_tower.partition("+")[0]
    scale = conse.bridge_scale(content_tower, model.config.content_feature_dim)
    if scale is None:
        return {
            "used": False,
            "reason": f"image tower {config.image_tower!r} has no ImageNet classifier to read",
        }
    text_tower = create_text_tower(config.text_tower)
    cache = FeatureCache(config.cache_dir, text_tower.version)
    names = conse.name_vectors(
        lambda texts: compute_text_features(text_tower, texts, cache), conse.class_names()
    )
    classifier, bias = conse.imagenet_classifier()
    model.set_bridge(
        classifier,
        bias,
        torch.from_numpy(names),
        weight=weight,
        top=config.bridge_top,
        scale=scale,
    )
    return {
        "used": True,
        "ratio": config.bridge_ratio,
        "weight": weight,
        "top": config.bridge_top,
        "scale": scale,
        "classes": int(classifier.shape[0]),
        "template": conse.BRIDGE_TEMPLATE,
    }
