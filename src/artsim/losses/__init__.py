"""Triplet losses for the four triplet families, with one signature for all of them.

``loss(embeddings, labels, ref_embeddings, ref_labels)`` compares anchors (``embeddings``) with
references: image-image passes images twice (``ref_* = None``), text-text texts twice, i2t images
against texts, t2i texts against images. Distances are cosine distances ``1 - cos``. Which
negatives make the triplets is the miner's business (passed in, not a flag).

Two more named parts work on the batch's image vectors as copy groups (SSCD, Pizzi et al. 2022):
``copy``, a contrastive loss with every other item of the batch a negative
(:func:`multi_positive_info_nce`), and ``koleo``, a spreading regulariser
(:func:`koleo_loss`, Sablayrolles et al. 2019). Their weights default to 0 here; training
weighs ``koleo`` 1 (:class:`artsim.training.config.TrainConfig`).

One module per part: :mod:`~artsim.losses.distances`, :mod:`~artsim.losses.miners`,
:mod:`~artsim.losses.triplet` (the four families), :mod:`~artsim.losses.copy`,
:mod:`~artsim.losses.koleo`, :mod:`~artsim.losses.weights` (plain data) and
:mod:`~artsim.losses.seed_figures` (the seed's figures). Each name below is imported from its
module when first asked for, so ``artsim.losses.weights`` loads without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "cosine_distance_matrix": "distances",
    "TripletBatch": "miners",
    "Miner": "miners",
    "RandomMiner": "miners",
    "HardMiner": "miners",
    "SemiHardMiner": "miners",
    "MINERS": "miners",
    "create_miner": "miners",
    "TripletMarginLoss": "triplet",
    "MultimodalTripletLoss": "triplet",
    "TRIPLET_FAMILIES": "triplet",
    "multi_positive_info_nce": "copy",
    "koleo_loss": "koleo",
    "LossWeights": "weights",
    "LOSS_PARTS": "weights",
    "seed_document_figures": "seed_figures",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"artsim.losses.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'artsim.losses' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
