"""Search index of original artworks: what an index is, changing it, asking it.

An index is a folder (:mod:`artsim.index.catalog`) whose vectors live behind
:class:`~artsim.index.store.VectorStore` (faiss + SQLite embedded by default, Milvus optionally);
:mod:`artsim.index.build` builds, adds and removes, :mod:`artsim.index.query` searches and scores.
The ``index``, ``search`` and ``score`` commands are in :mod:`artsim.cli`.
"""

from artsim.index.build import add_items, add_picture, build_index, remove_originals
from artsim.index.catalog import ArtIndex, IndexInfo
from artsim.index.query import (
    PairScore,
    SearchResponse,
    SearchResult,
    embed_pair,
    embed_query,
    score_pair,
    search_index,
)
from artsim.index.store import MODALITIES, Hits, OriginalRecord, VectorStore
from artsim.verdicts.source import Calibration, load_calibration

__all__ = [
    "MODALITIES",
    "ArtIndex",
    "Calibration",
    "Hits",
    "IndexInfo",
    "OriginalRecord",
    "PairScore",
    "SearchResponse",
    "SearchResult",
    "VectorStore",
    "add_items",
    "add_picture",
    "build_index",
    "embed_pair",
    "embed_query",
    "load_calibration",
    "remove_originals",
    "score_pair",
    "search_index",
]
