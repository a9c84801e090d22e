"""Training: config, data modules, Lightning modules, callbacks, the stages of a fit and
:func:`~artsim.training.run.train_run`. The API's :func:`artsim.train` is a function of
:mod:`artsim.api`; this package imports nothing until one of its modules is asked for."""
