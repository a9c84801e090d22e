"""Vectors and metadata in a Milvus server (``milvus://HOST:PORT``), through pymilvus' MilvusClient.

One collection per modality, named ``<prefix>_image``, ``<prefix>_text`` and ``<prefix>_fused``
(one vector field each, which every Milvus 2.3+ server supports). The ``fused`` collection also
holds each original's metadata (JSON) and thumbnail (base64 JPEG), since every original has a
fused vector. Collections use strong consistency so that a search sees the previous write.

Milvus has no transaction across collections: ``add`` deletes then inserts, so re-running an
interrupted ``add`` or ``remove`` converges to the intended state (both are idempotent).

Needs the optional extra ``milvus`` (``pip install 'artsim[milvus]'``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlparse

import numpy as np

from artsim.errors import UserError
from artsim.index.store import (
    MODALITIES,
    Hits,
    OriginalRecord,
    VectorStore,
    text_rows,
)

MAX_VARCHAR = 65_535
MAX_ID_LENGTH = 512
# Milvus refuses a query window beyond this many rows.
QUERY_WINDOW = 16_384
_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


def parse_milvus_uri(uri: str) -> tuple[str, int]:
    """``milvus://HOST:PORT`` -> (host, port); raises :class:`UserError` for anything else."""
    parsed = urlparse(uri)
    if parsed.scheme != "milvus" or not parsed.hostname:
        raise UserError(f"not a Milvus address: {uri!r} (expected milvus://HOST:PORT)")
    try:
        port = parsed.port or 19530
    except ValueError:
        raise UserError(f"bad port in {uri!r}") from None
    return parsed.hostname, port


def _quote(value: str) -> str:
    """A string literal for a Milvus boolean expression."""
    return json.dumps(value, ensure_ascii=False)


class MilvusStore(VectorStore):
    """A :class:`VectorStore` on a Milvus server. Create with :meth:`create`.

    >>> store = MilvusStore.create("milvus://127.0.0.1:19530", "artsim_demo", dim=256)  # doctest: +SKIP
    """

    def __init__(self, uri: str, prefix: str, *, read_only: bool = False, timeout: float = 30.0):
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise UserError(
                "the Milvus store needs pymilvus: pip install 'artsim[milvus]'"
            ) from None
        if not _PREFIX.match(prefix):
            raise UserError(f"bad Milvus collection prefix {prefix!r} (letters, digits, _)")
        host, port = parse_milvus_uri(uri)
        self.uri, self.prefix, self.read_only, self.timeout = uri, prefix, read_only, timeout
        try:
            self._client = MilvusClient(uri=f"http://{host}:{port}", timeout=timeout)
        except Exception as error:  # pymilvus raises several kinds for "cannot connect"
            raise UserError(f"cannot reach Milvus at {host}:{port}: {error}") from None
        self.dim = 0
        if self._client.has_collection(self._name("fused")):
            fields = self._client.describe_collection(self._name("fused"))["fields"]
            vector = next(f for f in fields if f["name"] == "vector")
            self.dim = int(vector["params"]["dim"])

    @classmethod
    def create(cls, uri: str, prefix: str, dim: int, timeout: float = 30.0) -> MilvusStore:
        """Make the three empty collections; refuses if they already exist."""
        from pymilvus import DataType, MilvusClient

        store = cls(uri, prefix, timeout=timeout)
        client: MilvusClient = store._client
        for modality in MODALITIES:
            name = store._name(modality)
            if client.has_collection(name):
                raise UserError(f"Milvus collection {name} already exists at {uri}")
        for modality in MODALITIES:
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_LENGTH)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            if modality == "fused":
                schema.add_field("meta", DataType.VARCHAR, max_length=MAX_VARCHAR)
                schema.add_field("thumbnail", DataType.VARCHAR, max_length=MAX_VARCHAR)
            index_params = MilvusClient.prepare_index_params()
            index_params.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
            client.create_collection(
                store._name(modality),
                schema=schema,
                index_params=index_params,
                consistency_level="Strong",
            )
        store.dim = dim
        return store

    def _name(self, modality: str) -> str:
        return f"{self.prefix}_{modality}"

    def describe(self) -> str:
        return f"Milvus {self.uri} ({self.prefix}_*: {self.count()} originals)"

    def drop(self) -> None:
        """Delete the three collections (used when a build fails or an index is replaced)."""
        for modality in MODALITIES:
            self._client.drop_collection(self._name(modality))

    # ----------------------------------------------------------------- writes

    def add(
        self,
        ids: Sequence[str],
        vectors: Mapping[str, np.ndarray],
        records: Sequence[OriginalRecord],
    ) -> None:
        ids, vectors = self._checked_batch(ids, vectors, records)
        for item_id in ids:
            if len(item_id.encode("utf-8")) > MAX_ID_LENGTH:
                raise UserError(f"id too long for Milvus ({MAX_ID_LENGTH} bytes): {item_id!r}")
        if not ids:
            return
        in_text = text_rows(vectors["text"])
        self._delete(ids)
        for modality in MODALITIES:
            rows = []
            for position, (item_id, record) in enumerate(zip(ids, records, strict=True)):
                if modality == "text" and not in_text[position]:
                    continue
                row = {"id": item_id, "vector": vectors[modality][position].tolist()}
                if modality == "fused":
                    row["meta"] = json.dumps(record.to_json(), ensure_ascii=False)
                    thumbnail = base64.b64encode(record.thumbnail or b"").decode("ascii")
                    # a thumbnail that does not fit is dropped rather than failing the add
                    row["thumbnail"] = thumbnail if len(thumbnail) <= MAX_VARCHAR else ""
                    if len(row["meta"]) > MAX_VARCHAR:
                        raise UserError(f"metadata of {item_id!r} is too long for Milvus")
                rows.append(row)
            for start in range(0, len(rows), 1000):
                self._client.insert(self._name(modality), rows[start : start + 1000])

    def _delete(self, ids: Sequence[str]) -> None:
        for modality in MODALITIES:
            for start in range(0, len(ids), 1000):
                self._client.delete(self._name(modality), ids=list(ids[start : start + 1000]))

    def remove(self, ids: Sequence[str]) -> list[str]:
        self._check_writable()
        ids = list(dict.fromkeys(ids))
        present = set(self.get(ids))
        if present:
            self._delete([i for i in ids if i in present])
        return [i for i in ids if i in present]

    # ----------------------------------------------------------------- reads

    def count(self) -> int:
        rows = self._client.query(self._name("fused"), filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def ids(self) -> list[str]:
        found: list[str] = []
        iterator = self._client.query_iterator(
            self._name("fused"), batch_size=1000, filter='id != ""', output_fields=["id"]
        )
        try:
            while batch := iterator.next():
                found.extend(row["id"] for row in batch)
        finally:
            iterator.close()
        return found

    def get(self, ids: Sequence[str], with_thumbnails: bool = False) -> dict[str, OriginalRecord]:
        fields = ["meta", "thumbnail"] if with_thumbnails else ["meta"]
        found: dict[str, OriginalRecord] = {}
        ids = list(ids)
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            if not chunk:
                continue
            for row in self._client.get(self._name("fused"), ids=chunk, output_fields=fields):
                meta = json.loads(row["meta"])
                thumbnail = base64.b64decode(row["thumbnail"]) if with_thumbnails else None
                found[row["id"]] = OriginalRecord(
                    id=meta["id"],
                    group=meta["group"],
                    title=meta.get("title", ""),
                    artist=meta.get("artist", ""),
                    caption=meta.get("caption", ""),
                    lang=meta.get("lang", ""),
                    image_path=meta.get("image_path", ""),
                    source=meta.get("source", ""),
                    metadata=meta.get("metadata", {}),
                    thumbnail=thumbnail or None,
                )
        return found

    def search(
        self,
        modality: str,
        queries: np.ndarray,
        k: int,
        restrict_to: Sequence[str] | None = None,
    ) -> list[Hits]:
        self._check_modality(modality)
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if k <= 0:
            return [Hits([], []) for _ in queries]
        if restrict_to is not None:
            return self._search_among(modality, queries, k, list(restrict_to))
        answers = self._client.search(
            self._name(modality),
            data=queries.tolist(),
            limit=min(k, QUERY_WINDOW),
            output_fields=["id"],
            search_params={"metric_type": "IP"},
        )
        return [
            Hits([hit["id"] for hit in hits], [float(hit["distance"]) for hit in hits])
            for hits in answers
        ]

    def _search_among(
        self, modality: str, queries: np.ndarray, k: int, ids: list[str]
    ) -> list[Hits]:
        """Exact scores against a few ids, from their stored vectors."""
        if not ids:
            return [Hits([], []) for _ in queries]
        rows = self._client.get(self._name(modality), ids=ids, output_fields=["vector"])
        if not rows:
            return [Hits([], []) for _ in queries]
        names = [row["id"] for row in rows]
        vectors = np.asarray([row["vector"] for row in rows], dtype=np.float32)
        scores = queries @ vectors.T
        results = []
        for row in scores:
            order = np.argsort(-row, kind="stable")[:k]
            results.append(Hits([names[i] for i in order], [float(row[i]) for i in order]))
        return results

    def close(self) -> None:
        self._client.close()
