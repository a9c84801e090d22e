"""artsim: how similar is a generated artwork to the originals, and which one did it come from.

The Python API (:mod:`artsim.api`), loaded on first use so that ``import artsim`` stays light:

- :func:`load_model` -> :class:`Model` with ``embed_images``, ``embed_texts``, ``encode``,
  ``similarity``, ``score``, ``explain`` and its
  ``calibration``;
- :func:`open_index` -> :class:`Index` with ``search``, ``add`` and ``remove`` (and what the
  command line and the service use: ``search_response``, ``score``, ``get``, ``add_picture``,
  ``calibrate``);
- :func:`train`, returning the summary the command line writes, and :func:`evaluate`, returning
  the typed :class:`~artsim.eval.result.EvalResult` (``to_dict()`` is the JSON it writes).

The command line is :mod:`artsim.cli`, the HTTP service :mod:`artsim.serve`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Index", "Model", "evaluate", "load_model", "open_index", "train"]

if TYPE_CHECKING:
    from artsim.api import Index, Model, evaluate, load_model, open_index, train


def __getattr__(name: str) -> Any:
    if name in __all__:
        from artsim import api

        return getattr(api, name)
    raise AttributeError(f"module 'artsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
