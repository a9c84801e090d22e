"""Vectors and metadata in a Milvus server (``milvus://HOST:PORT``), through pymilvus' MilvusClient.

One collection per modality, named ``<prefix>_image``, ``<prefix>_text`` and ``<prefix>_fused``
(one vector field each, which every Milvus 2.3+ server supports). The ``fused`` collection also
holds each original's metadata (JSON) and thumbnail (base64 JPEG), since every original has a
fused vector: it is the *catalog*. Collections use strong consistency so that a search sees the
previous write.

Milvus has no transaction across collections, so the order of writes is what readers rely on:

* ``add`` upserts the ``image`` and ``text`` vectors first and the catalog row (fused vector +
  metadata) last; ``remove`` deletes the catalog row first, then the other vectors;
* an original exists for readers exactly when its catalog row does: ``count``, ``ids`` and
  ``get`` read the catalog, and image or text searches drop hits without a catalog row.

What a reader sees mid-update: a new original appears at once in every modality when its
catalog row is written (never half-added); a removed one disappears at once; an original being
*replaced* may for a moment answer with its new image/text vectors and its old metadata and
fused vector. A writer killed mid-way leaves either the old state or vectors without a catalog
row (invisible); re-running the same ``add`` or ``remove`` converges (upserts and deletes are
idempotent). Writers of one index folder take its write lock (see
:mod:`artsim.index.locking`), so two artsim processes never interleave their writes.

Search: below ``exact_limit`` vectors a collection has a ``FLAT`` (exact) index. Above, it gets
``IVF_FLAT`` with ``nprobe`` chosen like the embedded store's (:mod:`artsim.index.vector_index`):
the smallest reaching recall@10 0.99 on a sample of its own vectors, measured against
probing every list (exact for IVF_FLAT), kept at once when it probes at most 1/32 of the lists.
Otherwise Milvus' ``SCANN`` (IVF over 4-bit PQ fast-scan codes with exact re-ranking of
``reorder_k`` candidates: the counterpart of the embedded store's PQ + re-rank plan) is built,
searched over every list, and given the shortest ``reorder_k`` reaching the target; if it does
not, IVF_FLAT with its larger ``nprobe``; ``FLAT`` again when neither reaches the target.
From ``int8_from`` vectors (20,000 by default, as the embedded store; back to float32 below half
of that) a collection holds one byte a dimension: ``IVF_SQ8`` searched over every list (exact
over the codes) below ``exact_limit``, and with the smallest ``nprobe`` reaching the target
above it (:mod:`artsim.index.milvus_plan`). The plans are reported by :meth:`MilvusStore.search_plans` and kept in ``index.json``.

Needs the optional extra ``milvus`` (``pip install 'artsim[milvus]'``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext, suppress
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from artsim.errors import UserError
from artsim.index import milvus_plan
from artsim.index.faults import fault_point
from artsim.index.locking import index_write_lock
from artsim.index.recall import RECALL_K
from artsim.index.storage import DEFAULT_INT8_FROM, INT8, wants_int8
from artsim.index.store import (
    MODALITIES,
    Hits,
    OriginalRecord,
    VectorStore,
    text_rows,
)
from artsim.index.vector_index import DEFAULT_EXACT_LIMIT, exact_plan, plan_is_stale

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
    """A :class:`VectorStore` on a Milvus server. Create with :meth:`create` (it needs a
    server, so this example is not run here)::

        store = MilvusStore.create("milvus://127.0.0.1:19530", "artsim_demo", dim=256)
    """

    def __init__(
        self,
        uri: str,
        prefix: str,
        *,
        read_only: bool = False,
        timeout: float = 30.0,
        lock_folder: str | Path | None = None,
        exact_limit: int = DEFAULT_EXACT_LIMIT,
        int8_from: int = DEFAULT_INT8_FROM,
        plans: Mapping[str, dict] | None = None,
        plans_loader: Callable[[], Mapping[str, dict]] | None = None,
    ):
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
        # the index folder whose write lock guards changes (None: the caller serialises)
        self.lock_folder = Path(lock_folder) if lock_folder is not None else None
        self.exact_limit, self.int8_from = exact_limit, int8_from
        self._plans = {m: dict(p) for m, p in (plans or {}).items()}
        # where another process's newer plans can be read (the index folder's index.json)
        self._plans_loader = plans_loader
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
    def create(
        cls,
        uri: str,
        prefix: str,
        dim: int,
        timeout: float = 30.0,
        lock_folder: str | Path | None = None,
        exact_limit: int = DEFAULT_EXACT_LIMIT,
        int8_from: int = DEFAULT_INT8_FROM,
    ) -> MilvusStore:
        """Make the three empty collections (exact ``FLAT`` indexes); refuses if they exist."""
        from pymilvus import DataType, MilvusClient

        store = cls(
            uri,
            prefix,
            timeout=timeout,
            lock_folder=lock_folder,
            exact_limit=exact_limit,
            int8_from=int8_from,
        )
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
            index_params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
            client.create_collection(
                store._name(modality),
                schema=schema,
                index_params=index_params,
                consistency_level="Strong",
            )
        store.dim = dim
        store._plans = {m: exact_plan(0) for m in MODALITIES}
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

    def _locked(self):
        return index_write_lock(self.lock_folder) if self.lock_folder else nullcontext()

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
        catalog = []
        for position, (item_id, record) in enumerate(zip(ids, records, strict=True)):
            meta = json.dumps(record.to_json(), ensure_ascii=False)
            if len(meta) > MAX_VARCHAR:
                raise UserError(f"metadata of {item_id!r} is too long for Milvus")
            thumbnail = base64.b64encode(record.thumbnail or b"").decode("ascii")
            catalog.append(
                {
                    "id": item_id,
                    "vector": vectors["fused"][position].tolist(),
                    "meta": meta,
                    # a thumbnail that does not fit is dropped rather than failing the add
                    "thumbnail": thumbnail if len(thumbnail) <= MAX_VARCHAR else "",
                }
            )
        with self._locked():
            # vectors first, the catalog last: an original exists once its catalog row does
            self._upsert(
                "image",
                [
                    {"id": i, "vector": v.tolist()}
                    for i, v in zip(ids, vectors["image"], strict=True)
                ],
            )
            with_text = [i for i, flag in zip(ids, in_text, strict=True) if flag]
            self._upsert(
                "text",
                [
                    {"id": i, "vector": v.tolist()}
                    for i, v in zip(with_text, vectors["text"][in_text], strict=True)
                ],
            )
            self._delete("text", [i for i, flag in zip(ids, in_text, strict=True) if not flag])
            fault_point("milvus:vectors-written")
            self._upsert("fused", catalog)
            self._replan()
            self._notify_commit()

    def _upsert(self, modality: str, rows: list[dict]) -> None:
        for start in range(0, len(rows), 1000):
            self._client.upsert(self._name(modality), rows[start : start + 1000])

    def _delete(self, modality: str, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), 1000):
            self._client.delete(self._name(modality), ids=ids[start : start + 1000])

    def remove(self, ids: Sequence[str]) -> list[str]:
        self._check_writable()
        ids = list(dict.fromkeys(ids))
        with self._locked():
            present = set(self.get(ids))
            gone = [i for i in ids if i in present]
            # the catalog first: readers stop seeing the originals at once
            self._delete("fused", ids)
            fault_point("milvus:catalog-removed")
            self._delete("image", ids)
            self._delete("text", ids)
            if gone:
                self._replan()
                self._notify_commit()
        return gone

    # ----------------------------------------------------------------- search plans

    def search_plans(self) -> dict[str, dict]:
        if self._plans_loader is not None:
            # another writer may have changed the collections' indexes since we opened them
            with suppress(OSError, ValueError, UserError):
                self._plans = {m: dict(p) for m, p in self._plans_loader().items()} or self._plans
        return {modality: dict(plan) for modality, plan in self._plans.items()}

    def _collection_count(self, modality: str) -> int:
        rows = self._client.query(self._name(modality), filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def _set_index(self, modality: str, index_type: str, params: dict) -> None:
        milvus_plan.set_index(self._client, self._name(modality), index_type, params)

    def _replan(self) -> None:
        """Revisit each collection's index as it grows or shrinks (see the module's docstring)."""
        for modality in MODALITIES:
            n = self._collection_count(modality)
            plan = self._plans.get(modality)
            now_int8 = (plan or {}).get("storage") == INT8
            int8 = wants_int8(n, self.int8_from, now_int8)
            if int8 == now_int8 and not plan_is_stale(plan, n, self.exact_limit):
                self._plans[modality] = {**(plan or exact_plan(n)), "vectors": n}
                continue
            name = self._name(modality)
            if n >= self.exact_limit:
                self._plans[modality] = milvus_plan.choose(self._client, name, n, int8=int8)
            elif int8:
                self._plans[modality] = milvus_plan.exact_int8(self._client, name, n)
            else:
                if plan and (plan.get("kind") != "flat" or now_int8):
                    self._set_index(modality, "FLAT", {})
                self._plans[modality] = exact_plan(n)

    # ----------------------------------------------------------------- reads

    def count(self) -> int:
        rows = self._client.query(self._name("fused"), filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def ids(self) -> list[str]:
        return milvus_plan.collection_ids(self._client, self._name("fused"))

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
        plan = self.search_plans().get(modality) or {}
        params = {}
        if "nprobe" in plan:  # IVF_FLAT, IVF_SQ8 (every list when exact over codes), SCANN
            params["nprobe"] = int(plan["nprobe"])
        if plan.get("kind") == "pq":  # SCANN: re-rank more candidates for a longer top k
            rerank = int(plan["rerank"])
            params["reorder_k"] = max(rerank, rerank * k // RECALL_K, min(k, QUERY_WINDOW))
        answers = self._client.search(
            self._name(modality),
            data=queries.tolist(),
            limit=min(k, QUERY_WINDOW),
            output_fields=["id"],
            search_params={"metric_type": "IP", "params": params},
        )
        results = [
            Hits([hit["id"] for hit in hits], [float(hit["distance"]) for hit in hits])
            for hits in answers
        ]
        if modality == "fused":
            return results
        # image/text rows without a catalog row belong to a change not finished: not there yet
        catalogued = set(self.get(sorted({i for hits in results for i in hits.ids})))
        return [
            Hits(
                [i for i in hits.ids if i in catalogued],
                [s for i, s in zip(hits.ids, hits.scores, strict=True) if i in catalogued],
            )
            for hits in results
        ]

    def _search_among(
        self, modality: str, queries: np.ndarray, k: int, ids: list[str]
    ) -> list[Hits]:
        """Exact scores against a few ids, from their stored vectors."""
        if modality != "fused":
            catalogued = set(self.get(ids))
            ids = [i for i in ids if i in catalogued]
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
