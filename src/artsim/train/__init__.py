"""Training: config, feature data module, Lightning module, callbacks and the ``train`` command."""

from artsim.train.config import TrainConfig, resolve_config
from artsim.train.run import train_run

__all__ = ["TrainConfig", "resolve_config", "train_run"]
