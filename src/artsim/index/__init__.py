"""Search index of original artworks: vector stores, build/add/remove/search, CLI commands.

The storage is behind :class:`~artsim.index.store.VectorStore` (faiss + SQLite embedded by
default, Milvus optionally); :mod:`artsim.index.index` holds the logic and the ``index`` group,
:mod:`artsim.index.search` the ``search`` and ``score`` commands.
"""

from artsim.index.index import (
    ArtIndex,
    Calibration,
    IndexInfo,
    PairScore,
    SearchResponse,
    SearchResult,
    add_items,
    add_picture,
    build_index,
    embed_query,
    load_calibration,
    remove_originals,
    score_pair,
    search_index,
)
from artsim.index.store import MODALITIES, Hits, OriginalRecord, VectorStore

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
    "embed_query",
    "load_calibration",
    "remove_originals",
    "score_pair",
    "search_index",
]
