"""Training: config, data modules, Lightning modules, callbacks, the stages of a fit and train_run."""

from artsim.train.config import TrainConfig, resolve_config
from artsim.train.run import train_run

__all__ = ["TrainConfig", "resolve_config", "train_run"]
