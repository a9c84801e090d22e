"""How much each named part counts in the total loss. Plain data: imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LossWeights:
    """How much each part counts in ``total``; ``cross`` is the mean of i2t and t2i.

    ``copy`` (:func:`multi_positive_info_nce` over the image vectors, groups as positives) and
    ``koleo`` (:func:`koleo_loss` over the image vectors) are off here (training's default
    weighs ``koleo`` 1: :class:`artsim.training.config.TrainConfig`).
    """

    image: float = 1.0
    text: float = 1.0
    cross: float = 1.0
    copy: float = 0.0
    koleo: float = 0.0


LOSS_PARTS = ("image", "text", "cross", "copy", "koleo")
