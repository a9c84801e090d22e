"""The one small interface every vector store of an index implements.

An index keeps, for each original artwork, three unit vectors (``image``, ``text``, ``fused``) and
a metadata record with a small JPEG thumbnail. Two stores implement :class:`VectorStore`:

* :class:`artsim.index.faiss_store.FaissStore`, the embedded default: faiss files plus SQLite in
  the index folder, nothing to start;
* :class:`artsim.index.milvus_store.MilvusStore`, vectors and metadata in a Milvus server
  (``milvus://HOST:PORT``).

Scores are inner products of unit vectors, i.e. cosine similarities in [-1, 1].
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from artsim.errors import UserError

MODALITIES = ("image", "text", "fused")


@dataclass(frozen=True)
class OriginalRecord:
    """What an index knows about one original besides its vectors.

    ``image_path`` is where the image was when it was indexed (absolute), or empty for an upload
    kept only as a thumbnail. ``thumbnail`` is a small JPEG; ``None`` when not asked for.
    """

    id: str
    group: str
    title: str = ""
    artist: str = ""
    caption: str = ""
    lang: str = ""
    image_path: str = ""
    source: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    thumbnail: bytes | None = None

    @property
    def has_text(self) -> bool:
        return bool(self.caption.strip())

    def to_json(self) -> dict:
        """A JSON-ready dict, without the thumbnail bytes."""
        data = asdict(self)
        data.pop("thumbnail")
        data["metadata"] = dict(self.metadata)
        return data


@dataclass(frozen=True)
class Hits:
    """One query's nearest originals, best first: parallel lists of ids and scores."""

    ids: list[str]
    scores: list[float]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.ids, self.scores, strict=True))


def check_vectors(
    ids: Sequence[str], vectors: Mapping[str, np.ndarray], dim: int
) -> dict[str, np.ndarray]:
    """Validate the ``vectors`` argument of :meth:`VectorStore.add` and return float32 copies."""
    if len(set(ids)) != len(ids):
        raise UserError("the same id is given twice in one add")
    checked = {}
    for modality in MODALITIES:
        if modality not in vectors:
            raise ValueError(f"missing {modality} vectors")
        matrix = np.ascontiguousarray(vectors[modality], dtype=np.float32)
        if matrix.shape != (len(ids), dim):
            raise ValueError(
                f"{modality} vectors have shape {matrix.shape}, expected {(len(ids), dim)}"
            )
        checked[modality] = matrix
    return checked


def text_rows(vectors: np.ndarray) -> np.ndarray:
    """Boolean mask of rows that carry a text vector (a zero row means "no caption")."""
    return np.linalg.norm(vectors, axis=1) > 0


class VectorStore(abc.ABC):
    """Vectors per modality plus metadata, keyed by the original's string id.

    ``add`` replaces an id that is already there (upsert), so re-running an interrupted add
    converges. Originals without a caption have no ``text`` vector: a zero row passed to ``add``
    is not indexed, so text searches never return them.
    """

    dim: int
    read_only: bool = False
    #: called after each committed change, still under the index's write lock (the index
    #: layer mirrors the search plans into index.json there)
    on_commit: Callable[[VectorStore], None] | None = None

    @abc.abstractmethod
    def add(
        self,
        ids: Sequence[str],
        vectors: Mapping[str, np.ndarray],
        records: Sequence[OriginalRecord],
    ) -> None:
        """Insert or replace originals: ``vectors[modality]`` is ``len(ids) x dim``."""

    @abc.abstractmethod
    def remove(self, ids: Sequence[str]) -> list[str]:
        """Remove originals; returns the ids that were there (unknown ids are ignored)."""

    @abc.abstractmethod
    def search(
        self,
        modality: str,
        queries: np.ndarray,
        k: int,
        restrict_to: Sequence[str] | None = None,
    ) -> list[Hits]:
        """The ``k`` best originals per query row by inner product in ``modality``.

        With ``restrict_to`` only those ids are considered: that is how exact scores of other
        modalities are computed for the candidates of a first search.
        """

    @abc.abstractmethod
    def count(self) -> int:
        """How many originals the store holds."""

    @abc.abstractmethod
    def get(self, ids: Sequence[str], with_thumbnails: bool = False) -> dict[str, OriginalRecord]:
        """Metadata of the ids that exist (missing ids are absent from the result)."""

    @abc.abstractmethod
    def ids(self) -> list[str]:
        """Every id in the store."""

    def close(self) -> None:  # noqa: B027 - optional: not every store holds resources
        """Release files and connections."""

    def describe(self) -> str:
        """A short human description (kind and size) for logs and ``/health``."""
        return f"{type(self).__name__} ({self.count()} originals)"

    def search_plans(self) -> dict[str, dict]:
        """Per modality, how it is searched: ``kind`` (``flat`` exact, ``ivf``, ``hnsw``...),
        its parameters and ``recall_at_10`` measured against exact search. Empty if unknown."""
        return {}

    def _notify_commit(self) -> None:
        if self.on_commit is not None:
            self.on_commit(self)

    def _check_modality(self, modality: str) -> None:
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")

    def _checked_batch(
        self,
        ids: Sequence[str],
        vectors: Mapping[str, np.ndarray],
        records: Sequence[OriginalRecord],
    ) -> tuple[list[str], dict[str, np.ndarray]]:
        """What every ``add`` checks first: writable store, records in the order of ids, vectors
        of the right shape. Returns the ids as a list and the checked vectors."""
        self._check_writable()
        ids = list(ids)
        if [record.id for record in records] != ids:
            raise ValueError("records must be given in the order of ids")
        return ids, check_vectors(ids, vectors, self.dim)

    def _check_writable(self) -> None:
        if self.read_only:
            raise UserError("this index is open read-only")
