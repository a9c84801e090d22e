"""Training: config, data modules, Lightning modules, callbacks, the stages of a fit and train_run."""

import sys
import types

from artsim.train.config import TrainConfig, resolve_config
from artsim.train.run import train_and_summarise, train_run

__all__ = ["TrainConfig", "resolve_config", "train_run"]


class _CallableModule(types.ModuleType):
    """``artsim.train`` is this package and the API's ``train()`` at once.

    Importing a subpackage sets it as an attribute of its parent, so once anything has imported
    ``artsim.train.*`` the name ``artsim.train`` is this package, not the API function: calling
    the package calls :func:`artsim.api.train`'s implementation, so ``artsim.train(...)`` works either way.
    """

    def __call__(self, config=None, /, **options):
        return train_and_summarise(config, **options)


sys.modules[__name__].__class__ = _CallableModule
